package server

import (
	"context"
	"testing"
	"time"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/revocation"
)

// newMember is a clustered Server named name, reached by the others at
// internalURL, that joins join (none: the first member); its cluster runs
// until the test ends.
func newMember(t *testing.T, name, internalURL string, join ...string) (*Server, string) {
	t.Helper()
	bind := freeGossipPort(t)
	s := newTestServer(t, "http://127.0.0.1:1", func(c *Config) {
		c.Cluster = &cluster.Config{Bind: bind, Join: join, Name: name, Secret: []byte("0123456789abcdef0123456789abcdef")}
		c.InternalURL = internalURL
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the Close newTestServer registered
	if err := s.cluster.Run(ctx); err != nil {
		t.Fatalf("%s: cluster.Run: %v", name, err)
	}
	return s, bind
}

// TestUseOnceScope: a sign-in state (and a logout token's jti, an
// end-session ticket) used on one member is refused on the others, so a
// replayed callback that a balancer sends elsewhere never reaches the
// provider; an internal refresh request's id, which names its one member,
// is recorded there only.
func TestUseOnceScope(t *testing.T) {
	a, addr := newMember(t, "member-a", "http://127.0.0.1:1")
	b, _ := newMember(t, "member-b", "http://127.0.0.1:2", addr)
	// Each member tells the others where its internal listener is (the
	// owner of a session is asked there to refresh it).
	members := b.cluster.Members()
	if len(members) != 2 || string(members[0].Meta) != "http://127.0.0.1:1" || string(members[1].Meta) != "http://127.0.0.1:2" {
		t.Fatalf("b sees members %+v, want a and b with their internal URLs as metadata", members)
	}
	exp := time.Now().Add(10 * time.Minute)
	if first, err := a.useOnce(onceInternal, "internal-request-id", exp); !first || err != nil {
		t.Fatalf("internal id on a: first=%v err=%v", first, err)
	}
	if first, err := a.useOnce(onceState, "sign-in-state", exp); !first || err != nil {
		t.Fatalf("state on a: first=%v err=%v", first, err)
	}
	// Wait for the state to reach b without using it there (a premature
	// use would record it, and pass for the wrong reason).
	for deadline := time.Now().Add(5 * time.Second); b.revoked.OnceLen() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the state used on a never reached b")
		}
	}
	if first, err := b.useOnce(onceState, "sign-in-state", exp); first || err != nil {
		t.Errorf("replayed state on b: first=%v err=%v, want refused", first, err)
	}
	if first, err := b.useOnce(onceInternal, "internal-request-id", exp); !first || err != nil {
		t.Errorf("a's internal id on b: first=%v err=%v, want a first use (not replicated)", first, err)
	}

	// A revocation on a reaches b, and a counts the gossip it sent.
	sent := counterValue(t, a.metrics.gossipSent)
	if err := a.revoke(revocation.Entry{Kind: revocation.KindSession, Key: "sid-revoked-on-a", Expiry: exp}); err != nil {
		t.Fatalf("revoke on a: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); !b.revoked.Revoked("sid-revoked-on-a", "", "", time.Now()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the revocation on a never reached b")
		}
	}
	if got := counterValue(t, a.metrics.gossipSent) - sent; got != 1 {
		t.Errorf("bff_gossip_sent_total moved by %v for one revocation, want 1", got)
	}
}

// TestOwnerOrNil: forwarding a refresh to its owner needs both a cluster
// (an owner) and this member's internal URL; without either the proxy gets
// no owner (a nil interface, not a nil *owner) and refreshes locally.
func TestOwnerOrNil(t *testing.T) {
	withURL := &owner{s: &Server{cfg: Config{InternalURL: "http://10.0.0.1:8081"}}}
	withoutURL := &owner{s: &Server{}}
	if got := ownerOrNil(withURL); got != withURL {
		t.Errorf("ownerOrNil(owner with an internal URL) = %v, want the owner", got)
	}
	if got := ownerOrNil(withoutURL); got != nil {
		t.Errorf("ownerOrNil(owner without an internal URL) = %v, want nil", got)
	}
	if got := ownerOrNil(nil); got != nil {
		t.Errorf("ownerOrNil(nil) = %v, want nil", got)
	}
}
