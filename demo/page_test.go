package demo

import (
	"net/http"
	"net/http/httptest"
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
		}},
		{"script", "/app.js", http.StatusOK, "text/javascript; charset=utf-8", []string{
			"/auth/user", "/api/whoami", "/api/echo", "/auth/logout", "'X-CSRF': '1'", "logout_url", "document.cookie",
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
