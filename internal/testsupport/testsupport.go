// Package testsupport holds the small helpers that the tests of several
// packages need alike. Only _test files import it.
package testsupport

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
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

// Ports are picked at random below the kernel's ephemeral range (Linux:
// /proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default), not by
// binding port 0: a port the kernel handed out and we released can be handed
// out again at once, to another test's listener or as the local port of any
// outgoing connection (Chromium, the HTTP clients), and the process the port
// was meant for then fails with "address already in use". Below the range,
// only another pick can collide: never one of this process (handedOut), and
// each pick is checked free.
const (
	portLow  = 20000
	portHigh = 32767 // exclusive of the default ephemeral range
)

// handedOut are the ports this process picked already: a port is picked
// free but bound later by whatever it is for, so two tests running in
// parallel could otherwise pick the same one in that gap.
var handedOut struct {
	mu    sync.Mutex
	ports map[int]bool
}

// pick returns a random port below the ephemeral range that this process
// has not handed out before.
func pick() int {
	handedOut.mu.Lock()
	defer handedOut.mu.Unlock()
	if handedOut.ports == nil || len(handedOut.ports) > (portHigh-portLow)/2 {
		handedOut.ports = map[int]bool{} // start over rather than search a full range
	}
	for {
		port := portLow + rand.IntN(portHigh-portLow)
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := pick()
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("free port: none found below the ephemeral range")
	return 0
}

// FreeGossipAddr returns a loopback host:port that was free a moment ago for
// both TCP and UDP: memberlist binds both on one port and refuses port 0.
func FreeGossipAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(pick()))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no loopback port free for both TCP and UDP below the ephemeral range")
	return ""
}

// Need returns the path of a tool a test runs. When it is missing the test
// is skipped, except under CI=true, where it fails naming the Debian package
// (what set-up forgot); pkg prefixes the message.
func Need(t *testing.T, pkg, tool, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	msg := pkg + ": " + tool + " not found; install it (Debian: apt-get install " + debianPackage + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
