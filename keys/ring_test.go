package keys

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable fixed clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }

// secret returns a deterministic 32-byte secret filled with b.
func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// t0 is the start of an epoch for 2s rotation (an even unix second).
var t0 = time.Unix(1_700_000_000, 0)

func newRing(t *testing.T, c *clock, secrets ...[]byte) *Ring {
	t.Helper()
	r, err := New(Config{Secrets: secrets, Rotation: 2 * time.Second, Window: 10 * time.Second, MaxSkew: 500 * time.Millisecond, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no secrets", Config{}},
		{"short secret", Config{Secrets: [][]byte{make([]byte, 31)}}},
		{"short second secret", Config{Secrets: [][]byte{secret(1), make([]byte, 8)}}},
		{"duplicate", Config{Secrets: [][]byte{secret(1), secret(1)}}},
		{"rotation too short", Config{Secrets: [][]byte{secret(1)}, Rotation: 500 * time.Millisecond}},
		{"rotation fractional", Config{Secrets: [][]byte{secret(1)}, Rotation: 1500 * time.Millisecond}},
		{"negative rotation", Config{Secrets: [][]byte{secret(1)}, Rotation: -time.Hour}},
		{"negative window", Config{Secrets: [][]byte{secret(1)}, Window: -time.Hour}},
		{"negative skew", Config{Secrets: [][]byte{secret(1)}, MaxSkew: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New succeeded, want error")
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		r, err := New(Config{Secrets: [][]byte{secret(1)}})
		if err != nil {
			t.Fatal(err)
		}
		if r.rotation != 86400 || r.window != DefaultWindow || r.maxSkew != DefaultMaxSkew {
			t.Fatalf("defaults not applied: %d %v %v", r.rotation, r.window, r.maxSkew)
		}
		k := r.Sealing()
		if _, err := r.Lookup(k.ID); err != nil {
			t.Fatal(err)
		}
		// The default window is a day: yesterday's key (a session sealed
		// a rotation ago) still opens, one from two days ago does not.
		c := newClock(time.Now())
		r, err = New(Config{Secrets: [][]byte{secret(1)}, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		old := r.Sealing().ID
		c.add(23 * time.Hour)
		if _, err := r.Lookup(old); err != nil {
			t.Errorf("a key of 23 hours ago under the default window: %v", err)
		}
		c.add(2 * 24 * time.Hour)
		if _, err := r.Lookup(old); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("a key of three days ago under the default window: %v, want ErrUnknownKey", err)
		}
	})
	t.Run("error names no secret", func(t *testing.T) {
		s := []byte(strings.Repeat("S", 20))
		_, err := New(Config{Secrets: [][]byte{s}})
		if err == nil || strings.Contains(err.Error(), string(s)) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKeyShape(t *testing.T) {
	c := newClock(t0)
	r := newRing(t, c, secret(1))
	k := r.Sealing()
	if len(k.Secret) != KeySize {
		t.Fatalf("key is %d bytes", len(k.Secret))
	}
	want := fmt.Sprintf(".%d", t0.Unix()/2)
	if len(k.ID) != masterIDLen+len(want) || !strings.HasSuffix(k.ID, want) {
		t.Fatalf("kid %q, want 12 chars + %q", k.ID, want)
	}
	if bytes.Contains([]byte(k.ID), secret(1)[:4]) {
		t.Fatal("kid contains secret bytes")
	}
	// Different masters, different ids and keys.
	k2 := newRing(t, c, secret(2)).Sealing()
	if k2.ID[:masterIDLen] == k.ID[:masterIDLen] || bytes.Equal(k2.Secret, k.Secret) {
		t.Fatal("different masters gave the same id or key")
	}
}

func TestSameSecretSameKeys(t *testing.T) {
	c := newClock(t0)
	a := newRing(t, c, secret(1))
	b := newRing(t, c, secret(9), secret(1)) // opens with secret(1) too
	for i := 0; i < 5; i++ {
		ka := a.Sealing()
		kb, err := b.Lookup(ka.ID)
		if err != nil {
			t.Fatalf("epoch %d: ring b cannot look up %q: %v", i, ka.ID, err)
		}
		if !bytes.Equal(ka.Secret, kb.Secret) || ka.ID != kb.ID {
			t.Fatalf("epoch %d: keys differ", i)
		}
		c.add(2 * time.Second)
	}
	// Two rings with the same first secret seal with the same key.
	a2 := newRing(t, c, secret(1))
	if a2.Sealing().ID != a.Sealing().ID || !bytes.Equal(a2.Sealing().Secret, a.Sealing().Secret) {
		t.Fatal("rings with the same secret seal differently")
	}
}

func TestRolloverAndWindow(t *testing.T) {
	c := newClock(t0)
	r := newRing(t, c, secret(1)) // 2s epochs, 10s window
	old := r.Sealing()
	c.add(1999 * time.Millisecond)
	if r.Sealing().ID != old.ID {
		t.Fatal("key changed inside an epoch")
	}
	c.add(time.Millisecond)
	cur := r.Sealing()
	if cur.ID == old.ID || bytes.Equal(cur.Secret, old.Secret) {
		t.Fatal("key did not change at the epoch boundary")
	}
	// Old kid opens while its epoch is not older than the epoch of now-Window.
	// old epoch starts at t0; now-10s falls in epoch(t0) until t0+12s.
	for _, tc := range []struct {
		at   time.Duration
		open bool
	}{
		{2 * time.Second, true},
		{10 * time.Second, true},
		{11999 * time.Millisecond, true},
		{12 * time.Second, false},
		{time.Hour, false},
	} {
		t.Run(tc.at.String(), func(t *testing.T) {
			c.set(t0.Add(tc.at))
			k, err := r.Lookup(old.ID)
			if tc.open {
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				if !bytes.Equal(k.Secret, old.Secret) {
					t.Fatal("wrong key")
				}
			} else if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		})
	}
}

func TestFutureKid(t *testing.T) {
	ahead := newClock(t0.Add(2 * time.Second)) // the instance whose clock is ahead
	next := newRing(t, ahead, secret(1)).Sealing()
	ahead.add(2 * time.Second)
	afterNext := newRing(t, ahead, secret(1)).Sealing()

	tests := []struct {
		name string
		now  time.Time
		kid  string
		ok   bool
	}{
		{"next epoch within skew", t0.Add(1600 * time.Millisecond), next.ID, true},
		{"next epoch exactly at skew", t0.Add(1500 * time.Millisecond), next.ID, true},
		{"next epoch beyond skew", t0.Add(1499 * time.Millisecond), next.ID, false},
		{"next epoch far beyond skew", t0, next.ID, false},
		{"two epochs ahead", t0.Add(1999 * time.Millisecond), afterNext.ID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(t, newClock(tt.now), secret(1))
			k, err := r.Lookup(tt.kid)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(k.Secret, next.Secret) {
					t.Fatal("wrong key")
				}
			} else if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		})
	}
}

func TestReload(t *testing.T) {
	c := newClock(t0)
	r := newRing(t, c, secret(1))
	oldKid := r.Sealing().ID

	t.Run("add a new first secret", func(t *testing.T) {
		if err := r.Reload([][]byte{secret(2), secret(1)}); err != nil {
			t.Fatal(err)
		}
		if r.Sealing().ID == oldKid {
			t.Fatal("still sealing with the old master")
		}
		if _, err := r.Lookup(oldKid); err != nil {
			t.Fatalf("old kid no longer opens: %v", err)
		}
	})
	t.Run("invalid reload keeps state", func(t *testing.T) {
		before := r.Sealing().ID
		for _, bad := range [][][]byte{nil, {secret(3), make([]byte, 5)}, {secret(3), secret(3)}} {
			if err := r.Reload(bad); err == nil {
				t.Fatal("Reload succeeded, want error")
			}
		}
		if r.Sealing().ID != before {
			t.Fatal("failed reload changed the sealing key")
		}
		if _, err := r.Lookup(oldKid); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("remove a secret", func(t *testing.T) {
		if err := r.Reload([][]byte{secret(2)}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Lookup(oldKid); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("removed master still opens: %v", err)
		}
	})
	t.Run("reload does not alias caller slices", func(t *testing.T) {
		s := secret(4)
		if err := r.Reload([][]byte{s}); err != nil {
			t.Fatal(err)
		}
		s[0] ^= 0xff
		c.add(2 * time.Second) // a new epoch: derived after the caller's change
		want := newRing(t, c, secret(4)).Sealing()
		if got := r.Sealing(); !bytes.Equal(got.Secret, want.Secret) {
			t.Fatal("key changed after the caller modified its slice")
		}
	})
}

func TestMalformedKids(t *testing.T) {
	c := newClock(t0)
	r := newRing(t, c, secret(1))
	good := r.Sealing().ID
	id, epoch := good[:masterIDLen], good[masterIDLen+1:]
	tests := []struct{ name, kid string }{
		{"empty", ""},
		{"id only", id},
		{"id and dot", id + "."},
		{"no dot", id + epoch},
		{"short id", id[1:] + "." + epoch},
		{"long id", id + "A." + epoch},
		{"bad id char", "!" + id[1:] + "." + epoch},
		{"padding in id", id[:11] + "=." + epoch},
		{"leading zero", id + ".0" + epoch},
		{"plus sign", id + ".+" + epoch},
		{"minus sign", id + ".-" + epoch},
		{"negative", id + ".-1"},
		{"space", id + ". " + epoch},
		{"trailing dot", good + "."},
		{"two epochs", good + ".1"},
		{"hex epoch", id + ".0x10"},
		{"overflow", id + ".99999999999999999999"},
		{"too long", good + strings.Repeat("1", 40)},
		{"unknown master", "AAAAAAAAAAAA." + epoch},
		{"nul", id + ".\x00"},
		{"unicode", id + ".١٢"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Lookup(tt.kid); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Lookup(%q) err = %v, want ErrUnknownKey", tt.kid, err)
			}
		})
	}
	if _, err := r.Lookup(good); err != nil {
		t.Fatalf("good kid: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newClock(t0)
	r, err := New(Config{Secrets: [][]byte{secret(1)}, Rotation: time.Second, Window: time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	id := r.Sealing().ID[:masterIDLen]
	cur := t0.Unix()
	keys := map[string][]byte{}
	for e := cur - 100; e <= cur; e++ {
		kid := fmt.Sprintf("%s.%d", id, e)
		k, err := r.Lookup(kid)
		if err != nil {
			t.Fatal(err)
		}
		keys[kid] = k.Secret
	}
	// Every key is still derived correctly after evictions.
	for kid, want := range keys {
		k, err := r.Lookup(kid)
		if err != nil || !bytes.Equal(k.Secret, want) {
			t.Fatalf("%s: %v", kid, err)
		}
	}
}

func TestConcurrentReloadLookup(t *testing.T) {
	c := newClock(t0)
	r := newRing(t, c, secret(1))
	kid1 := r.Sealing().ID
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// secret(1) is in every state the reloader installs.
				if _, err := r.Lookup(kid1); err != nil {
					t.Error(err)
					return
				}
				_ = r.Sealing()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			if err := r.Reload([][]byte{secret(byte(2 + i%5)), secret(1)}); err != nil {
				t.Error(err)
			}
			if i%50 == 0 {
				c.add(time.Second)
			}
		}
		close(stop)
	}()
	wg.Wait()
}

func BenchmarkLookup(b *testing.B) {
	r, err := New(Config{Secrets: [][]byte{secret(1)}})
	if err != nil {
		b.Fatal(err)
	}
	kid := r.Sealing().ID
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Lookup(kid); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealing(b *testing.B) {
	r, err := New(Config{Secrets: [][]byte{secret(1)}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Sealing()
	}
}

// TestMasterIDs: the ids follow the secrets' order (the sealing one first),
// are the first part of the sealing key id, and change with a reload.
func TestMasterIDs(t *testing.T) {
	c := newClock(t0)
	r := newRing(t, c, secret(1), secret(2))
	ids := r.MasterIDs()
	if len(ids) != 2 || ids[0] == ids[1] || !strings.HasPrefix(r.Sealing().ID, ids[0]+".") {
		t.Fatalf("MasterIDs %v with sealing key %s; want two ids, the first sealing", ids, r.Sealing().ID)
	}
	if err := r.Reload([][]byte{secret(2)}); err != nil {
		t.Fatal(err)
	}
	if got := r.MasterIDs(); len(got) != 1 || got[0] != ids[1] {
		t.Errorf("after reloading the second secret alone: %v, want [%s]", got, ids[1])
	}
	for _, id := range ids {
		for _, i := range []byte{1, 2} {
			if strings.Contains(string(secret(i)), id) {
				t.Errorf("id %s is part of a secret", id)
			}
		}
	}
}
