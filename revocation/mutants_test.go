package revocation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests for boundaries that the other tests left free (found by mutation
// testing, tools/mutation). Each names what would go wrong without it.

// An entry whose expiry has come is gone, even before a sweep: a subject
// entry re-added at that instant starts afresh and does not inherit the
// expired entry's later start bound. Otherwise an instance that had not yet
// swept would revoke more sessions than one that had, and replicas would
// disagree. One nanosecond earlier the held entry is live and the two merge.
func TestSubjectReaddedAtExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old := Entry{Kind: KindSubject, Key: "alice", Before: t0.Add(10 * time.Minute), Expiry: t0.Add(time.Hour)}
	next := Entry{Kind: KindSubject, Key: "alice", Before: t0.Add(5 * time.Minute), Expiry: t0.Add(2 * time.Hour)}
	started := t0.Add(7 * time.Minute) // between the two start bounds
	tests := []struct {
		name       string
		at         time.Time // when next is added
		wantBefore time.Time
	}{
		{"held entry still live: the later start bound stays", old.Expiry.Add(-time.Nanosecond), old.Before},
		{"held entry expired this very nanosecond: replaced", old.Expiry, next.Before},
		{"held entry expired earlier: replaced", old.Expiry.Add(time.Nanosecond), next.Before},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: t0}
			l, _ := New(Config{Now: c.Now})
			mustAdd(t, l, old)
			c.t = tt.at
			if changed, err := l.Add(next); err != nil || !changed {
				t.Fatalf("Add: changed=%v err=%v", changed, err)
			}
			got, ok := held(l, KindSubject, "alice")
			if !ok || !got.Before.Equal(tt.wantBefore) || !got.Expiry.Equal(next.Expiry) {
				t.Errorf("held %+v (%v), want before %v, expiry %v", got, ok, tt.wantBefore, next.Expiry)
			}
			want := started.Before(tt.wantBefore)
			if r := l.Revoked("x", "", "alice", started); r != want {
				t.Errorf("a session started at +7m: revoked=%v, want %v", r, want)
			}
			// A replica that never held the old entry must agree.
			fresh, _ := New(Config{Now: c.Now})
			mustAdd(t, fresh, next)
			if !tt.wantBefore.Equal(old.Before) && !slices.Equal(fresh.Entries(), l.Entries()) {
				t.Errorf("replicas disagree: %v and %v", l.Entries(), fresh.Entries())
			}
		})
	}
}

// A peer's full state is taken into a full list only for entries that expire
// strictly after the held entry that expires first: on a tie the held entry
// stays and nothing changes, so that two full replicas whose earliest
// entries expire together do not swap them back and forth on every sync. A
// local Add is always kept.
func TestFullMergeTieKeepsHeld(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	session := func(key string, d time.Duration) Entry { return Entry{Kind: KindSession, Key: key, Expiry: t0.Add(d)} }
	tests := []struct {
		name      string
		in        Entry
		add       bool // Add instead of Merge
		changed   bool
		kept, gon string
	}{
		{"merge: same expiry as the earliest held", session("c", time.Minute), false, false, "a", "c"},
		{"merge: one nanosecond later", session("c", time.Minute+time.Nanosecond), false, true, "c", "a"},
		{"merge: earlier", session("c", time.Second), false, false, "a", "c"},
		{"add: same expiry, still kept", session("c", time.Minute), true, true, "c", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: t0}
			l, _ := New(Config{Now: c.Now, MaxEntries: 2})
			if n, err := l.Merge([]Entry{session("a", time.Minute), session("b", time.Hour)}); err != nil || n != 2 {
				t.Fatalf("fill: %d %v", n, err)
			}
			var changed bool
			if tt.add {
				changed, _ = l.Add(tt.in)
			} else {
				n, err := l.Merge([]Entry{tt.in})
				if err != nil {
					t.Fatal(err)
				}
				changed = n == 1
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if !l.Revoked(tt.kept, "", "", t0) || !l.Revoked("b", "", "", t0) {
				t.Errorf("%s or b not held: %v", tt.kept, l.Entries())
			}
			if l.Revoked(tt.gon, "", "", t0) {
				t.Errorf("%s held: %v", tt.gon, l.Entries())
			}
			wantEvicted := uint64(0)
			if tt.changed {
				wantEvicted = 1
			}
			if rev, _ := l.Evicted(); rev != wantEvicted {
				t.Errorf("Evicted() = %d, want %d", rev, wantEvicted)
			}
		})
	}
}

