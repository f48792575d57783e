package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	h := Page()
	tests := []struct {
		name, path  string
		status      int
		contentType string
		contains    []string
	}{
		{"index", "/", http.StatusOK, "text/html; charset=utf-8", []string{
			`id="login"`, `href="/auth/login?returnTo=/"`, `id="logout"`, `id="user"`, `id="call-api"`,
			`id="api-result"`, `id="call-echo"`, `id="echo-result"`, `id="cookies"`, `src="/app.js"`,
			`id="events-toggle"`, `id="events-status"`, `id="events"`, `id="cookie-list"`, `id="cookie-verdict"`,
		}},
		{"script", "/app.js", http.StatusOK, "text/javascript; charset=utf-8", []string{
			"/auth/user", "/api/whoami", "/api/echo", "/auth/logout", "'X-CSRF': '1'", "logout_url", "document.cookie",
			"new EventSource('/api/events')", "/demo/cookies", "Page script could not read any of them",
		}},
		{"style", "/app.css", http.StatusOK, "text/css; charset=utf-8", nil},
		{"unknown", "/nope", http.StatusNotFound, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.contentType != "" && rec.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", rec.Header().Get("Content-Type"), tc.contentType)
			}
			for _, s := range tc.contains {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body lacks %q", s)
				}
			}
		})
	}

	t.Run("no inline script or style", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body := rec.Body.String()
		for _, bad := range []string{"<script>", "<style", " style=", " onclick=", "http://", "https://"} {
			if strings.Contains(body, bad) {
				t.Errorf("page contains %q, which breaks under default-src 'self' or loads an external resource", bad)
			}
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})

	t.Run("keeps the server's CSP", func(t *testing.T) {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Security-Policy", "default-src 'none'")
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got := rec.Header().Get("Content-Security-Policy"); got != "default-src 'none'" {
			t.Errorf("Content-Security-Policy = %q", got)
		}
	})
}

func TestPageCookies(t *testing.T) {
	const secret = "sealed-value-must-not-appear"
	h := Page()
	get := func(t *testing.T, cookies ...*http.Cookie) (*httptest.ResponseRecorder, heldCookies) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/demo/cookies", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var got heldCookies
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("body %s: %v", rec.Body, err)
		}
		return rec, got
	}

	t.Run("names and sizes, never values", func(t *testing.T) {
		chunk1 := strings.Repeat("B", 120) + secret
		rec, got := get(t,
			&http.Cookie{Name: "__Host-Http-bff.1", Value: chunk1},
			&http.Cookie{Name: "__Host-Http-bff.0", Value: secret},
			&http.Cookie{Name: "theme", Value: "dark"},
		)
		want := []heldCookie{
			{"__Host-Http-bff.0", len("__Host-Http-bff.0=") + len(secret)},
			{"__Host-Http-bff.1", len("__Host-Http-bff.1=") + len(chunk1)},
			{"theme", len("theme=dark")},
		}
		if !slices.Equal(got.Cookies, want) {
			t.Errorf("cookies = %+v, want %+v", got.Cookies, want)
		}
		header := "__Host-Http-bff.1=" + chunk1 + "; __Host-Http-bff.0=" + secret + "; theme=dark"
		if got.HeaderBytes != len(header) {
			t.Errorf("header_bytes = %d, want %d", got.HeaderBytes, len(header))
		}
		if strings.Contains(rec.Body.String(), secret) || strings.Contains(rec.Body.String(), "dark") {
			t.Errorf("the answer holds a cookie value: %s", rec.Body)
		}
		for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if acao := rec.Header().Get("Access-Control-Allow-Origin"); acao != "" {
			t.Errorf("Access-Control-Allow-Origin = %q: another origin could read the list", acao)
		}
	})

	t.Run("none", func(t *testing.T) {
		rec, got := get(t)
		if got.Cookies == nil || len(got.Cookies) != 0 || got.HeaderBytes != 0 {
			t.Errorf("without cookies: %s, want an empty list", rec.Body)
		}
	})

	t.Run("GET only", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/demo/cookies", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST: status %d, want 405", rec.Code)
		}
	})
}

// heldCookies is the JSON of GET /demo/cookies.
type heldCookies struct {
	Cookies     []heldCookie `json:"cookies"`
	HeaderBytes int          `json:"header_bytes"`
}
