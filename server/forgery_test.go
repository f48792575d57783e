package server_test

import (
	"net/http"
	"testing"
)

func TestAntiForgery(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	public := e.cfg.PublicURL
	cases := []struct {
		name string
		h    http.Header
		ok   bool
	}{
		{"no X-CSRF", http.Header{"Origin": {public}, "Sec-Fetch-Site": {"same-origin"}}, false},
		{"X-CSRF 0", http.Header{"X-Csrf": {"0"}, "Origin": {public}}, false},
		{"X-CSRF empty", http.Header{"X-Csrf": {""}, "Origin": {public}}, false},
		{"two X-CSRF", http.Header{"X-Csrf": {"1", "1"}, "Origin": {public}}, false},
		{"cross-site", http.Header{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"cross-site"}}, false},
		{"foreign Origin", http.Header{"X-Csrf": {"1"}, "Origin": {"https://evil.example"}}, false},
		{"Origin of another port", http.Header{"X-Csrf": {"1"}, "Origin": {"http://localhost:1"}}, false},
		{"Origin null", http.Header{"X-Csrf": {"1"}, "Origin": {"null"}}, false},
		{"two Origin", http.Header{"X-Csrf": {"1"}, "Origin": {public, public}}, false},
		{"Origin with a path", http.Header{"X-Csrf": {"1"}, "Origin": {public + "/"}}, false},
		{"same-origin with Origin and X-CSRF", http.Header{"X-Csrf": {"1"}, "Origin": {public}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"X-CSRF without Origin (old browser)", http.Header{"X-Csrf": {"1"}}, true},
	}
	targets := []struct {
		method, path string
		okStatus     int
	}{
		{http.MethodGet, "/api/whoami", http.StatusOK},
		{http.MethodPost, "/api/things", http.StatusOK},
		// Last: a passing logout ends the session.
		{http.MethodPost, "/auth/logout", http.StatusOK},
	}
	for _, tg := range targets {
		for _, c := range cases {
			if c.ok && tg.path == "/auth/logout" {
				continue // run once, below
			}
			t.Run(tg.method+" "+tg.path+"/"+c.name, func(t *testing.T) {
				r := b.do(tg.method, tg.path, c.h)
				if !c.ok {
					checkJSONError(t, r, http.StatusForbidden, "forbidden")
					if len(r.Cookies()) != 0 {
						t.Errorf("refused request touched cookies: %v", r.Header.Values("Set-Cookie"))
					}
					return
				}
				if r.StatusCode != tg.okStatus {
					t.Fatalf("status %d, want %d; body %s", r.StatusCode, tg.okStatus, r.body)
				}
			})
		}
	}
	// Nothing refused above ended the session.
	if u := b.get("/auth/user"); u.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user after refused requests: %d", u.StatusCode)
	}
	t.Run("POST /auth/logout/passes", func(t *testing.T) {
		r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d; body %s", r.StatusCode, r.body)
		}
	})
}

func TestUserRefusesCrossSite(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	for name, h := range map[string]http.Header{
		"cross-site":     {"Sec-Fetch-Site": {"cross-site"}},
		"foreign Origin": {"Origin": {"https://evil.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			checkJSONError(t, b.do(http.MethodGet, "/auth/user", h), http.StatusForbidden, "forbidden")
		})
	}
	// A plain same-origin GET needs no X-CSRF.
	if r := b.do(http.MethodGet, "/auth/user", http.Header{"Sec-Fetch-Site": {"same-origin"}}); r.StatusCode != http.StatusOK {
		t.Errorf("same-origin /auth/user: %d", r.StatusCode)
	}
}
