package server_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// TestLogsHoldNoSecrets runs a full flow, with a refresh on every API call
// and a few refused requests, and asserts that no secret reaches the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.RefreshMargin = 24 * time.Hour }})
	b := e.browser()
	var secrets []string
	addCookies := func(r *result) {
		for _, c := range r.Cookies() {
			if len(c.Value) >= 8 {
				secrets = append(secrets, c.Value)
			}
		}
	}

	f := b.startLogin("/after?x=1")
	addCookies(f.login)
	aq, cq := f.authURL.Query(), f.callback.Query()
	secrets = append(secrets, aq.Get("state"), aq.Get("nonce"), aq.Get("code_challenge"), cq.Get("code"), cq.Get("state"))
	saved := b.jar.clone()
	cb := b.finish(f)
	if cb.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", cb.StatusCode)
	}
	addCookies(cb)
	// A replayed code and a forged state log refusals.
	addCookies(e.browserWithJar(saved).finish(f))
	b.get("/auth/callback?state=" + url.QueryEscape(cq.Get("state")) + "&code=" + url.QueryEscape(cq.Get("code")))
	b.get("/auth/login?returnTo=" + url.QueryEscape("//evil.example/"+cq.Get("code")))

	if u := b.get("/auth/user"); u.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user: %d", u.StatusCode)
	}
	for range 2 {
		api := b.do(http.MethodGet, "/api/whoami?token=q", e.apiHeaders())
		if api.StatusCode != http.StatusOK || !api.sessionSet() {
			t.Fatalf("/api/whoami: %d, refreshed %v", api.StatusCode, api.sessionSet())
		}
		addCookies(api)
	}
	old := b.jar.clone()
	lo := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
	if lo.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", lo.StatusCode)
	}
	var ans logoutAnswer
	lo.json(t, &ans)
	secrets = append(secrets, mustParse(t, ans.LogoutURL).Query().Get("id_token_hint"))
	// A replay after logout logs a revoked session.
	e.browserWithJar(old).do(http.MethodGet, "/api/whoami", e.apiHeaders())
	for _, c := range old.Cookies(&url.URL{Scheme: "http", Host: "localhost"}) {
		secrets = append(secrets, c.Value)
	}

	logs := e.logs.String()
	if !strings.Contains(logs, `"signed in"`) || !strings.Contains(logs, `"signed out"`) {
		t.Fatalf("the log does not show the flow:\n%s", logs)
	}
	forbidden := append([]string{testClientSecret, "eyJ", "Bearer", "code=", "state="}, masterBase64()...)
	for _, s := range secrets {
		if s != "" {
			forbidden = append(forbidden, s)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
		for _, s := range forbidden {
			if strings.Contains(line, s) {
				t.Errorf("log line holds a secret (%.12s…): %s", s, line)
			}
		}
		if strings.Contains(line, "token=q") || strings.Contains(line, "x=1") {
			t.Errorf("log line holds a query string: %s", line)
		}
	}
}
