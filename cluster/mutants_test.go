package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/revocation"
)

// Tests for what the other tests left free (found by mutation testing,
// tools/mutation). Each names what would go wrong without it.

// The documented defaults (JoinTimeout 30 s, PushPullInterval 15 s) replace
// zero and negative values, and only those; metadata may use memberlist's
// whole 512 bytes, and not one more.
func TestConfigDefaultsAndMeta(t *testing.T) {
	list, _ := revocation.New(revocation.Config{})
	tests := []struct {
		name       string
		join, sync time.Duration // given
		meta       int
		wantJoin   time.Duration
		wantSync   time.Duration
		wantErr    bool
	}{
		{"zero: defaults", 0, 0, 0, 30 * time.Second, 15 * time.Second, false},
		{"negative: defaults", -time.Second, -time.Second, 0, 30 * time.Second, 15 * time.Second, false},
		{"given: kept", 700 * time.Millisecond, 3 * time.Second, 0, 700 * time.Millisecond, 3 * time.Second, false},
		{"meta of 512 bytes", 0, 0, 512, 30 * time.Second, 15 * time.Second, false},
		{"meta of 513 bytes", 0, 0, 513, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{
				Bind: freePort(t), Secret: secret, JoinTimeout: tt.join, PushPullInterval: tt.sync,
				Meta: bytes.Repeat([]byte{'m'}, tt.meta), Logger: discard,
			}, list)
			if tt.wantErr {
				if err == nil {
					c.Leave(0)
					t.Fatal("New accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Leave(0)
			if c.cfg.JoinTimeout != tt.wantJoin {
				t.Errorf("JoinTimeout %v, want %v", c.cfg.JoinTimeout, tt.wantJoin)
			}
			if got := c.memberlistConfig("127.0.0.1", 1, "127.0.0.1", 1).PushPullInterval; got != tt.wantSync {
				t.Errorf("memberlist's PushPullInterval %v, want %v", got, tt.wantSync)
			}
			if m := c.Members(); len(m) != 1 || len(m[0].Meta) != tt.meta {
				t.Errorf("members %v, want this one with its %d bytes of meta", m, tt.meta)
			}
		})
	}
}

// Settings whose effect no test can time: gossip must be on (a zero
// interval turns it off, and a member that missed the direct send would
// then wait for a probe's piggyback or the next push/pull, stretching the
// replay window of a single-use value); a crashed member's name must be
// reclaimable at a new address (zero means never, until memberlist reaps the
// dead node); encryption must be required both ways, with the cluster key.
func TestMemberlistSettings(t *testing.T) {
	c := &Cluster{cfg: Config{Secret: secret, PushPullInterval: 15 * time.Second, Name: "n1"}, log: discard}
	mc := c.memberlistConfig("127.0.0.1", 7946, "10.0.0.5", 7947)
	if mc.GossipInterval <= 0 || mc.GossipInterval > time.Second || mc.GossipNodes <= 0 {
		t.Errorf("gossip every %v to %d members: off or too slow", mc.GossipInterval, mc.GossipNodes)
	}
	if mc.DeadNodeReclaimTime <= 0 {
		t.Errorf("DeadNodeReclaimTime %v: a crashed member's name is never reclaimable", mc.DeadNodeReclaimTime)
	}
	if !mc.GossipVerifyIncoming || !mc.GossipVerifyOutgoing || !bytes.Equal(mc.SecretKey, secret) {
		t.Error("encryption is not required both ways with the cluster key")
	}
	if mc.Name != "n1" || mc.BindAddr != "127.0.0.1" || mc.BindPort != 7946 || mc.AdvertiseAddr != "10.0.0.5" || mc.AdvertisePort != 7947 {
		t.Errorf("name or addresses wrong: %s %s:%d %s:%d", mc.Name, mc.BindAddr, mc.BindPort, mc.AdvertiseAddr, mc.AdvertisePort)
	}
	if mc.PushPullInterval != 15*time.Second || mc.Delegate == nil || mc.Logger == nil {
		t.Error("push/pull interval, delegate or logger not set")
	}
}

// Ports are 1 to 65535: port 0 would bind a random port that no other
// member is told of.
func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in   string
		port int
		ok   bool
	}{
		{"127.0.0.1:1", 1, true},
		{"127.0.0.1:65535", 65535, true},
		{"[::1]:7946", 7946, true},
		{"127.0.0.1:0", 0, false},
		{"127.0.0.1:65536", 0, false},
		{"127.0.0.1:-1", 0, false},
		{"127.0.0.1", 0, false},
		{"127.0.0.1:x", 0, false},
	}
	for _, tt := range tests {
		_, port, err := splitHostPort(tt.in)
		if (err == nil) != tt.ok || port != tt.port {
			t.Errorf("splitHostPort(%q) = %d, %v; want %d, ok=%v", tt.in, port, err, tt.port, tt.ok)
		}
	}
	list, _ := revocation.New(revocation.Config{})
	if c, err := New(Config{Bind: "127.0.0.1:0", Secret: secret, Logger: discard}, list); err == nil {
		c.Leave(0)
		t.Error("New accepted bind port 0")
	}
}

