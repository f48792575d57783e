package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interop matrix's plumbing: a gate that takes a provider off the
// network and back, and the build of the Go providers.

// tcpGate forwards a loopback port to a provider. Down closes the listener
// and every open connection (new ones are refused, as when the provider's
// host is gone); Up listens on the same port again.
type tcpGate struct {
	addr   string // 127.0.0.1:PORT, the same for the gate's life
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// startGate listens on a free port and forwards to target (host:port),
// which need not listen yet. It closes when the test ends.
func startGate(t testing.TB, target string) *tcpGate {
	t.Helper()
	g := &tcpGate{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), target: target, conns: map[net.Conn]struct{}{}}
	g.Up(t)
	t.Cleanup(g.Down)
	return g
}

// URL is http://127.0.0.1:PORT of the gate.
func (g *tcpGate) URL() string { return "http://" + g.addr }

// Up starts forwarding again (no-op when up).
func (g *tcpGate) Up(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port was ours; a closed listener's port can take a moment
		if ln, err = net.Listen("tcp", g.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("e2e: gate: listen %s: %v", g.addr, err)
	}
	g.ln = ln
	go g.accept(ln)
}

// Down refuses new connections and cuts the open ones.
func (g *tcpGate) Down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		c.Close()
		delete(g.conns, c)
	}
}

func (g *tcpGate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		c.Close()
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *tcpGate) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *tcpGate) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		if !g.track(in) {
			continue
		}
		go func() {
			defer g.untrack(in)
			out, err := net.DialTimeout("tcp", g.target, 5*time.Second)
			if err != nil {
				return
			}
			if !g.track(out) {
				return
			}
			defer g.untrack(out)
			done := make(chan struct{}, 2)
			go func() { io.Copy(out, in); done <- struct{}{} }()
			go func() { io.Copy(in, out); done <- struct{}{} }()
			<-done
		}()
	}
}

var (
	providerBuildMu sync.Mutex
	providerBuilt   = map[string]string{}
)

// providerBinary builds (or finds in the cache) the named Go provider with
// e2e/providers/build.sh and returns its path. A failed build fails the test:
// the matrix never passes by leaving a provider out.
func providerBinary(t testing.TB, name string) string {
	t.Helper()
	providerBuildMu.Lock()
	defer providerBuildMu.Unlock()
	if p, ok := providerBuilt[name]; ok {
		return p
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot, "e2e", "providers", "build.sh"), name)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("e2e: build provider %s: %v\n%s", name, err, tail(stderr.String(), 4<<10))
	}
	p := strings.TrimSpace(string(out))
	providerBuilt[name] = p
	return p
}

// waitHTTP polls url until it answers 200 or timeout passes; proc, when not
// nil, failing early ends the wait.
func waitHTTP(t testing.TB, proc *process, rawURL string, timeout time.Duration, logs *syncBuffer) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get(rawURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if proc != nil && proc.exited() {
			t.Fatalf("e2e: %s: process exited: %v\n%s", rawURL, proc.err, tail(logs.String(), 8<<10))
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: %s not ready after %s (last: %v)\n%s", rawURL, timeout, err, tail(logs.String(), 8<<10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
