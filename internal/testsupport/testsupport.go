// Package testsupport holds the small helpers that the tests of several
// packages need alike. Only _test files import it.
package testsupport

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// Buffer is an io.Writer that several goroutines may write to at once (a
// child process's stdout and stderr, loggers), read back with String.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeGossipAddr returns a loopback host:port that was free a moment ago for
// both TCP and UDP: memberlist binds both on one port and refuses port 0.
func FreeGossipAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		addr := l.Addr().String()
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return ""
}