// A stale heap item (one per expiry update) is dropped lazily; the heap is
// rebuilt only once stale items outnumber the live entries (plus a constant
// slack), so that rebuilding, O(n), happens at most once per n updates. A
// rebuild on every update would make each Add on a list of up to about a
// thousand entries cost a full pass and an allocation.
func TestHeapNotRebuiltOnEveryUpdate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, k := range []Kind{KindSession, KindSubject, KindOnce} {
		for _, live := range []int{3, 2000} {
			t.Run(fmt.Sprint(kindName(k), live), func(t *testing.T) {
				heapNotRebuilt(t, t0, k, live)
			})
		}
	}
}

// heapNotRebuilt checks, for a list of live entries of kind k, that 200
// updates leave their stale items in the heap and 3000 more do not.
func heapNotRebuilt(t *testing.T, t0 time.Time, k Kind, live int) {
	c := &clock{t: t0}
	l, _ := New(Config{Now: c.Now})
	cls, _ := l.classOf(k)
	e := Entry{Kind: k, Key: "k"}
	if k == KindSubject {
		e.Before = t0
	}
	const updates = 200
	for i := range live {
		f := e
		f.Key, f.Expiry = fmt.Sprint("e", i), t0.Add(time.Hour)
		mustAdd(t, l, f)
	}
	for i := range updates {
		e.Expiry = t0.Add(2*time.Hour + time.Duration(i))
		mustAdd(t, l, e)
	}
	// live+1 entries, one pushed updates times.
	if got, want := len(cls.q), live+updates; got != want {
		t.Errorf("heap holds %d items, want %d (no rebuild yet)", got, want)
	}
	// Positive control: many more updates do rebuild it.
	for i := range 3000 {
		e.Expiry = t0.Add(3*time.Hour + time.Duration(i))
		mustAdd(t, l, e)
	}
	if n := len(cls.q); n > 2*(live+1)+1024+1 {
		t.Errorf("heap holds %d items for %d entries: never rebuilt", n, live+1)
	}
}

// Rebuilding a heap (after many updates) must rebuild it from its own
// class's entries. Built from the other class's, the next eviction in the
// churned class would evict an entry of the other class (a single-use value
// to make room for a logout, or a logout to make room for a sign-in state:
// exactly what the separate bounds forbid), and the churned class would no
// longer be bounded.
func TestRebuiltHeapKeepsItsClass(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, churn := range []Kind{KindSession, KindOnce} {
		t.Run("churn "+kindName(churn), func(t *testing.T) {
			c := &clock{t: t0}
			l, _ := New(Config{Now: c.Now, MaxEntries: 2, MaxOnce: 2})
			// Both classes full: "old" expires first, "keep" last.
			for _, k := range []Kind{KindSession, KindOnce} {
				mustAdd(t, l, Entry{Kind: k, Key: "old", Expiry: t0.Add(time.Hour)})
				mustAdd(t, l, Entry{Kind: k, Key: "keep", Expiry: t0.Add(3 * time.Hour)})
			}
			churnUntilRebuilt(t, l, Entry{Kind: churn, Key: "old", Expiry: t0.Add(time.Hour)})
			// One new entry in each class: each evicts its own "old".
			for _, k := range []Kind{KindSession, KindOnce} {
				if changed, err := l.Add(Entry{Kind: k, Key: "new", Expiry: t0.Add(2 * time.Hour)}); err != nil || !changed {
					t.Fatalf("Add: %v %v", changed, err)
				}
			}
			var got []string
			for _, e := range l.Entries() {
				got = append(got, kindName(e.Kind)+"/"+e.Key)
			}
			slices.Sort(got)
			want := []string{"once/keep", "once/new", "session/keep", "session/new"}
			if !slices.Equal(got, want) {
				t.Errorf("held %v, want %v", got, want)
			}
			if rev, once := l.Evicted(); rev != 1 || once != 1 {
				t.Errorf("Evicted() = %d, %d; want 1, 1", rev, once)
			}
		})
	}
}

