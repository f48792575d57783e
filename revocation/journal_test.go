package revocation

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func newFileList(t *testing.T, cfg Config) *List {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// allKinds records one live entry of every kind, and one that expires
// within two minutes.
func allKinds(t *testing.T, l *List, now time.Time) {
	t.Helper()
	for _, err := range []error{
		l.RevokeSession("s1", now.Add(time.Hour)),
		l.RevokeSession("short", now.Add(time.Minute)),
		l.RevokeSubject("alice", now, now.Add(time.Hour)),
		l.RevokeIdPSession("idp-1", now.Add(time.Hour)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if first, err := l.Use("state:abc", now.Add(time.Hour)); !first || err != nil {
		t.Fatalf("Use: %v %v", first, err)
	}
}

// checkAllKinds checks, two minutes later, what allKinds recorded; others
// is how many other revocations the list holds.
func checkAllKinds(t *testing.T, l *List, now time.Time, others int) {
	t.Helper()
	if !l.Revoked("s1", "", "", now) {
		t.Error("lost a session revocation")
	}
	if !l.Revoked("x", "", "alice", now.Add(-3*time.Minute)) {
		t.Error("lost a subject revocation")
	}
	if !l.Revoked("y", "idp-1", "", now) {
		t.Error("lost a provider-session revocation")
	}
	if first, _ := l.Use("state:abc", now.Add(time.Hour)); first {
		t.Error("lost a single-use value")
	}
	if l.Revoked("short", "", "", now) || l.Len() != 3+others {
		t.Errorf("expired entry loaded: len = %d, want %d", l.Len(), 3+others)
	}
	// Positive control: what was never recorded is not there.
	if l.Revoked("s2", "", "bob", now) {
		t.Error("an unknown session is revoked")
	}
}

func TestRestartKeepsEveryKind(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	file := filepath.Join(t.TempDir(), "revoked")
	l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	allKinds(t, l, c.t)
	c.t = c.t.Add(2 * time.Minute)
	// No Close: a crash keeps what every call returned for.
	checkAllKinds(t, newFileList(t, Config{SnapshotFile: file, Now: c.Now}), c.t, 0)
}

func TestConcurrentAddsAllPersisted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "revoked")
	l := newFileList(t, Config{SnapshotFile: file})
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				if err := l.RevokeSession(fmt.Sprint(g, "-", i), exp); err != nil {
					t.Error(err)
				}
				if _, err := l.Use(fmt.Sprint("once-", g, "-", i), exp); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l2 := newFileList(t, Config{SnapshotFile: file})
	if l2.Len() != 800 || l2.OnceLen() != 800 {
		t.Errorf("after restart: Len() = %d, OnceLen() = %d; want 800, 800", l2.Len(), l2.OnceLen())
	}
}

// A crash can cut the last append short: that tail is ignored, everything
// before it kept, and the file repaired so that later appends read back.
func TestTornTailTolerated(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	l := newFileList(t, Config{SnapshotFile: base, Now: c.Now})
	allKinds(t, l, c.t)
	intact, _ := os.ReadFile(base)
	l.RevokeSession("last", c.t.Add(time.Hour))
	full, _ := os.ReadFile(base)
	last := full[len(intact):]
	if len(last) <= recordHeader {
		t.Fatalf("last append is %d bytes", len(last))
	}
	tests := []struct {
		name     string
		tail     []byte
		haveLast bool
	}{
		{"whole record", last, true},
		{"zeros", make([]byte, 64), false},
		{"garbage", []byte("\x07\x00\x00\x00garbage!garbage!"), false},
	}
	for i := 1; i < len(last); i++ {
		tests = append(tests, struct {
			name     string
			tail     []byte
			haveLast bool
		}{fmt.Sprintf("cut at %d", i), last[:i], false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "revoked")
			os.WriteFile(file, append(bytes.Clone(intact), tt.tail...), 0o600)
			now := c.t.Add(2 * time.Minute)
			cfg := Config{SnapshotFile: file, Now: func() time.Time { return now }}
			l := newFileList(t, cfg)
			others := 0
			if tt.haveLast {
				others = 1
			}
			checkAllKinds(t, l, now, others)
			if got := l.Revoked("last", "", "", now); got != tt.haveLast {
				t.Errorf("last entry revoked = %v, want %v", got, tt.haveLast)
			}
			// The tail is gone: a new append and a restart read back.
			if err := l.RevokeSession("after", now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if !newFileList(t, cfg).Revoked("after", "", "", now) {
				t.Error("an append after a torn tail was lost")
			}
		})
	}
}

// A file damaged anywhere but in its last append is an error: starting
// with what could be read would bring revoked sessions back.
func TestCorruptFileRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "revoked")
	l := newFileList(t, Config{SnapshotFile: file})
	exp := time.Now().Add(time.Hour)
	l.RevokeSession("a", exp)
	l.RevokeSession("b", exp)
	l.RevokeSession("c", exp)
	good, _ := os.ReadFile(file)
	firstRecord := len(logMagic) // the snapshot New wrote is empty: the first record is "a"
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	tests := []struct {
		name string
		b    []byte
	}{
		{"bit flip in a record's length", flip(firstRecord)},
		{"bit flip in a record's header checksum", flip(firstRecord + 5)},
		{"bit flip in a record's payload", flip(firstRecord + recordHeader + 3)},
		{"bit flip in the magic", flip(2)},
		{"record dropped from the middle", append(bytes.Clone(good[:firstRecord]), good[firstRecord+recordHeader+1:]...)},
		{"empty file", []byte{}},
		{"not a revocation file", []byte("{garbage")},
		{"unknown JSON version", []byte(`{"version":2}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "revoked")
			os.WriteFile(f, tt.b, 0o600)
			if l, err := New(Config{SnapshotFile: f}); err == nil {
				l.Close()
				t.Error("a damaged file was accepted")
			}
		})
	}
	// Positive control: the undamaged file loads, with all three.
	f := filepath.Join(t.TempDir(), "revoked")
	os.WriteFile(f, good, 0o600)
	if l := newFileList(t, Config{SnapshotFile: f}); l.Len() != 3 {
		t.Errorf("the intact file loads %d entries, want 3", l.Len())
	}
}

// Deployed instances hold version 1 JSON snapshots: they must keep their
// revocations, and the file is upgraded in place.
func TestLoadVersion1Snapshot(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	file := filepath.Join(t.TempDir(), "revoked.json")
	// As the JSON snapshot writer wrote it.
	v1 := `{"version":1,` +
		`"sessions":{"s1":"2026-01-01T13:00:00Z","short":"2026-01-01T12:01:00Z"},` +
		`"idp_sessions":{"idp-1":"2026-01-01T13:00:00Z"},` +
		`"subjects":{"alice":{"before":"2026-01-01T12:00:00Z","expiry":"2026-01-01T13:00:00Z"}}}`
	os.WriteFile(file, []byte(v1), 0o600)
	c.t = c.t.Add(2 * time.Minute)
	l := newFileList(t, Config{SnapshotFile: file, Now: c.Now})
	l.Use("state:abc", c.t.Add(time.Hour))
	checkAllKinds(t, l, c.t, 0)
	if b, _ := os.ReadFile(file); !bytes.HasPrefix(b, logMagic) {
		t.Error("the version 1 snapshot was not upgraded")
	}
	checkAllKinds(t, newFileList(t, Config{SnapshotFile: file, Now: c.Now}), c.t, 0)
}

// The log is compacted when it holds twice the live entries: under churn
// (a full list evicting on every add) its size stays bounded.
func TestCompactionBoundsFile(t *testing.T) {
	const max, adds, batch = 1000, 40_000, 50
	file := filepath.Join(t.TempDir(), "revoked")
	l := newFileList(t, Config{SnapshotFile: file, MaxEntries: max})
	exp := time.Now().Add(time.Hour)
	var largest int64
	for i := 0; i < adds; i += batch {
		entries := make([]Entry, batch)
		for k := range entries {
			entries[k] = Entry{Kind: KindSession, Key: fmt.Sprintf("%022d", i+k), Expiry: exp.Add(time.Duration(i + k))}
		}
		if n, err := l.Merge(entries); err != nil || n != batch {
			t.Fatalf("merge: %d %v", n, err)
		}
		if fi, _ := os.Stat(file); fi.Size() > largest {
			largest = fi.Size()
		}
	}
	// An entry is 34 bytes in the codec, plus 14 bytes of headers a record.
	const entry = 34
	bound := int64((compactMin + 2*max + batch) * (entry + 14/batch + 1))
	t.Logf("largest log %d bytes (bound %d); without compaction %d", largest, bound, adds*entry)
	if largest > bound {
		t.Errorf("log grew to %d bytes, bound %d", largest, bound)
	}
	// Positive control: the log did grow by appends between compactions.
	if largest < int64(compactMin*30) {
		t.Errorf("log never grew past %d bytes: appends are not being logged", largest)
	}
	l2 := newFileList(t, Config{SnapshotFile: file, MaxEntries: max})
	if l2.Len() != max || !l2.Revoked(fmt.Sprintf("%022d", adds-1), "", "", time.Now()) || l2.Revoked(fmt.Sprintf("%022d", adds-max-1), "", "", time.Now()) {
		t.Errorf("after restart: len %d, want the latest %d", l2.Len(), max)
	}
}

// A failed append (disk full, I/O error) is not lost: the change stays
// queued and is written, after the partial record is cut, by the next one.
func TestFailedAppendRetried(t *testing.T) {
	file := filepath.Join(t.TempDir(), "revoked")
	l := newFileList(t, Config{SnapshotFile: file})
	exp := time.Now().Add(time.Hour)
	good := l.j.f
	ro, err := os.Open(file) // writes to it fail
	if err != nil {
		t.Fatal(err)
	}
	l.j.f = ro
	if err := l.RevokeSession("while-failing", exp); err == nil {
		t.Fatal("an append to a read-only file succeeded")
	}
	if !l.Revoked("while-failing", "", "", time.Now()) {
		t.Error("a change whose append failed must still count in memory")
	}
	ro.Close()
	l.j.f = good
	good.Write([]byte("partial")) // what the failed write may have left
	if err := l.RevokeSession("next", exp); err != nil {
		t.Fatal(err)
	}
	l2 := newFileList(t, Config{SnapshotFile: file})
	if !l2.Revoked("while-failing", "", "", time.Now()) || !l2.Revoked("next", "", "", time.Now()) {
		t.Error("the failed change or the next one was lost")
	}
}

func TestUnwritableFileStopsStart(t *testing.T) {
	if _, err := New(Config{SnapshotFile: filepath.Join(t.TempDir(), "missing", "revoked")}); err == nil {
		t.Error("New accepted a file it cannot create")
	}
}

// The loader reads whatever is on disk: it must never panic, and what it
// accepts must be records this package could have written.
func FuzzReplay(f *testing.F) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	// Seeds are what follows the magic.
	good := appendRecords(nil, sampleEntries())
	good = appendRecords(good, []Entry{{Kind: KindOnce, Key: "state:x", Expiry: t0.Add(time.Minute)}})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append(bytes.Clone(logMagic), b...)
		var got []Entry
		if err := replay(b, func(e []Entry) { got = append(got, e...) }); err != nil {
			return
		}
		for _, e := range got {
			if e.validate() != nil {
				t.Fatalf("replayed an invalid entry %+v", e)
			}
		}
	})
}
