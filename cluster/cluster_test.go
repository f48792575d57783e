package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/revocation"
)

var secret = bytes.Repeat([]byte{42}, 32)

var discard = slog.New(slog.DiscardHandler)

// freePort is a loopback address free for both TCP and UDP (memberlist
// binds both on one port).
func freePort(t *testing.T) string { return testsupport.FreeGossipAddr(t) }

type node struct {
	c     *Cluster
	list  *revocation.List
	addr  string
	drops atomic.Int32
}

func start(t *testing.T, key []byte, join ...string) *node {
	t.Helper()
	n := &node{addr: freePort(t)}
	var err error
	n.list, err = revocation.New(revocation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n.c, err = New(Config{
		Bind: n.addr, Join: join, Secret: key, JoinTimeout: 3 * time.Second,
		Logger: slog.New(slog.DiscardHandler), OnDrop: func() { n.drops.Add(1) },
	}, n.list)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.c.Leave(time.Second) })
	if err := n.c.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

func entry(key string) revocation.Entry {
	return revocation.Entry{Kind: revocation.KindSession, Key: key, Expiry: time.Now().Add(time.Hour)}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func revoked(n *node, key string) bool { return n.list.Revoked(key, "", "", time.Now()) }

func TestReplication(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	c := start(t, secret, a.addr)
	eventually(t, "three members", func() bool { return len(a.c.Members()) == 3 && len(c.c.Members()) == 3 })

	begin := time.Now()
	if err := b.c.Revoke(entry("s1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "revocation on every member", func() bool { return revoked(a, "s1") && revoked(c, "s1") })
	t.Logf("revocation reached every member in %v", time.Since(begin))

	// A member that joins later gets the full list in the join's push/pull,
	// before Run returns.
	d := start(t, secret, c.addr)
	if !d.c.Ready() || !revoked(d, "s1") {
		t.Error("a joining member must hold the full list when it is ready")
	}
}

func TestRestartedMemberCatchesUp(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	addr := b.addr
	b.c.Leave(time.Second) // b goes away
	if err := a.c.Revoke(entry("while-down")); err != nil {
		t.Fatal(err)
	}
	// b comes back on the same address with an empty list.
	list, _ := revocation.New(revocation.Config{})
	c, err := New(Config{Bind: addr, Join: []string{a.addr}, Secret: secret, Logger: slog.New(slog.DiscardHandler)}, list)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave(time.Second)
	if err := c.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !list.Revoked("while-down", "", "", time.Now()) {
		t.Error("the restarted member does not know the revocation made while it was down")
	}
}

func TestWrongSecretCannotJoinOrInject(t *testing.T) {
	a := start(t, secret)
	other := bytes.Repeat([]byte{7}, 32)
	list, _ := revocation.New(revocation.Config{})
	m, err := New(Config{Bind: freePort(t), Join: []string{a.addr}, Secret: other, JoinTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)}, list)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave(time.Second)
	m.Run(t.Context())
	m.Revoke(entry("forged"))
	time.Sleep(500 * time.Millisecond)
	if len(a.c.Members()) != 1 {
		t.Errorf("a member with another secret joined: %d members", len(a.c.Members()))
	}
	if revoked(a, "forged") {
		t.Error("a revocation from a member with another secret was applied")
	}
}

func TestConfigErrors(t *testing.T) {
	list, _ := revocation.New(revocation.Config{})
	tests := []struct {
		name string
		cfg  Config
	}{
		{"short secret", Config{Bind: "127.0.0.1:0", Secret: []byte("short")}},
		{"no bind", Config{Secret: secret}},
		{"wildcard without advertise", Config{Bind: "0.0.0.0:7946", Secret: secret}},
		{"bad port", Config{Bind: "127.0.0.1:99999", Secret: secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := New(tt.cfg, list); err == nil {
				c.Leave(0)
				t.Error("New accepted a bad config")
			}
		})
	}
}

func BenchmarkFullSync(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src, _ := revocation.New(revocation.Config{})
			entries := make([]revocation.Entry, n)
			for i := range entries {
				entries[i] = revocation.Entry{Kind: revocation.KindSession, Key: fmt.Sprintf("%022d", i), Expiry: time.Now().Add(time.Hour)}
			}
			src.Merge(entries)
			b.ResetTimer()
			for range b.N {
				buf := revocation.AppendEntries(nil, src.Entries())
				dst, _ := revocation.New(revocation.Config{})
				got, err := revocation.DecodeEntries(buf)
				if err != nil {
					b.Fatal(err)
				}
				dst.Merge(got)
				b.ReportMetric(float64(len(buf)), "bytes/sync")
			}
		})
	}
}

// TestLeaveThenRebind: with its peers up a member leaves within
// server's bound of one second (Leave returns nil only when the others were
// told in time), the others see it go, and a new member binds the same
// gossip port at once: a restart right after a stop works.
func TestLeaveThenRebind(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	c := start(t, secret, a.addr)
	eventually(t, "three members", func() bool { return len(a.c.Members()) == 3 && len(c.c.Members()) == 3 })
	if err := b.c.Leave(time.Second); err != nil {
		t.Fatalf("Leave with peers up: %v", err)
	}
	eventually(t, "b gone", func() bool { return len(a.c.Members()) == 2 && len(c.c.Members()) == 2 })
	list, err := revocation.New(revocation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := New(Config{Bind: b.addr, Join: []string{a.addr}, Secret: secret, JoinTimeout: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)}, list)
	if err != nil {
		t.Fatalf("binding the left member's port again: %v", err)
	}
	t.Cleanup(func() { again.Leave(time.Second) })
	if err := again.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restarted member back", func() bool { return len(a.c.Members()) == 3 })
}