// After a rebuild, the heap must still give the entries in expiry order:
// each Add to the full list evicts the live entry that expires first. The
// rebuild puts the entries in map order (random) and then sifts every inner
// node down, the root included; a root left where the map put it would be
// evicted first whatever its expiry. Several lists, so that a root that
// happens to be the earliest (one chance in 64 each) cannot hide it.
func TestRebuiltHeapEvictsInExpiryOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const n = 64
	for trial := range 4 {
		c := &clock{t: t0}
		l, _ := New(Config{Now: c.Now, MaxEntries: n})
		var order []string // keys by expiry
		for i := range n - 1 {
			key := fmt.Sprint("k", i)
			// Expiries in an order unrelated to insertion or key.
			order = append(order, key)
			mustAdd(t, l, Entry{Kind: KindSession, Key: key, Expiry: t0.Add(time.Minute * time.Duration(1+(i*37)%(n-1)))})
		}
		slices.SortFunc(order, func(a, b string) int {
			ea, _ := held(l, KindSession, a)
			eb, _ := held(l, KindSession, b)
			return ea.Expiry.Compare(eb.Expiry)
		})
		// The n-th entry expires last and churns until the heap is rebuilt.
		churnUntilRebuilt(t, l, Entry{Kind: KindSession, Key: "last", Expiry: t0.Add(24 * time.Hour)})
		for i, want := range order {
			mustAdd(t, l, Entry{Kind: KindSession, Key: fmt.Sprint("new", i), Expiry: t0.Add(48*time.Hour + time.Duration(i))})
			if l.Revoked(want, "", "", t0) {
				var gone []string
				for _, k := range order[i:] {
					if !l.Revoked(k, "", "", t0) {
						gone = append(gone, k)
					}
				}
				t.Fatalf("trial %d, eviction %d: %s (the earliest) kept, %v evicted instead", trial, i, want, gone)
			}
		}
	}
}

// An entry expires at its expiry instant (it is live while now < expiry,
// as Entries and Add say): at that very nanosecond a full class drops it as
// expired instead of evicting it, so it does not count as a forgotten
// logout (Evicted feeds bff_revocation_evictions_total, whose growth tells
// an operator to raise MaxEntries), and a sweep drops it.
func TestEntryExpiresAtItsInstant(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, k := range []Kind{KindSession, KindOnce} {
		for _, d := range []time.Duration{0, -time.Nanosecond} { // at, and just before, a's expiry
			t.Run(fmt.Sprint(kindName(k), d), func(t *testing.T) {
				c := &clock{t: t0}
				l, _ := New(Config{Now: c.Now, MaxEntries: 2, MaxOnce: 2})
				mustAdd(t, l, Entry{Kind: k, Key: "a", Expiry: t0.Add(time.Minute)})
				mustAdd(t, l, Entry{Kind: k, Key: "b", Expiry: t0.Add(time.Hour)})
				c.t = t0.Add(time.Minute + d)
				live := d < 0
				size := func() int { return l.Len() + l.OnceLen() }
				// A sweep drops a only once it has expired.
				if err := l.Sweep(); err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 2, false: 1}[live]; size() != want {
					t.Errorf("after Sweep: %d entries, want %d", size(), want)
				}
				// A new entry on the full class: a is evicted (counted)
				// only if it was still live.
				mustAdd(t, l, Entry{Kind: k, Key: "c", Expiry: t0.Add(2 * time.Hour)})
				rev, once := l.Evicted()
				want := map[bool]uint64{true: 1, false: 0}[live]
				if got := map[Kind]uint64{KindSession: rev, KindOnce: once}[k]; got != want {
					t.Errorf("Evicted() = %d, %d: counted %d, want %d", rev, once, got, want)
				}
				if _, ok := held(l, k, "a"); ok {
					t.Error("a still held")
				}
				if size() != 2 {
					t.Errorf("%d entries, want 2", size())
				}
			})
		}
	}
}