// fakePeer accepts TCP connections on a gossip address and closes them at
// once, counting them: each is one join attempt that fails.
func fakePeer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			conn.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// Run retries a join that fails with a backoff (200 ms, doubling, at most
// 2 s), not in a loop that hammers the peers, and for JoinTimeout: zero
// means 30 s, so with no peer answering it is still trying when the
// context ends.
func TestJoinRetryBackoff(t *testing.T) {
	tests := []struct {
		name          string
		joinTimeout   time.Duration
		ctx           time.Duration
		wantCtxErr    bool
		minTry, maxTr int32
	}{
		// Attempts at 0, 0.2, 0.6 and 1.4 s, then the deadline has passed.
		{"gives up after JoinTimeout", time.Second, 20 * time.Second, false, 2, 6},
		// Attempts at 0, 0.2 and 0.6 s, then the context ends at 1 s.
		{"zero JoinTimeout is 30 s", 0, time.Second, true, 2, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, tries := fakePeer(t)
			list, _ := revocation.New(revocation.Config{})
			c, err := New(Config{Bind: freePort(t), Join: []string{peer}, Secret: secret, JoinTimeout: tt.joinTimeout, Logger: discard}, list)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Leave(0)
			ctx, cancel := context.WithTimeout(t.Context(), tt.ctx)
			defer cancel()
			err = c.Run(ctx)
			if got := errors.Is(err, context.DeadlineExceeded); got != tt.wantCtxErr {
				t.Errorf("Run: %v; want the context's error: %v", err, tt.wantCtxErr)
			}
			if n := tries.Load(); n < tt.minTry || n > tt.maxTr {
				t.Errorf("%d join attempts, want %d to %d", n, tt.minTry, tt.maxTr)
			}
			if !c.Ready() {
				t.Error("not ready after Run")
			}
		})
	}
}

// Being joined is not joining: a member whose own peers do not answer, but
// that a fresh member joins meanwhile, holds only that member's list (here
// empty), not the cluster's. It must keep trying its peers until
// JoinTimeout and then say none was reachable, not report a join. The fresh
// member's join does succeed (positive control: two members at the end).
func TestBeingJoinedIsNotJoining(t *testing.T) {
	const timeout = 2 * time.Second
	logs := &testsupport.Buffer{}
	list, _ := revocation.New(revocation.Config{})
	addr := freePort(t)
	a, err := New(Config{
		Bind: addr, Join: []string{freePort(t)}, Secret: secret, JoinTimeout: timeout,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}, list)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave(0)
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- a.Run(t.Context()) }()
	start(t, secret, addr) // joins a while a retries its own peer
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	if n := a.ml.NumMembers(); n != 2 {
		t.Fatalf("%d members: the fresh member did not join", n)
	}
	if strings.Contains(logs.String(), "cluster joined") || !strings.Contains(logs.String(), "no cluster peer reachable") {
		t.Errorf("being joined was reported as a join:\n%s", logs)
	}
	if took < timeout {
		t.Errorf("Run returned after %v, before JoinTimeout %v", took, timeout)
	}
}

// Leave reports a leave that was not confirmed in time (the others then
// learn of it only by failing to probe this member); given time, it
// succeeds and the others see the member go.
func TestLeaveReportsTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		wantErr bool
	}{
		{"too short to broadcast", time.Nanosecond, true},
		{"enough", 5 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, secret)
			b := start(t, secret, a.addr)
			eventually(t, "two members", func() bool { return len(a.c.Members()) == 2 })
			err := b.c.Leave(tt.timeout)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Leave(%v) = %v, want an error: %v", tt.timeout, err, tt.wantErr)
			}
			if err := b.c.Leave(tt.timeout); err != nil {
				t.Errorf("second Leave: %v", err)
			}
			if !tt.wantErr {
				eventually(t, "b gone", func() bool { return len(a.c.Members()) == 1 })
			}
		})
	}
}

// Advertise, when set, is the address the others are told: a valid one is
// used, an invalid one refused (Bind is then not a fallback).
func TestAdvertise(t *testing.T) {
	list, _ := revocation.New(revocation.Config{})
	tests := []struct {
		advertise string
		ok        bool
	}{
		{"10.1.2.3:7999", true},
		{"10.1.2.3:0", false},
		{"10.1.2.3", false},
		{"0.0.0.0:7946", false},
		{"bff.internal:7946", false},
	}
	for _, tt := range tests {
		t.Run(tt.advertise, func(t *testing.T) {
			c, err := New(Config{Bind: freePort(t), Advertise: tt.advertise, Secret: secret, Logger: discard}, list)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				return
			}
			defer c.Leave(0)
			if m := c.Members(); len(m) != 1 || m[0].Addr != tt.advertise {
				t.Errorf("members %v, want this one at %s", m, tt.advertise)
			}
		})
	}
}
