package revocation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A full list must never refuse a new entry (that would stop every logout):
// it evicts the entries that expire first.
func TestFullListEvictsEarliestExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	session := func(key string, d time.Duration) Entry { return Entry{Kind: KindSession, Key: key, Expiry: at(d)} }
	tests := []struct {
		name    string
		held    []Entry         // added first, MaxEntries = len(held)
		advance time.Duration   // clock moves before the new entries
		add     []Entry         // added with Add
		merge   []Entry         // then merged, as a peer's full state
		kept    []string        // session keys revoked afterwards
		gone    []string        // session keys no longer revoked
		evicted uint64          // live revocations evicted
		subject map[string]bool // subject key -> still revoked
	}{
		{
			name: "the earliest expiry goes, the new entry stays",
			held: []Entry{session("a", time.Minute), session("b", time.Hour), session("c", 2*time.Hour)},
			add:  []Entry{session("d", 30*time.Minute)},
			kept: []string{"b", "c", "d"}, gone: []string{"a"}, evicted: 1,
		},
		{
			name: "a new entry that expires first is still kept",
			held: []Entry{session("a", time.Hour), session("b", 2*time.Hour)},
			add:  []Entry{session("c", time.Second)},
			kept: []string{"b", "c"}, gone: []string{"a"}, evicted: 1,
		},
		{
			name: "every kind counts toward the bound and can be evicted",
			held: []Entry{
				{Kind: KindSubject, Key: "alice", Before: t0, Expiry: at(time.Minute)},
				{Kind: KindIdPSession, Key: "sid", Expiry: at(time.Hour)},
			},
			add:     []Entry{session("s", 2*time.Hour)},
			kept:    []string{"s"},
			subject: map[string]bool{"alice": false},
			evicted: 1,
		},
		{
			name:    "expired entries make room before any live one is evicted",
			held:    []Entry{session("a", time.Minute), session("b", time.Hour)},
			advance: 2 * time.Minute,
			add:     []Entry{session("c", time.Hour)},
			kept:    []string{"b", "c"}, gone: []string{"a"}, evicted: 0,
		},
		{
			name:  "a merge past the bound evicts, keeping the latest expiries",
			held:  []Entry{session("a", time.Minute), session("b", 3*time.Hour)},
			merge: []Entry{session("c", time.Hour), session("d", 2*time.Hour), session("e", 30*time.Second)},
			kept:  []string{"b", "d"}, gone: []string{"a", "c", "e"}, evicted: 2,
		},
		{
			name: "updating a held entry evicts nothing",
			held: []Entry{session("a", time.Minute), session("b", time.Hour)},
			add:  []Entry{session("a", 2*time.Hour)},
			kept: []string{"a", "b"}, evicted: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: t0}
			l, _ := New(Config{Now: c.Now, MaxEntries: len(tt.held)})
			if n, err := l.Merge(tt.held); err != nil || n != len(tt.held) {
				t.Fatalf("fill: %d %v", n, err)
			}
			c.t = c.t.Add(tt.advance)
			for _, e := range tt.add {
				if changed, err := l.Add(e); err != nil || !changed {
					t.Fatalf("Add(%s) on a full list: changed=%v err=%v", e.Key, changed, err)
				}
			}
			if _, err := l.Merge(tt.merge); err != nil {
				t.Fatalf("Merge on a full list: %v", err)
			}
			for _, k := range tt.kept {
				if !l.Revoked(k, "", "", c.t) {
					t.Errorf("%s was evicted", k)
				}
			}
			for _, k := range tt.gone {
				if l.Revoked(k, "", "", c.t) {
					t.Errorf("%s is still held", k)
				}
			}
			for sub, want := range tt.subject {
				if got := l.Revoked("x", "", sub, t0.Add(-time.Second)); got != want {
					t.Errorf("subject %s revoked = %v, want %v", sub, got, want)
				}
			}
			if l.Len() > len(tt.held) {
				t.Errorf("len %d over the bound %d", l.Len(), len(tt.held))
			}
			if rev, once := l.Evicted(); rev != tt.evicted || once != 0 {
				t.Errorf("Evicted() = %d, %d; want %d, 0", rev, once, tt.evicted)
			}
		})
	}
}

