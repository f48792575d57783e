package oauth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSanitizeCode: whatever the query string holds, the code that reaches
// an error message and a log line is short, printable ASCII.
func FuzzSanitizeCode(f *testing.F) {
	for _, s := range []string{"access_denied", "a\r\nSet-Cookie: x", `"\`, strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := sanitizeCode(s)
		if len(got) > 64 || !utf8.ValidString(got) {
			t.Fatalf("sanitizeCode(%q) = %q", s, got)
		}
		for _, c := range []byte(got) {
			if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				t.Fatalf("sanitizeCode(%q) = %q has byte %#x", s, got, c)
			}
		}
		if len(s) <= 64 && len(got) != len(s) {
			t.Fatalf("sanitizeCode(%q) changed the length", s)
		}
	})
}

// FuzzJWTExpiry: any access token string is either a positive exp or zero,
// never a panic.
func FuzzJWTExpiry(f *testing.F) {
	f.Add("opaque")
	f.Add("eyJhbGciOiJub25lIn0.eyJleHAiOjE1OTEwMjAwMDB9.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		if e := jwtExpiry(s); !e.IsZero() && e.Unix() <= 0 {
			t.Fatalf("jwtExpiry(%q) = %v", s, e)
		}
	})
}