// churnUntilRebuilt adds e with ever later expiries (one nanosecond more
// each time) until its class's heap is rebuilt, and fails if it never is.
func churnUntilRebuilt(t *testing.T, l *List, e Entry) {
	t.Helper()
	cls, _ := l.classOf(e.Kind)
	exp := e.Expiry
	for i := 0; i < 10_000; i++ {
		before := len(cls.q)
		e.Expiry = exp.Add(time.Duration(i))
		mustAdd(t, l, e)
		if len(cls.q) < before {
			return
		}
	}
	t.Fatal("the heap was never rebuilt")
}

func kindName(k Kind) string {
	switch k {
	case KindSession:
		return "session"
	case KindIdPSession:
		return "idp"
	case KindSubject:
		return "subject"
	case KindOnce:
		return "once"
	}
	return "?"
}

// AppendEntriesLimit reserves the largest count header (binary.MaxVarintLen64
// bytes) and then keeps every entry that fits with it, up to the last byte:
// a limit that the reserved header and the entries fill exactly keeps them
// all (a full-state sync must not lose an entry it has room for).
func TestAppendEntriesLimitExact(t *testing.T) {
	entries := sampleEntries()
	full := len(AppendEntries(nil, entries)) // a one-byte count
	exact := full - 1 + binary.MaxVarintLen64
	tests := []struct {
		limit, want int
	}{
		{exact, len(entries)},
		{exact - 1, len(entries) - 1},
	}
	for _, tt := range tests {
		b, n := AppendEntriesLimit(nil, entries, tt.limit)
		if n != tt.want || len(b) > tt.limit {
			t.Errorf("limit %d: %d entries in %d bytes, want %d", tt.limit, n, len(b), tt.want)
		}
	}
}

// syncs replaces syncFile for the test with one that records the base name
// of every file synced (the directory's own name for a directory) and
// fails, without syncing, where fail says so.
func syncs(t *testing.T, fail func(name string) bool) *[]string {
	t.Helper()
	var (
		mu    sync.Mutex
		names []string
	)
	orig := syncFile
	t.Cleanup(func() { syncFile = orig })
	syncFile = func(f *os.File) error {
		name := filepath.Base(f.Name())
		mu.Lock()
		names = append(names, name)
		mu.Unlock()
		if fail != nil && fail(name) {
			return errors.New("injected sync failure")
		}
		return orig(f)
	}
	return &names
}

func isTemp(name string) bool { return strings.HasPrefix(name, ".revoked-") }

// count returns how many names satisfy f.
func count(names []string, f func(string) bool) int {
	n := 0
	for _, s := range names {
		if f(s) {
			n++
		}
	}
	return n
}

