package server_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

// signedInSessions are the session group of every "signed in" log line.
func signedInSessions(t *testing.T, logs string) []struct{ SID, Sub string } {
	t.Helper()
	var out []struct{ SID, Sub string }
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			Session struct {
				SID string `json:"sid_hash"`
				Sub string `json:"sub_hash"`
			} `json:"session"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "signed in" {
			continue
		}
		out = append(out, struct{ SID, Sub string }{line.Session.SID, line.Session.Sub})
	}
	return out
}

// TestSignInsGetNewSessionIDs: every sign-in of the same user, in another
// browser or again in the same one, gets a session id of its own (read from
// the "signed in" log line's sid_hash). The shared sub_hash is the control
// that the lines are read and are the same user's.
func TestSignInsGetNewSessionIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	b1, b2 := e.browser(), e.browser()
	b1.signIn("/")
	b2.signIn("/")
	b1.signIn("/") // signing in again in the same browser
	got := signedInSessions(t, e.logs.String())
	if len(got) != 3 {
		t.Fatalf("%d \"signed in\" log lines, want 3; logs:\n%s", len(got), e.logs)
	}
	seen := map[string]bool{}
	for i, s := range got {
		if s.SID == "" || s.Sub == "" {
			t.Fatalf("sign-in %d logged sid_hash %q sub_hash %q, want both", i, s.SID, s.Sub)
		}
		if s.Sub != got[0].Sub {
			t.Errorf("sign-in %d is user %q, want the same user %q", i, s.Sub, got[0].Sub)
		}
		if seen[s.SID] {
			t.Errorf("sign-in %d reused session id hash %q", i, s.SID)
		}
		seen[s.SID] = true
	}
}

// TestUpstreamCookieHygiene: a proxied call from a browser holding the
// session's chunks, a pending sign-in's login cookie, a cookie in the
// session's namespace that is no canonical chunk name and an app cookie
// reaches the upstream with the app cookie only. app=1 arriving is the
// control that the Cookie header is forwarded at all. The malformed chunk
// name makes the session reader refuse the session (fail closed), so on a
// token route it is tried without it; with it, on a route that needs no
// token.
func TestUpstreamCookieHygiene(t *testing.T) {
	pub := func(cfg *server.Config) {
		cfg.Routes = append(cfg.Routes, proxy.Route{Path: "/pub/", Upstream: cfg.Routes[0].Upstream, Token: proxy.TokenNone})
	}
	tests := []struct {
		name      string
		path      string
		malformed bool
		bearer    bool
	}{
		{"token route: chunks, login cookie, app", "/api/x", false, true},
		{"no-token route: chunks, login cookie, malformed chunk, app", "/pub/x", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{config: pub})
			b := e.browser()
			b.signIn("/")
			b.startLogin("/elsewhere") // a login cookie, sign-in never finished
			if tt.malformed {
				b.jar.put("localhost", sessionCookie+".00", "malformed-chunk")
			}
			b.jar.put("localhost", "app", "1")

			// The browser really holds every kind of cookie in play.
			u, _ := url.Parse(e.bff.base + tt.path)
			var chunks, login, malformed, app int
			for _, c := range b.jar.Cookies(u) {
				switch {
				case c.Name == sessionCookie+".00":
					malformed++
				case c.Name == sessionCookie || strings.HasPrefix(c.Name, sessionCookie+"."):
					chunks++
				case strings.HasPrefix(c.Name, loginCookie):
					login++
				case c.Name == "app":
					app++
				}
			}
			if chunks == 0 || login == 0 || (malformed == 1) != tt.malformed || app != 1 {
				t.Fatalf("jar holds %d session chunks, %d login cookies, %d malformed, %d app", chunks, login, malformed, app)
			}

			api := b.do(http.MethodGet, tt.path, e.apiHeaders())
			if api.StatusCode != http.StatusOK {
				t.Fatalf("%s status %d; body %s", tt.path, api.StatusCode, api.body)
			}
			var ans upstreamAnswer
			api.json(t, &ans)
			if ans.JWTBearer != tt.bearer {
				t.Errorf("upstream JWT bearer %v, want %v", ans.JWTBearer, tt.bearer)
			}
			if ans.Cookie != "app=1" {
				t.Errorf("upstream got Cookie %q, want exactly \"app=1\"", ans.Cookie)
			}
		})
	}
}
