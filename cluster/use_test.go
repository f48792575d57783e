package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/bff-project/bff/revocation"
)

// A value used on one member is refused on every other: a replay that a
// round-robin balancer sends elsewhere must fail there too.
func TestUseIsClusterWide(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	c := start(t, secret, a.addr)
	eventually(t, "three members", func() bool { return len(a.c.Members()) == 3 && len(c.c.Members()) == 3 })
	exp := time.Now().Add(10 * time.Minute)

	if first, err := a.c.Use("state:x", exp); !first || err != nil {
		t.Fatalf("first use on a: first=%v err=%v", first, err)
	}
	// Wait for delivery without using the value (a premature Use would
	// record it, and pass for the wrong reason).
	eventually(t, "the use on every member", func() bool { return b.list.OnceLen() == 1 && c.list.OnceLen() == 1 })
	for _, n := range []*node{a, b, c} {
		if first, err := n.c.Use("state:x", exp); first || err != nil {
			t.Errorf("replay on %s: first=%v err=%v", n.c.LocalName(), first, err)
		}
	}
	// Positive control: another value is a first use, and is in turn
	// refused on the member that sent the first one.
	if first, err := b.c.Use("state:y", exp); !first || err != nil {
		t.Fatalf("another value on b: first=%v err=%v", first, err)
	}
	eventually(t, "b's use on a", func() bool { return a.list.OnceLen() == 2 })
	if first, _ := a.c.Use("state:y", exp); first {
		t.Error("a accepted a value already used on b")
	}
	// Single-use values revoke nothing.
	if revoked(a, "state:x") || revoked(b, "state:y") {
		t.Error("a single-use value revoked a session")
	}

	// A member that joins later receives them in the join's full sync.
	d := start(t, secret, c.addr)
	if first, _ := d.c.Use("state:x", exp); first {
		t.Error("a joining member accepted a value used before it joined")
	}
}

// Revocations are kept over single-use values when the full state must be
// cut to fit memberlist's limit, and the values kept are the latest to
// expire.
func TestEncodeStateFitsLimit(t *testing.T) {
	now := time.Now()
	var entries []revocation.Entry
	for i := range 100 {
		entries = append(entries,
			revocation.Entry{Kind: revocation.KindOnce, Key: fmt.Sprintf("state:%040d", i), Expiry: now.Add(time.Duration(i) * time.Second)},
			revocation.Entry{Kind: revocation.KindSession, Key: fmt.Sprintf("%022d", i), Expiry: now.Add(time.Minute)})
	}
	full := len(revocation.AppendEntries(nil, entries))
	tests := []struct {
		name            string
		limit           int
		minOnce, maxOne int
	}{
		{"fits", full, 100, 100},
		{"cut", full - 50*58, 40, 60}, // a value is 58 bytes
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeState(append([]revocation.Entry(nil), entries...), tt.limit)
			if len(b) > tt.limit {
				t.Errorf("%d bytes over the limit %d", len(b), tt.limit)
			}
			got, err := revocation.DecodeEntries(b)
			if err != nil {
				t.Fatal(err)
			}
			sessions, once, oldest := 0, 0, time.Duration(1<<62)
			for _, e := range got {
				if e.Kind == revocation.KindOnce {
					once++
					oldest = min(oldest, e.Expiry.Sub(now).Round(time.Second))
				} else {
					sessions++
				}
			}
			if sessions != 100 {
				t.Errorf("%d revocations kept, want all 100", sessions)
			}
			if once < tt.minOnce || once > tt.maxOne {
				t.Errorf("%d single-use values kept, want %d to %d", once, tt.minOnce, tt.maxOne)
			}
			if want := time.Duration(100-once) * time.Second; oldest != want {
				t.Errorf("oldest value kept expires in %v, want %v (the latest ones first)", oldest, want)
			}
		})
	}
	if maxState >= 20<<20 {
		t.Errorf("maxState %d must stay under memberlist's 20 MiB", maxState)
	}
}