// A snapshot is durable before it replaces the log: the temporary file is
// synced while it still has its temporary name, then renamed, then the
// directory is synced (so that the rename survives a crash). A change is
// synced once, in the log; a call that changes nothing syncs nothing.
func TestWhatIsSynced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "revoked")
	var order []string
	orig := syncFile
	t.Cleanup(func() { syncFile = orig })
	syncFile = func(f *os.File) error {
		name := filepath.Base(f.Name())
		switch _, err := os.Stat(file); {
		case isTemp(name) && err == nil:
			order = append(order, "temp, after the rename")
		case isTemp(name):
			order = append(order, "temp")
		case name == "d" && err == nil:
			order = append(order, "dir")
		case name == "d":
			order = append(order, "dir, before the rename")
		default:
			order = append(order, name)
		}
		return orig(f)
	}
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	if want := "temp dir"; strings.Join(order, " ") != want {
		t.Errorf("creating the log synced %q, want %q", order, want)
	}
	order = nil
	e := Entry{Kind: KindSession, Key: "s1", Expiry: c.t.Add(time.Hour)}
	mustAdd(t, l, e)
	if want := "revoked"; strings.Join(order, " ") != want {
		t.Errorf("a change synced %q, want %q", order, want)
	}
	order = nil
	for _, f := range []func() (bool, error){
		func() (bool, error) { return l.Add(e) },
		func() (bool, error) { n, err := l.Merge([]Entry{e}); return n > 0, err },
		func() (bool, error) { return l.Add(Entry{Kind: KindSession, Key: "s2", Expiry: c.t}) }, // expired
	} {
		if changed, err := f(); changed || err != nil {
			t.Errorf("a call that changes nothing: changed=%v err=%v", changed, err)
		}
	}
	if len(order) != 0 {
		t.Errorf("calls that changed nothing synced %q", order)
	}
	if first, err := l.Use("u", c.t.Add(time.Hour)); !first || err != nil {
		t.Fatal(first, err)
	}
	order = nil
	if first, err := l.Use("u", c.t.Add(time.Hour)); first || err != nil {
		t.Errorf("a replayed Use: first=%v err=%v", first, err)
	}
	if len(order) != 0 {
		t.Errorf("a replayed Use synced %q", order)
	}
}

// A snapshot whose sync fails does not replace the log: the error is
// reported (here by New, which rewrites the log at start), the old log is
// left as it was, and the temporary file is removed.
func TestFailedSnapshotSyncKeepsLog(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "revoked")
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	mustAdd(t, l, Entry{Kind: KindSession, Key: "s1", Expiry: c.t.Add(time.Hour)})
	l.Close()
	before, _ := os.ReadFile(file)
	names := syncs(t, isTemp)
	if _, err := New(Config{SnapshotFile: file, Now: c.Now}); err == nil {
		t.Error("New succeeded though the snapshot's sync failed")
	}
	if count(*names, isTemp) != 1 {
		t.Errorf("synced %q, want one temporary file", *names)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("the log was replaced by a snapshot whose sync failed")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the directory: %v", ents)
	}
}

// The log is compacted only once it holds more than twice the live entries
// (and more than compactMin), counting entries of every kind: a list of
// many provider-session, subject or single-use entries must not be
// rewritten, O(n), on every change. Once they expire, a sweep compacts it,
// even to nothing.
func TestCompactionCountsEveryKind(t *testing.T) {
	const n = compactMin + 100
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, k := range []Kind{KindSession, KindIdPSession, KindSubject, KindOnce} {
		t.Run(kindName(k), func(t *testing.T) {
			c := &clock{t: t0}
			l := newFileList(t, Config{SnapshotFile: filepath.Join(t.TempDir(), "revoked"), Now: c.Now})
			names := syncs(t, nil)
			entries := make([]Entry, n)
			for i := range entries {
				entries[i] = Entry{Kind: k, Key: fmt.Sprint(i), Expiry: t0.Add(time.Hour)}
				if k == KindSubject {
					entries[i].Before = t0
				}
			}
			if got, err := l.Merge(entries); got != n || err != nil {
				t.Fatal(got, err)
			}
			e := entries[0]
			e.Key, e.Expiry = "one more", t0.Add(2*time.Hour)
			mustAdd(t, l, e)
			if m := count(*names, isTemp); m != 0 {
				t.Errorf("%d compactions of a log holding only live entries", m)
			}
			// Positive control: expired, the n entries are compacted away.
			c.t = t0.Add(90 * time.Minute)
			if err := l.Sweep(); err != nil {
				t.Fatal(err)
			}
			if m := count(*names, isTemp); m != 1 {
				t.Errorf("%d compactions after the entries expired, want 1", m)
			}
			// And a list that is all expired compacts to nothing.
			c.t = t0.Add(3 * time.Hour)
			if err := l.Sweep(); err != nil {
				t.Fatal(err)
			}
			if l.Len()+l.OnceLen() != 0 {
				t.Errorf("%d entries left", l.Len()+l.OnceLen())
			}
		})
	}
}

