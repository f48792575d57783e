package revocation

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func fill(tb testing.TB, n int) *List {
	tb.Helper()
	l, err := New(Config{})
	if err != nil {
		tb.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	entries := make([]Entry, n)
	for i := range entries {
		// 22 characters, like a base64url 128-bit session id.
		entries[i] = Entry{Kind: KindSession, Key: fmt.Sprintf("%022d", i), Expiry: exp}
	}
	if _, err := l.Merge(entries); err != nil {
		tb.Fatal(err)
	}
	return l
}

// A revoked session costs under 160 bytes of heap (16 MB per 100k), at the
// sizes the README's cost table names: `go test -run TestMemory -v`.
func TestMemory(t *testing.T) {
	for _, n := range []int{100_000, DefaultMaxEntries} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := fill(t, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("%d entries: %.1f MB heap, %d bytes per entry", n, float64(used)/(1<<20), used/int64(n))
		if used > int64(n)*160 {
			t.Errorf("%d entries take %d bytes, budget 160 per entry", n, used)
		}
		runtime.KeepAlive(l)
	}
}

// The check on every request: O(1), no allocation.
func BenchmarkRevoked(b *testing.B) {
	for _, n := range []int{0, 100_000, DefaultMaxEntries} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l := fill(b, n)
			start := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if l.Revoked("c2Vzc2lvbi1pZC1ub3Qtb24", "sid-x", "alice", start) {
					b.Fatal("revoked")
				}
			}
		})
	}
}

func TestRevokedDoesNotAllocate(t *testing.T) {
	l := fill(t, 1000)
	start := time.Now()
	if n := testing.AllocsPerRun(100, func() { l.Revoked("nope", "sid", "sub", start) }); n != 0 {
		t.Errorf("Revoked allocates %v times per call", n)
	}
}

// Adding to a persisted list appends the change and syncs: its cost must
// not grow with the list (compare the sizes; the old JSON snapshot
// rewrote every entry on every change).
func BenchmarkAddPersisted(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			file := filepath.Join(b.TempDir(), "revoked")
			l, err := New(Config{SnapshotFile: file})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			exp := time.Now().Add(time.Hour)
			entries := make([]Entry, n)
			for i := range entries {
				entries[i] = Entry{Kind: KindSession, Key: fmt.Sprintf("%022d", i), Expiry: exp}
			}
			if _, err := l.Merge(entries); err != nil {
				b.Fatal(err)
			}
			before, _ := os.Stat(file)
			i := 0
			for b.Loop() {
				if err := l.RevokeSession(fmt.Sprintf("new-%018d", i), exp); err != nil {
					b.Fatal(err)
				}
				i++
			}
			after, _ := os.Stat(file)
			b.ReportMetric(float64(after.Size()-before.Size())/float64(i), "bytes-written/op")
		})
	}
}

// Concurrent adds share appends and syncs (group commit): with 32 writers,
// each pays a fraction of a sync.
func BenchmarkAddPersistedParallel(b *testing.B) {
	l, err := New(Config{SnapshotFile: filepath.Join(b.TempDir(), "revoked")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	exp := time.Now().Add(time.Hour)
	var n atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.RevokeSession(fmt.Sprintf("p-%020d", n.Add(1)), exp); err != nil {
				b.Error(err)
			}
		}
	})
}
