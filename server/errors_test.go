package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bff-project/bff/server"
)

func TestErrorResponses(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	tests := []struct {
		name, method, path string
		h                  http.Header
		status             int
		code               string
	}{
		{"unknown auth endpoint", http.MethodGet, "/auth/x", nil, http.StatusNotFound, "not_found"},
		{"unknown nested auth endpoint", http.MethodGet, "/auth/login/x", nil, http.StatusNotFound, "not_found"},
		{"GET logout", http.MethodGet, "/auth/logout", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"POST login", http.MethodPost, "/auth/login", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"DELETE user", http.MethodDelete, "/auth/user", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"signed out user", http.MethodGet, "/auth/user", nil, http.StatusUnauthorized, "unauthenticated"},
		{"signed out API", http.MethodGet, "/api/x", e.apiHeaders(), http.StatusUnauthorized, "unauthenticated"},
		{"bad returnTo", http.MethodGet, "/auth/login?returnTo=//evil", nil, http.StatusBadRequest, "invalid_request"},
		{"callback without state", http.MethodGet, "/auth/callback", nil, http.StatusBadRequest, "invalid_state"},
		{"forbidden logout", http.MethodPost, "/auth/logout", nil, http.StatusForbidden, "forbidden"},
		{"forbidden API", http.MethodGet, "/api/x", nil, http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(tt.method, tt.path, tt.h)
			checkJSONError(t, r, tt.status, tt.code)
			if tt.status == http.StatusUnauthorized && r.Header.Get("Location") != "" {
				t.Errorf("a signed-out call is redirected to %q", r.Header.Get("Location"))
			}
			// RFC 9110 15.5.2: a 401 names its scheme; nothing else does.
			if got := r.Header.Get("WWW-Authenticate"); (got != "") != (tt.status == http.StatusUnauthorized) {
				t.Errorf("status %d with WWW-Authenticate %q", tt.status, got)
			}
		})
	}
}

func TestAPIUpstreamDown(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	e.upstream.Close()
	r := b.do(http.MethodGet, "/api/x", e.apiHeaders())
	checkJSONError(t, r, http.StatusBadGateway, "bad_gateway")
	if strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "connection refused") {
		t.Errorf("502 body leaks the upstream: %s", r.body)
	}
	// An upstream outage does not end the session.
	if u := b.get("/auth/user"); u.StatusCode != http.StatusOK {
		t.Errorf("/auth/user after a 502: %d", u.StatusCode)
	}
}

func TestAPIDotSegments(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	r := b.do(http.MethodGet, "/api/%2e%2e/admin", e.apiHeaders())
	if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusNotFound {
		t.Fatalf("dot segments: status %d; body %s", r.StatusCode, r.body)
	}
	checkJSONError(t, r, r.StatusCode, "")
}

func TestStaticFallback(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	for _, p := range []string{"/", "/index.html", "/app/deep/link", "/auth"} {
		t.Run(p, func(t *testing.T) {
			r := b.get(p)
			if !strings.Contains(r.body, "<title>app</title>") {
				t.Fatalf("status %d body %q, want the static app", r.StatusCode, r.body)
			}
			csp := r.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %q", csp, d)
				}
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
		})
	}
}

// TestStaticStatusOK: a Static handler that writes without calling
// WriteHeader (the usual http.HandlerFunc) must answer 200.
func TestStaticStatusOK(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, p := range []string{"/", "/index.html"} {
		if r := e.browser().get(p); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", p, r.StatusCode)
		}
	}
}

// TestStaticExplicitStatus: a handler that sets its own status (as
// http.ServeContent and http.FileServer do) keeps it.
func TestStaticExplicitStatus(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		c.Static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("ok"))
		})
	}})
	r := e.browser().get("/")
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("status %d CSP %q, want 200 with a CSP", r.StatusCode, r.Header.Get("Content-Security-Policy"))
	}
}

func TestNoStaticIs404(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Static = nil }})
	checkJSONError(t, e.browser().get("/index.html"), http.StatusNotFound, "not_found")
}
