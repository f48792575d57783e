package crypto

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestNewChunkerBounds pins the edges of NewChunker's checks: 1 and
// maxChunksLimit chunks are allowed (0 means the default, 101 is refused),
// and the smallest cookie size allowed leaves exactly one byte of value in
// the chunk with the longest name, with the longest Max-Age.
func TestNewChunkerBounds(t *testing.T) {
	for _, tt := range []struct {
		chunks int
		ok     bool
	}{{1, true}, {maxChunksLimit, true}, {maxChunksLimit + 1, false}, {-1, false}} {
		_, err := NewChunker(ChunkConfig{Name: "s", MaxChunks: tt.chunks})
		if (err == nil) != tt.ok {
			t.Errorf("MaxChunks %d: err %v, want ok=%v", tt.chunks, err, tt.ok)
		}
	}

	// The line of the last chunk without its value: NAME.<index>=<attrs>.
	attrs := len((&Chunker{tail: "; HttpOnly; Secure; SameSite=Lax"}).attrsFor(MaxMaxAge))
	for _, chunks := range []int{1, 4, 10, 11} {
		// With 10 chunks the longest name is NAME.9: a check that also
		// looked at NAME.10 (one byte longer) would refuse the smallest size.
		line := len("sess."+strconv.Itoa(chunks-1)+"=") + attrs
		smallest := line + 1
		if _, err := NewChunker(ChunkConfig{Name: "sess", MaxChunks: chunks, MaxCookieSize: smallest}); err != nil {
			t.Errorf("%d chunks, size %d (one value byte in the last chunk): %v", chunks, smallest, err)
		}
		if _, err := NewChunker(ChunkConfig{Name: "sess", MaxChunks: chunks, MaxCookieSize: smallest - 1}); err == nil {
			t.Errorf("%d chunks, size %d (no room for a value): accepted", chunks, smallest-1)
		}
	}
}

// TestIsChunkNameDigits: a chunk index has at most three digits, canonical.
func TestIsChunkNameDigits(t *testing.T) {
	for name, want := range map[string]bool{"s.0": true, "s.99": true, "s.100": true, "s.999": true, "s.1000": false, "s.01": false, "s.": false} {
		if got := IsChunkName("s", name); got != want {
			t.Errorf("IsChunkName(s, %q) = %v, want %v", name, got, want)
		}
	}
}

// TestParseIndexValue: the index read is the decimal written.
func TestParseIndexValue(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "9": 9, "10": 10, "99": 99, "123": 123} {
		if got, ok := parseIndex(s); !ok || got != want {
			t.Errorf("parseIndex(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
}

// TestHeaderBytes: HeaderBytes (HeaderBytesMaxAge) is the length of the
// Cookie header a browser builds from what Write (WriteMaxAge) set, for any
// cookie name and number of chunks.
func TestHeaderBytes(t *testing.T) {
	for _, name := range []string{"s", "__Host-Http-bff", "__Host-Http-my-application-session"} {
		c, err := NewChunker(ChunkConfig{Name: name, MaxChunks: 12})
		if err != nil {
			t.Fatal(err)
		}
		// 3929-3931: where WriteMaxAge's longer attribute takes a second
		// chunk and Write's does not.
		for _, size := range []int{1, 100, 3900, 3929, 3930, 3931, 4000, 9000, 38000} {
			value := strings.Repeat("v", size)
			for _, w := range []struct {
				how   string
				write func(http.Header) error
				bytes int
			}{
				{"Write", func(h http.Header) error { return c.Write(h, nil, value) }, c.HeaderBytes(value)},
				{"WriteMaxAge", func(h http.Header) error { return c.WriteMaxAge(h, nil, value, 3600) }, c.HeaderBytesMaxAge(value, 3600)},
			} {
				h := http.Header{}
				if err := w.write(h); err != nil {
					t.Fatalf("%s, %d bytes, %s: %v", name, size, w.how, err)
				}
				var pairs []string
				for _, sc := range h.Values("Set-Cookie") {
					pair, _, _ := strings.Cut(sc, ";")
					pairs = append(pairs, pair)
				}
				if want := len(strings.Join(pairs, "; ")); w.bytes != want {
					t.Errorf("%s, %d bytes in %d chunks by %s: counted %d, the browser sends %d", name, size, len(pairs), w.how, w.bytes, want)
				}
			}
		}
	}
}

// TestHeaderBytesOverBudget: a value too large for Write is counted as if
// its last chunk had room (the over-budget warning reports that size): past
// the largest value Write takes, every extra byte adds one byte, no more
// chunk names.
func TestHeaderBytesOverBudget(t *testing.T) {
	c, err := NewChunker(ChunkConfig{Name: "__Host-Http-bff", MaxChunks: 3})
	if err != nil {
		t.Fatal(err)
	}
	fits := func(n int) bool { return c.Write(http.Header{}, nil, strings.Repeat("v", n)) == nil }
	lo, hi := 1, 1<<16 // fits(lo), !fits(hi)
	if !fits(lo) || fits(hi) {
		t.Fatalf("fits(%d)=%v fits(%d)=%v", lo, fits(lo), hi, fits(hi))
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	largest := c.HeaderBytes(strings.Repeat("v", lo))
	for _, extra := range []int{1, 1000, 20000} {
		if got := c.HeaderBytes(strings.Repeat("v", lo+extra)); got != largest+extra {
			t.Errorf("%d bytes over the largest value (%d): HeaderBytes %d, want %d", extra, lo, got, largest+extra)
		}
	}
}
