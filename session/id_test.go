package session

import (
	"encoding/base64"
	"testing"
)

// TestNewIDDistinct: session ids are 128 random bits, base64url without
// padding (22 characters), and never repeat. The length and alphabet check
// is the control that distinct values are real ids, not empty strings.
func TestNewIDDistinct(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	for i := range n {
		id := NewID()
		if len(id) != 22 {
			t.Fatalf("id %d %q has %d characters, want 22", i, id, len(id))
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("id %d %q is not 16 bytes of base64url: %v", i, id, err)
		}
		if seen[id] {
			t.Fatalf("id %d %q repeats an earlier id", i, id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids, want %d", len(seen), n)
	}
}
