package server_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bff-project/bff/server"
)

func TestStaticDir(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"index.html":     "<!doctype html><title>dir app</title>",
		"app.js":         "console.log(1)",
		".env":           "SECRET=1",
		"sub/index.html": "sub",
		".git/config":    "[core]",
		"nolist/a.txt":   "a",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Static, c.StaticDir = nil, dir }})
	b := e.browser()
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/", http.StatusOK, "dir app"},
		{"/app.js", http.StatusOK, "console.log"},
		{"/sub/", http.StatusOK, "sub"},
		{"/.env", http.StatusNotFound, ""},
		{"/.git/config", http.StatusNotFound, ""},
		{"/nolist/", http.StatusNotFound, ""},
		{"/missing.js", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := b.get(tt.path)
			if r.StatusCode != tt.status || !strings.Contains(r.body, tt.body) {
				t.Fatalf("status %d body %q, want %d with %q", r.StatusCode, r.body, tt.status, tt.body)
			}
			if strings.Contains(r.body, "SECRET") || strings.Contains(r.body, "[core]") || strings.Contains(r.body, "a.txt") {
				t.Errorf("served a hidden file or a listing: %q", r.body)
			}
			if r.Header.Get("Content-Security-Policy") == "" {
				t.Error("no CSP")
			}
		})
	}
}

func TestStaticDirMissing(t *testing.T) {
	e := newEnv(t, envOptions{noRun: true})
	cfg := e.cfg
	cfg.Static, cfg.StaticDir = nil, filepath.Join(t.TempDir(), "nope")
	if _, err := server.New(cfg); err == nil {
		t.Fatal("server.New accepted a missing static_dir")
	}
}

func TestMetrics(t *testing.T) {
	// Off the app's listener by default: the metrics are for operators.
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	b.do(http.MethodGet, "/api/x", e.apiHeaders())
	b.get("/auth/nope")
	if r := b.get("/metrics"); strings.Contains(r.body, "bff_revocation_list_entries") {
		t.Errorf("/metrics on the main handler by default: %d", r.StatusCode)
	}
	// MetricsHandler (what main serves on metrics_listen) has them all.
	rec := httptest.NewRecorder()
	e.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("MetricsHandler: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{"bff_http_requests_total", "bff_sessions_total", "bff_session_cookie_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Requests are counted by route (the auth endpoint, the proxy route's
	// prefix, "other" for the rest) and status class.
	for _, series := range []string{
		`bff_http_requests_total{code="3xx",route="/auth/login"}`,
		`bff_http_requests_total{code="2xx",route="/api/"}`,
		`bff_http_requests_total{code="4xx",route="other"}`,
	} {
		if !strings.Contains(body, series+" ") {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	for _, leak := range []string{"eyJ", testClientSecret} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics shows %q", leak)
		}
	}
	// The signed-in calls opened the session cookie; nothing was refused.
	if got := metricValue(t, e.srv, `bff_sessions_total{event="opened"}`); got < 1 {
		t.Errorf(`bff_sessions_total{event="opened"} = %v, want >= 1`, got)
	}
	if strings.Contains(body, `bff_sessions_total{event="refused_`) {
		t.Errorf("a good session was counted as refused:\n%s", body)
	}

	pub := newEnv(t, envOptions{config: func(c *server.Config) { c.PublicMetrics = true }})
	if r := pub.browser().get("/metrics"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "bff_revocation_list_entries") {
		t.Errorf("PublicMetrics does not serve /metrics on the main handler: %d", r.StatusCode)
	}
}

func TestBackchannelLogoutRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	tests := []struct {
		name, body string
	}{
		{"no token", ""},
		{"garbage token", "logout_token=abc"},
		{"unsigned token", "logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
		{"two tokens", "logout_token=a&logout_token=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, http.MethodPost, e.base+"/auth/backchannel-logout", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := b.send(b.bff, req)
			checkJSONError(t, r, http.StatusBadRequest, "")
		})
	}
}
