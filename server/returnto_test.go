package server

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestValidReturnTo(t *testing.T) {
	long := "/" + strings.Repeat("a", 2047)
	tests := []struct {
		name string
		in   string
		want string // "" means refused
	}{
		{"empty means root", "", "/"},
		{"root", "/", "/"},
		{"path query fragment", "/a/b?x=1#f", "/a/b?x=1#f"},
		{"encoded space", "/%20", "/%20"},
		{"encoded unicode", "/caf%C3%A9", "/caf%C3%A9"},
		{"dot segments stay relative", "/a/../b", "/a/../b"},
		{"query with slashes", "/a?next=//evil.com", "/a?next=//evil.com"},
		{"at the limit", "/" + strings.Repeat("a", 1023), "/" + strings.Repeat("a", 1023)},

		{"relative", "a", ""},
		{"relative dot", "./a", ""},
		{"scheme relative", "//evil.com", ""},
		{"scheme relative with path", "//evil.com/x", ""},
		{"triple slash", "///evil.com", ""},
		{"slash backslash", "/\\evil.com", ""},
		{"double backslash", "\\\\evil", ""},
		{"backslash inside", "/a\\b", ""},
		{"encoded slashes", "/%2f%2fevil.com", ""},
		{"encoded slashes upper", "/%2F%2Fevil.com", ""},
		{"encoded backslash", "/%5cevil", ""},
		{"encoded backslash upper", "/%5Cevil", ""},
		{"https", "https://evil.com", ""},
		{"http", "http://evil.com", ""},
		{"javascript", "javascript:alert(1)", ""},
		{"data", "data:text/html,x", ""},
		{"crlf injection", "/\r\nSet-Cookie:x", ""},
		{"lf", "/\nx", ""},
		{"tab", "/\tx", ""},
		{"tab after slash then slash", "/\t/evil.com", ""},
		{"space", "/x y", ""},
		{"nul byte", "/\x00", ""},
		{"del byte", "/\x7f", ""},
		{"encoded nul", "/%00", ""},
		{"2 KB path", long, ""},
		{"one over the limit", "/" + strings.Repeat("a", 1024), ""},
		{"raw unicode", "/café", ""},
		{"raw unicode slash lookalike", "/\u2215evil.com", ""},
		{"fullwidth solidus", "/\uff0fevil.com", ""},
		{"invalid percent", "/%zz", ""},
		{"userinfo trick", "/@evil.com", "/@evil.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validReturnTo(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("validReturnTo(%q) = %q, want refused", tt.in, got)
				}
				if !errors.Is(err, errBadReturnTo) {
					t.Fatalf("validReturnTo(%q) error %v, want errBadReturnTo", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("validReturnTo(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			checkAccepted(t, tt.in, got)
		})
	}
}

// checkAccepted asserts what every accepted returnTo must satisfy, whatever
// the input was.
func checkAccepted(t *testing.T, in, got string) {
	t.Helper()
	if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
		t.Fatalf("validReturnTo(%q) accepted %q: not a plain absolute path", in, got)
	}
	for i := 0; i < len(got); i++ {
		if got[i] <= 0x20 {
			t.Fatalf("validReturnTo(%q) accepted %q with byte %#x", in, got, got[i])
		}
	}
	if strings.Contains(got, "\\") {
		t.Fatalf("validReturnTo(%q) accepted %q with a backslash", in, got)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatalf("validReturnTo(%q) accepted %q, which url.Parse refuses: %v", in, got, err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		t.Fatalf("validReturnTo(%q) accepted %q with scheme %q host %q", in, got, u.Scheme, u.Host)
	}
	// Resolved against the app's origin, it must stay on that origin.
	base, _ := url.Parse("https://app.example.com/some/page")
	if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
		t.Fatalf("validReturnTo(%q) accepted %q, which resolves to %s", in, got, r)
	}
	if in != "" && got != in {
		t.Fatalf("validReturnTo(%q) rewrote the value to %q", in, got)
	}
}

func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/a/b?x=1#f", "//evil.com", "/\\evil.com", "/%2f%2fevil", "https://evil.com", "/\r\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := validReturnTo(s)
		if err != nil {
			if !errors.Is(err, errBadReturnTo) {
				t.Fatalf("validReturnTo(%q) error %v, want errBadReturnTo", s, err)
			}
			if got != "" {
				t.Fatalf("validReturnTo(%q) refused but returned %q", s, got)
			}
			return
		}
		checkAccepted(t, s, got)
	})
}