// A compaction that failed is retried only after as many appends as the
// list has entries (at least compactMin): retrying on every change would
// make each logout cost a full rewrite for as long as the disk fails. The
// failure is reported by Sweep, once.
func TestFailedCompactionBacksOff(t *testing.T) {
	const n = compactMin + 100
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	l := newFileList(t, Config{SnapshotFile: filepath.Join(t.TempDir(), "revoked"), Now: c.Now})
	failing := true
	names := syncs(t, func(name string) bool { return failing && isTemp(name) })
	batch := func(prefix string, exp time.Time) []Entry {
		entries := make([]Entry, n)
		for i := range entries {
			entries[i] = Entry{Kind: KindSession, Key: fmt.Sprint(prefix, i), Expiry: exp}
		}
		return entries
	}
	if _, err := l.Merge(batch("a", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(2 * time.Minute) // all expired: compaction due
	if err := l.Sweep(); err == nil {
		t.Fatal("Sweep did not report the failed compaction")
	}
	for i := range 10 {
		mustAdd(t, l, Entry{Kind: KindSession, Key: fmt.Sprint("b", i), Expiry: c.t.Add(time.Hour)})
	}
	if err := l.Sweep(); err != nil {
		t.Errorf("Sweep retried at once: %v", err)
	}
	if m := count(*names, isTemp); m != 1 {
		t.Errorf("%d compaction attempts, want 1 until n more appends", m)
	}
	// Positive control: after n more appends, it is retried (here once
	// they have expired too, so that it is due), and succeeds.
	failing = false
	if _, err := l.Merge(batch("c", c.t.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(2 * time.Hour)
	if err := l.Sweep(); err != nil {
		t.Fatal(err)
	}
	if m := count(*names, isTemp); m != 2 {
		t.Errorf("%d compaction attempts, want 2", m)
	}
}

// A compaction closes the log it replaces: otherwise every compaction
// would leak a descriptor, holding the replaced log's space on disk.
func TestCompactionClosesReplacedLog(t *testing.T) {
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	const n = compactMin + 100
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	file := filepath.Join(t.TempDir(), "revoked")
	l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	names := syncs(t, nil)
	open := func() (n int) {
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, file) {
				n++
			}
		}
		return n
	}
	for round := range 3 {
		entries := make([]Entry, n)
		for i := range entries {
			entries[i] = Entry{Kind: KindSession, Key: fmt.Sprint(round, "-", i), Expiry: c.t.Add(time.Minute)}
		}
		if _, err := l.Merge(entries); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(2 * time.Minute)
		if err := l.Sweep(); err != nil {
			t.Fatal(err)
		}
	}
	if m := count(*names, isTemp); m != 3 {
		t.Fatalf("%d compactions, want 3", m)
	}
	if m := open(); m != 1 {
		t.Errorf("%d descriptors open on the log (replaced ones included), want 1", m)
	}
}

// A key of maxKey bytes is valid (Add takes it), so it must decode too:
// otherwise an entry with the longest key would be recorded on one
// instance and dropped as malformed by every other. One byte more is
// refused by both.
func TestLongestKeyDecodes(t *testing.T) {
	exp := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{maxKey, maxKey + 1} {
		e := Entry{Kind: KindSubject, Key: strings.Repeat("k", n), Before: exp.Add(-time.Hour), Expiry: exp}
		valid := e.validate() == nil
		got, err := DecodeEntries(AppendEntries(nil, []Entry{e}))
		if decoded := err == nil && len(got) == 1 && got[0].Key == e.Key; decoded != valid || valid != (n <= maxKey) {
			t.Errorf("%d-byte key: valid=%v, decoded=%v (%v)", n, valid, decoded, err)
		}
	}
}

// rawRecord is a log record of payload with valid checksums, whatever the
// payload.
func rawRecord(payload []byte) []byte {
	h := make([]byte, recordHeader)
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(h[0:4], castagnoli))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(payload, castagnoli))
	return append(h, payload...)
}

