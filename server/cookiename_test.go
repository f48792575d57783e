package server

import (
	"errors"
	"net/http"
	"testing"

	"github.com/bff-project/bff/crypto"
)

// TestBFFCookieNamespace: the predicate the proxy filters cookies with (in
// both directions) covers every name the session reader takes as its own.
// When it was narrower (canonical chunk names only), an upstream could set
// NAME.00, which the reader then refused the whole session for.
func TestBFFCookieNamespace(t *testing.T) {
	const name = "__Host-Http-bff"
	s := &Server{cfg: Config{CookieName: name}}
	chunker, err := crypto.NewChunker(crypto.ChunkConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cookie string
		ours   bool
	}{
		{name + ".0", true},
		{name + ".1", true},
		{name + ".00", true},
		{name + ".x", true},
		{name + ".+1", true},
		{name + ".", true},
		{name + ".-1", true},
		{name + "-login.ab12", true},
		{name, false},
		{"__host-http-bff.0", false}, // names are case-sensitive, in browsers and here
		{name + "x.0", false},
		{"app", false},
	}
	for _, tt := range tests {
		t.Run(tt.cookie, func(t *testing.T) {
			if got := s.isBFFCookie(tt.cookie); got != tt.ours {
				t.Errorf("isBFFCookie(%q) = %v, want %v", tt.cookie, got, tt.ours)
			}
			// The reader's view: a name it reads makes anything but
			// ErrNoCookie. Every such name must be filtered.
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", tt.cookie+"=v")
			_, err := chunker.Read(r)
			if readerTakes := !errors.Is(err, crypto.ErrNoCookie); readerTakes && !s.isBFFCookie(tt.cookie) {
				t.Errorf("the reader takes %q as a session chunk but the filter lets it through", tt.cookie)
			}
		})
	}
}
