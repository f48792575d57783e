package server_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/bff-project/bff/server"
)

// TestConfigValidation: New accepts a public URL that is an origin (a
// trailing "/" allowed) and nothing else, and a SameSite of lax or strict
// (unset and http.SameSiteDefaultMode meaning lax), never none.
func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name     string
		public   string
		sameSite http.SameSite
		ok       bool
	}{
		{name: "origin", public: "https://app.example.test", ok: true},
		{name: "origin with slash", public: "https://app.example.test/", ok: true},
		{name: "http origin with port", public: "http://localhost:8080", ok: true},
		{name: "path", public: "https://app.example.test/app"},
		{name: "path with slash", public: "https://app.example.test/app/"},
		{name: "query", public: "https://app.example.test/?x=1"},
		{name: "other scheme", public: "ftp://app.example.test"},
		{name: "no host", public: "https://"},
		{name: "no scheme", public: "app.example.test"},
		{name: "same_site default mode", sameSite: http.SameSiteDefaultMode, ok: true},
		{name: "same_site lax", sameSite: http.SameSiteLaxMode, ok: true},
		{name: "same_site strict", sameSite: http.SameSiteStrictMode, ok: true},
		{name: "same_site none", sameSite: http.SameSiteNoneMode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			public := tc.public
			if public == "" {
				public = "https://app.example.test"
			}
			srv, err := server.New(server.Config{
				PublicURL: public,
				OIDC:      oauthConfig("https://idp.example.test", public),
				Secrets:   [][]byte{testMaster},
				Logger:    slog.New(slog.DiscardHandler),
				SameSite:  tc.sameSite,
			})
			if srv != nil {
				t.Cleanup(func() { srv.Close() })
			}
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("New accepted public_url %q, same_site %v", public, tc.sameSite)
			}
		})
	}
}

// TestSameSiteStrictCookies: same_site strict reaches the session cookies
// (the default, lax, is checked by TestCallbackSignsIn).
func TestSameSiteStrictCookies(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.SameSite = http.SameSiteStrictMode }})
	_, cb := e.browser().signIn("/")
	c := cb.setCookie(sessionCookie + ".0")
	if c == nil {
		t.Fatal("no session cookie")
	}
	if c.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie SameSite %v, want Strict (%v)", c.SameSite, http.SameSiteStrictMode)
	}
}