// What a crash can leave, and what it cannot. A torn last append is ignored
// however much of it is missing, in a log large enough that the bytes read
// end where the file does (a small file's read buffer has room to spare past
// its end, which hid a slice past the data). A record whose checksums hold
// cannot be a torn append: if it does not decode it is corruption, even
// last, even empty, even at the size limit. And only a record that begins
// after a damaged one makes it corruption rather than a torn tail: bytes
// that straddle the previous record do not count.
func TestReplayEdges(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	base := filepath.Join(t.TempDir(), "base")
	l := newFileList(t, Config{SnapshotFile: base, Now: c.Now})
	for i := range 40 {
		if err := l.RevokeSession(fmt.Sprintf("s%03d-0123456789", i), c.t.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	intact, _ := os.ReadFile(base)
	mustAdd(t, l, Entry{Kind: KindSession, Key: "last", Expiry: c.t.Add(time.Hour)})
	full, _ := os.ReadFile(base)
	l.Close()
	last := full[len(intact):]
	if len(intact) < 1024 {
		t.Fatalf("log is only %d bytes", len(intact))
	}
	// A record that starts at the last byte of the intact log and has
	// valid checksums, followed by a damaged one where the next record
	// would start.
	x := intact[len(intact)-1] // its length's low byte
	straddle := []byte{0, 0, 0}
	head := append([]byte{x}, straddle...)
	straddle = binary.LittleEndian.AppendUint32(straddle, crc32.Checksum(head, castagnoli))
	straddle = binary.LittleEndian.AppendUint32(straddle, crc32.Checksum(make([]byte, x), castagnoli))
	straddle = append(straddle, make([]byte, x)...)
	if n, _ := recordAt(append(bytes.Clone(intact), straddle...), len(intact)-1); n == 0 {
		t.Fatal("the straddling record is not intact")
	}
	damaged := bytes.Clone(last)
	damaged[len(damaged)-1] ^= 0xff
	tests := []struct {
		name     string
		tail     []byte
		ok       bool
		haveLast bool
	}{
		{"whole last record", last, true, true},
		{"straddling the previous record, then damaged", straddle, true, false},
		{"empty record with valid checksums", rawRecord(nil), false, false},
		{"damaged, then an empty record with valid checksums", append(bytes.Clone(damaged), rawRecord(nil)...), false, false},
		{"garbage of the largest size, valid checksums", rawRecord(make([]byte, maxRecordLen)), false, false},
	}
	for _, cut := range []int{1, 2, 10, 30, len(last) - recordHeader, len(last) - 3} {
		tests = append(tests, struct {
			name     string
			tail     []byte
			ok       bool
			haveLast bool
		}{fmt.Sprintf("last record short of %d bytes", cut), last[:len(last)-cut], true, false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "revoked")
			if err := os.WriteFile(file, append(bytes.Clone(intact), tt.tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := New(Config{SnapshotFile: file, Now: c.Now})
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				return
			}
			defer l.Close()
			if l.Len() != 40+map[bool]int{true: 1}[tt.haveLast] || l.Revoked("last", "", "", c.t) != tt.haveLast {
				t.Errorf("len %d, last held %v; want 40 intact and last %v", l.Len(), l.Revoked("last", "", "", c.t), tt.haveLast)
			}
		})
	}
}

// A version 1 snapshot may hold any mix of kinds, one kind alone included
// (a deployment that only ever used back-channel or subject logout).
func TestLoadVersion1SnapshotOneKind(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	tests := []struct {
		name, json string
		revoked    func(l *List) bool
	}{
		{"provider sessions only", `{"version":1,"idp_sessions":{"idp-1":"2026-01-01T13:00:00Z","idp-2":"2026-01-01T13:00:00Z"}}`,
			func(l *List) bool { return l.Revoked("x", "idp-1", "", c.t) && l.Revoked("x", "idp-2", "", c.t) }},
		{"subjects only", `{"version":1,"subjects":{"alice":{"before":"2026-01-01T12:00:00Z","expiry":"2026-01-01T13:00:00Z"},"bob":{"before":"2026-01-01T12:00:00Z","expiry":"2026-01-01T13:00:00Z"}}}`,
			func(l *List) bool {
				return l.Revoked("x", "", "alice", c.t.Add(-time.Minute)) && l.Revoked("x", "", "bob", c.t.Add(-time.Minute))
			}},
		{"sessions only", `{"version":1,"sessions":{"s1":"2026-01-01T13:00:00Z","s2":"2026-01-01T13:00:00Z"}}`,
			func(l *List) bool { return l.Revoked("s1", "", "", c.t) && l.Revoked("s2", "", "", c.t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "revoked.json")
			if err := os.WriteFile(file, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
			if l.Len() != 2 || !tt.revoked(l) {
				t.Errorf("len %d, or an entry lost", l.Len())
			}
		})
	}
}

// An entry expires at its expiry instant everywhere: Entries (a peer's full
// state, the snapshot) leaves it out from that nanosecond on, and Add and
// Merge take nothing that expires at the current instant.
func TestExpiryInstantEverywhere(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	exp := t0.Add(time.Minute)
	for _, k := range []Kind{KindSession, KindIdPSession, KindSubject, KindOnce} {
		t.Run(kindName(k), func(t *testing.T) {
			entry := func(key string, exp time.Time) Entry {
				e := Entry{Kind: k, Key: key, Expiry: exp}
				if k == KindSubject {
					e.Before = t0
				}
				return e
			}
			c := &clock{t: t0}
			l, _ := New(Config{Now: c.Now})
			mustAdd(t, l, entry("e", exp))
			c.t = exp.Add(-time.Nanosecond)
			if got := l.Entries(); len(got) != 1 {
				t.Errorf("one nanosecond before its expiry: Entries() = %v", got)
			}
			c.t = exp
			if got := l.Entries(); len(got) != 0 {
				t.Errorf("at its expiry: Entries() = %v", got)
			}
			size := l.Len() + l.OnceLen()
			if changed, err := l.Add(entry("add", exp)); changed || err != nil {
				t.Errorf("Add of an entry expiring now: changed=%v err=%v", changed, err)
			}
			if n, err := l.Merge([]Entry{entry("merge", exp)}); n != 0 || err != nil {
				t.Errorf("Merge of an entry expiring now: %d %v", n, err)
			}
			if l.Len()+l.OnceLen() != size {
				t.Errorf("entries expiring now were recorded: %d entries, want %d", l.Len()+l.OnceLen(), size)
			}
		})
	}
	// The single-use values alone, more of them than revocations.
	c := &clock{t: t0}
	l, _ := New(Config{Now: c.Now})
	for i := range 3 {
		if first, err := l.Use(fmt.Sprint("u", i), exp); !first || err != nil {
			t.Fatal(first, err)
		}
	}
	if got := l.Entries(); len(got) != 3 {
		t.Errorf("Entries() = %v, want the 3 single-use values", got)
	}
}

// Loading the log at start takes only what is live: an entry whose expiry
// is the very nanosecond of the start is not loaded (nor counted, nor
// revoking); one a nanosecond later is.
func TestLoadAtExpiryInstant(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	file := filepath.Join(t.TempDir(), "revoked")
	c := &clock{t: t0}
	l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	mustAdd(t, l, Entry{Kind: KindSession, Key: "now", Expiry: t0.Add(time.Minute)})
	mustAdd(t, l, Entry{Kind: KindSession, Key: "later", Expiry: t0.Add(time.Minute + time.Nanosecond)})
	l.Close()
	c.t = t0.Add(time.Minute)
	l2 := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	if l2.Len() != 1 || l2.Revoked("now", "", "", c.t) || !l2.Revoked("later", "", "", c.t) {
		t.Errorf("loaded %d entries: %v", l2.Len(), l2.Entries())
	}
}
