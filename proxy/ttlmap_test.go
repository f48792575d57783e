package proxy

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// TestTTLMap: a full map evicts (expired entries and then the oldest) and
// keeps the newest; it never refuses and never grows past its bound.
func TestTTLMap(t *testing.T) {
	type step struct {
		at   time.Duration // since t0
		put  string
		want map[string]bool // get at the same time, after the put
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{name: "full: the oldest makes room", limit: 3, steps: []step{
			{put: "a"}, {put: "b"}, {put: "c", want: map[string]bool{"a": true, "b": true, "c": true}},
			{put: "d", want: map[string]bool{"a": false, "b": true, "c": true, "d": true}},
			{put: "e", want: map[string]bool{"b": false, "c": true, "d": true, "e": true}},
		}},
		{name: "expired entries go first, not live ones", limit: 3, steps: []step{
			{put: "a"}, {at: 20 * time.Second, put: "b"},
			{at: 30 * time.Second, put: "c", want: map[string]bool{"a": false, "b": true, "c": true}},
			{at: 30 * time.Second, put: "d", want: map[string]bool{"b": true, "c": true, "d": true}},
		}},
		{name: "expiry is exclusive", limit: 3, steps: []step{
			{put: "a"},
			{at: 30*time.Second - 1, want: map[string]bool{"a": true}},
			{at: 30 * time.Second, want: map[string]bool{"a": false}},
		}},
		{name: "a key put again lives from its last put", limit: 3, steps: []step{
			{put: "a"}, {at: 20 * time.Second, put: "a"},
			{at: 40 * time.Second, want: map[string]bool{"a": true}},
			{at: 40 * time.Second, put: "b"}, {at: 40 * time.Second, put: "c"},
			{at: 40 * time.Second, put: "d", want: map[string]bool{"a": false, "b": true, "c": true, "d": true}},
		}},
		// Each put of a live key leaves a stale ref queued: the queue's
		// bound (2*limit refs) is reached with the map far from full, and
		// makes room by evicting the oldest live entry. One ref more would
		// break the bound (mutant ttlmap.go:52:73, "<" to "<=").
		{name: "a key put again and again: the queue stays bounded", limit: 3, steps: []step{
			{put: "a"}, {put: "b"}, {put: "b"}, {put: "b"}, {put: "b"},
			{put: "b", want: map[string]bool{"a": true, "b": true}},
			{put: "b", want: map[string]bool{"a": false, "b": true}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTTLMap[string, int](30*time.Second, tt.limit)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.put != "" {
					m.put(s.put, i, now)
				}
				for k, want := range s.want {
					if _, got := m.get(k, now); got != want {
						t.Errorf("step %d: get(%q) = %v, want %v", i, k, got, want)
					}
				}
				if m.len() > tt.limit || m.order.len() > 2*tt.limit {
					t.Errorf("step %d: %d entries, %d queued, over the bound %d", i, m.len(), m.order.len(), tt.limit)
				}
			}
		})
	}
}

// TestTTLMapFlood: under a flood of new keys, and of one key put again and
// again, the map and its queue stay bounded and the newest key is there.
func TestTTLMapFlood(t *testing.T) {
	const limit = 100
	m := newTTLMap[string, int](time.Minute, limit)
	for i := range 10 * limit {
		k := fmt.Sprint(i)
		m.put(k, i, t0)
		if v, ok := m.get(k, t0); !ok || v != i {
			t.Fatalf("newest %q: %d, %v", k, v, ok)
		}
		m.put("same", i, t0)
	}
	if m.len() > limit || m.order.len() > 2*limit {
		t.Errorf("%d entries, %d queued, over the bound %d", m.len(), m.order.len(), limit)
	}
	if v, ok := m.get("same", t0); !ok || v != 10*limit-1 {
		t.Errorf(`get("same") = %d, %v`, v, ok)
	}
}

// TestQueue: order kept across growth and wrap-around.
func TestQueue(t *testing.T) {
	var q queue[int]
	next, want := 0, 0
	for round := range 50 {
		for range round%7 + 3 {
			q.push(next)
			next++
		}
		for range round%5 + 1 {
			if q.len() == 0 {
				break
			}
			if got := q.front(); got != want {
				t.Fatalf("front %d, want %d", got, want)
			}
			q.pop()
			want++
		}
	}
	if q.len() != next-want {
		t.Errorf("len %d, want %d", q.len(), next-want)
	}
}

// TestCooldownFull: a full cooldown table evicts its oldest session rather
// than refusing a new one: every session gets its first forced refresh.
func TestCooldownFull(t *testing.T) {
	c := newCooldown(30*time.Second, 3)
	for _, id := range []string{"a", "b", "c", "d"} {
		if !c.take(id, t0) {
			t.Errorf("take(%q): refused, want allowed (evict, not refuse)", id)
		}
	}
	if !c.take("a", t0) {
		t.Error(`take("a"): refused, want allowed (it was evicted)`)
	}
	// The control: a session still in the table is cooling down.
	if c.take("d", t0) {
		t.Error(`take("d"): allowed inside its cooldown`)
	}
	if c.last.len() > 3 {
		t.Errorf("%d sessions remembered, over the bound 3", c.last.len())
	}
}

// BenchmarkTTLMapFlood: each put into a full map costs the same whatever
// its size (no scan): compare ns/op across sizes.
func BenchmarkTTLMapFlood(b *testing.B) {
	for _, limit := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(limit), func(b *testing.B) {
			m := newTTLMap[int, struct{}](time.Hour, limit)
			for i := range limit {
				m.put(i, struct{}{}, t0)
			}
			b.ResetTimer()
			for i := range b.N {
				m.put(limit+i, struct{}{}, t0)
			}
		})
	}
}