// The heap with lazy deletion must evict exactly what a naive scan for the
// earliest expiry would, through random adds, updates and clock moves.
func TestEvictionMatchesNaiveModel(t *testing.T) {
	const max = 50
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	l, _ := New(Config{Now: c.Now, MaxEntries: max})
	model := map[string]time.Time{} // naive: key -> expiry
	used := map[int64]bool{}        // distinct expiries: no ties to break
	for i := range 20_000 {
		if r.IntN(50) == 0 {
			c.t = c.t.Add(time.Duration(r.IntN(60)) * time.Second)
		}
		key := fmt.Sprint(r.IntN(300))
		var exp time.Time
		for {
			exp = c.t.Add(time.Duration(1+r.IntN(3600_000_000)) * time.Microsecond)
			if !used[exp.UnixNano()] {
				used[exp.UnixNano()] = true
				break
			}
		}
		if _, err := l.Add(Entry{Kind: KindSession, Key: key, Expiry: exp}); err != nil {
			t.Fatal(err)
		}
		// The model: drop the expired; update in place; else evict the
		// earliest expiry when full, then insert.
		for k, e := range model {
			if !e.After(c.t) {
				delete(model, k)
			}
		}
		if old, ok := model[key]; ok {
			if exp.After(old) {
				model[key] = exp
			}
		} else {
			if len(model) >= max {
				var first string
				for k, e := range model {
					if first == "" || e.Before(model[first]) {
						first = k
					}
				}
				delete(model, first)
			}
			model[key] = exp
		}
		got := live(l, c.t)
		want := slices.Sorted(func(yield func(string) bool) {
			for k := range model {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: list holds %v, model %v", i, got, want)
		}
		if len(l.revC.q) > 2*max+1024 {
			t.Fatalf("step %d: heap grew to %d items for %d entries", i, len(l.revC.q), l.Len())
		}
	}
}

func live(l *List, now time.Time) []string {
	var keys []string
	for _, e := range l.Entries() {
		if e.Expiry.After(now) {
			keys = append(keys, e.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// Stale heap items (one per expiry update) must not grow without bound.
func TestRepeatedUpdatesStayBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, _ := New(Config{Now: c.Now})
	for i := range 10_000 {
		l.Add(Entry{Kind: KindSubject, Key: "alice", Before: c.t, Expiry: c.t.Add(time.Hour + time.Duration(i))})
		l.Add(Entry{Kind: KindOnce, Key: fmt.Sprint("k", i%3), Expiry: c.t.Add(time.Minute + time.Duration(i))})
		c.t = c.t.Add(time.Nanosecond)
	}
	if n := len(l.revC.q) + len(l.onceC.q); n > 2*1024+10 {
		t.Errorf("heaps hold %d items for %d entries", n, l.Len()+l.OnceLen())
	}
	if !l.Revoked("x", "", "alice", c.t.Add(-time.Second)) {
		t.Error("the updated entry was lost")
	}
}

// Adding to a full list evicts in O(log n): the cost per Add must not grow
// with the list (compare the sizes).
func BenchmarkAddFull(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l, _ := New(Config{MaxEntries: n})
			exp := time.Now().Add(time.Hour)
			entries := make([]Entry, n)
			for i := range entries {
				entries[i] = Entry{Kind: KindSession, Key: fmt.Sprintf("%022d", i), Expiry: exp.Add(time.Duration(i))}
			}
			l.Merge(entries)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Add(Entry{Kind: KindSession, Key: "new-" + strconv.Itoa(i), Expiry: exp.Add(time.Duration(n + i))})
				i++
			}
			if l.Len() != n {
				b.Fatalf("len %d, want %d", l.Len(), n)
			}
		})
	}
}
