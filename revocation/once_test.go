package revocation

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUse(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	type use struct {
		key     string
		after   time.Duration // clock moves before this use
		expiry  time.Duration // from the clock
		first   bool
		invalid bool
	}
	tests := []struct {
		name string
		uses []use
	}{
		{"first use, then replay", []use{{key: "state:a", expiry: time.Minute, first: true}, {key: "state:a", expiry: time.Minute}}},
		{"another key is a first use", []use{{key: "state:a", expiry: time.Minute, first: true}, {key: "state:b", expiry: time.Minute, first: true}}},
		{"replay with a later expiry", []use{{key: "k", expiry: time.Minute, first: true}, {key: "k", expiry: time.Hour}}},
		{"after the entry expired", []use{{key: "k", expiry: time.Minute, first: true}, {key: "k", after: time.Minute, expiry: time.Minute, first: true}}},
		{"just before it expires", []use{{key: "k", expiry: time.Minute, first: true}, {key: "k", after: time.Minute - 1, expiry: time.Minute}}},
		{"expiry already passed", []use{{key: "k", expiry: 0}, {key: "k", expiry: time.Minute, first: true}}},
		{"empty key", []use{{key: "", expiry: time.Minute, invalid: true}}},
		{"long key", []use{{key: strings.Repeat("k", maxKey+1), expiry: time.Minute, invalid: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: t0}
			l, _ := New(Config{Now: c.Now})
			for i, u := range tt.uses {
				c.t = c.t.Add(u.after)
				first, err := l.Use(u.key, c.t.Add(u.expiry))
				if u.invalid != errors.Is(err, ErrInvalid) || !u.invalid && err != nil {
					t.Fatalf("use %d: err = %v", i, err)
				}
				if first != u.first {
					t.Errorf("use %d of %q: first = %v, want %v", i, u.key, first, u.first)
				}
			}
		})
	}
}

// Single-use values and revocations are different things: a used value
// never revokes a session with the same key.
func TestUseIsNotARevocation(t *testing.T) {
	l, _ := New(Config{})
	now := time.Now()
	if _, err := l.Use("s1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	l.Add(Entry{Kind: KindOnce, Key: "alice", Expiry: now.Add(time.Hour)})
	if l.Revoked("s1", "s1", "s1", now) || l.Revoked("x", "", "alice", now.Add(-time.Hour)) {
		t.Error("a single-use value revoked a session")
	}
	if l.Len() != 0 || l.OnceLen() != 2 {
		t.Errorf("Len() = %d, OnceLen() = %d; want 0, 2", l.Len(), l.OnceLen())
	}
	// Positive control: the same key as a revocation does revoke.
	l.RevokeSession("s1", now.Add(time.Hour))
	if !l.Revoked("s1", "", "", now) {
		t.Error("revocation not seen")
	}
}

// An entry replicated from a peer (Add or Merge) makes Use here a replay.
func TestUseAfterReplication(t *testing.T) {
	now := time.Now()
	for _, via := range []string{"Add", "Merge"} {
		t.Run(via, func(t *testing.T) {
			l, _ := New(Config{})
			e := Entry{Kind: KindOnce, Key: "state:x", Expiry: now.Add(time.Minute)}
			if via == "Add" {
				l.Add(e)
			} else {
				l.Merge([]Entry{e})
			}
			if first, err := l.Use("state:x", now.Add(time.Minute)); first || err != nil {
				t.Errorf("Use of a replicated value: first=%v err=%v", first, err)
			}
			if first, _ := l.Use("state:y", now.Add(time.Minute)); !first {
				t.Error("Use of another value is not first")
			}
		})
	}
}

func TestUseConcurrent(t *testing.T) {
	l, _ := New(Config{SnapshotFile: t.TempDir() + "/revoked"})
	defer l.Close()
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if first, err := l.Use("state:race", time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
			} else if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Errorf("%d concurrent uses were first, want exactly 1", n)
	}
}

// Anyone can create sign-in states in a loop: a flood of single-use values
// must never evict a logout, even when every revocation expires before every
// value (so that one shared bound would evict the revocations first).
func TestOnceFloodNeverEvictsRevocations(t *testing.T) {
	const maxRev, maxOnce = 90, 50
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	for _, persisted := range []bool{false, true} {
		t.Run(fmt.Sprint("persisted=", persisted), func(t *testing.T) {
			cfg := Config{Now: c.Now, MaxEntries: maxRev, MaxOnce: maxOnce}
			if persisted {
				cfg.SnapshotFile = t.TempDir() + "/revoked"
			}
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := range maxRev / 3 {
				l.RevokeSession(fmt.Sprint("s", i), c.t.Add(time.Minute))
				l.RevokeIdPSession(fmt.Sprint("sid", i), c.t.Add(time.Minute))
				l.RevokeSubject(fmt.Sprint("sub", i), c.t, c.t.Add(time.Minute))
			}
			const flood = 20 * maxOnce
			for i := range flood {
				if first, err := l.Use(fmt.Sprint("state:", i), c.t.Add(time.Hour+time.Duration(i))); !first || err != nil {
					t.Fatalf("flood value %d: first=%v err=%v", i, first, err)
				}
			}
			for i := range maxRev / 3 {
				if !l.Revoked(fmt.Sprint("s", i), "", "", c.t) || !l.Revoked("x", fmt.Sprint("sid", i), "", c.t) ||
					!l.Revoked("x", "", fmt.Sprint("sub", i), c.t.Add(-time.Second)) {
					t.Fatalf("revocation %d lost to a flood of single-use values", i)
				}
			}
			if l.Len() != maxRev || l.OnceLen() != maxOnce {
				t.Errorf("Len() = %d, OnceLen() = %d; want %d, %d", l.Len(), l.OnceLen(), maxRev, maxOnce)
			}
			// Positive controls: the newest value is still recorded (a replay
			// of it is refused), the flood did evict (the oldest value is
			// first again), and the count says so.
			if first, _ := l.Use(fmt.Sprint("state:", flood-1), c.t.Add(time.Hour)); first {
				t.Error("the newest single-use value was not recorded")
			}
			if first, _ := l.Use("state:0", c.t.Add(2*time.Hour)); !first {
				t.Error("the oldest value is still held: the flood evicted nothing")
			}
			if rev, once := l.Evicted(); rev != 0 || once < flood-maxOnce {
				t.Errorf("Evicted() = %d, %d; want 0, >= %d", rev, once, flood-maxOnce)
			}
			if persisted {
				l2, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer l2.Close()
				if l2.Len() != maxRev || l2.OnceLen() != maxOnce {
					t.Errorf("after restart: Len() = %d, OnceLen() = %d", l2.Len(), l2.OnceLen())
				}
			}
		})
	}
}
