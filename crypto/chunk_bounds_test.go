package crypto

import (
	"strconv"
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
