package revocation

import (
	"fmt"
	"runtime"
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

// 100k revoked sessions must fit in 16 MB.
func TestMemory100k(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := fill(t, 100_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("100k entries: %.1f MB heap, %d bytes per entry", float64(used)/(1<<20), used/100_000)
	if used > 16<<20 {
		t.Errorf("100k entries take %d bytes, budget 16 MB", used)
	}
	runtime.KeepAlive(l)
}

// The check on every request: O(1), no allocation.
func BenchmarkRevoked(b *testing.B) {
	for _, n := range []int{0, 100_000} {
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
