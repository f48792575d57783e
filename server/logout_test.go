package server_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// jws matches a compact JWS, the form of every token the provider issues.
var jws = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

type logoutAnswer struct {
	LogoutURL string `json:"logout_url"`
}

func TestLogoutWithSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	// A second instance with the same keys that has not heard of the
	// logout (no gossip here), and that refreshes on every call: it shows
	// whether the refresh token is still good at the provider.
	other := e.startBFF(nil, e.cfg.PublicURL, envOptions{config: func(c *server.Config) {
		c.RefreshMargin = 24 * time.Hour
	}})

	b := e.browser()
	b.signIn("/")
	// Control: another user's session refreshes fine on the other instance.
	ctl := e.browser()
	ctl.signIn("/")
	if r := ctl.doAt(other.base, http.MethodGet, "/api/x", e.apiHeaders()); r.StatusCode != http.StatusOK || !r.sessionSet() {
		t.Fatalf("control refresh on the other instance: status %d, new cookie %v; body %s", r.StatusCode, r.sessionSet(), r.body)
	}

	old := b.jar.clone()
	chunks := old.names("localhost", sessionCookie+".")
	if len(chunks) == 0 {
		t.Fatal("no session chunk in the jar")
	}
	r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
	if r.StatusCode != http.StatusOK {
		t.Fatalf("logout status %d; body %s", r.StatusCode, r.body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var ans logoutAnswer
	r.json(t, &ans)
	// Page script reads this answer: no token in any form, only a URL of
	// the BFF's own carrying a sealed, single-use ticket.
	if jws.MatchString(r.body) {
		t.Errorf("the logout answer holds a JWS (a token): %s", r.body)
	}
	ticketPrefix := e.cfg.PublicURL + "/auth/end-session?t="
	if !strings.HasPrefix(ans.LogoutURL, ticketPrefix) {
		t.Fatalf("logout_url %q, want %s...", ans.LogoutURL, ticketPrefix)
	}
	path := strings.TrimPrefix(ans.LogoutURL, e.cfg.PublicURL)
	// The navigation: a redirect to the provider with the hint.
	nav := b.get(path)
	if nav.StatusCode != http.StatusFound {
		t.Fatalf("GET logout_url: %d %s", nav.StatusCode, nav.body)
	}
	loc := nav.Header.Get("Location")
	if !strings.HasPrefix(loc, e.endpoints.EndSession+"?") {
		t.Fatalf("end-session redirect to %q, want the provider's end-session endpoint %s", loc, e.endpoints.EndSession)
	}
	q := mustParse(t, loc).Query()
	if !jws.MatchString(q.Get("id_token_hint")) {
		t.Errorf("end-session redirect has no id_token_hint")
	}
	if got := q.Get("post_logout_redirect_uri"); got != e.cfg.PublicURL+"/" {
		t.Errorf("post_logout_redirect_uri %q, want %q", got, e.cfg.PublicURL+"/")
	}
	if got := q.Get("client_id"); got != testClientID {
		t.Errorf("client_id %q", got)
	}
	if cc := nav.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("end-session Cache-Control %q", cc)
	}
	// Single use: again, still a sign-out at the provider, but no hint.
	again := b.get(path)
	if loc := again.Header.Get("Location"); again.StatusCode != http.StatusFound || !strings.HasPrefix(loc, e.endpoints.EndSession+"?") ||
		mustParse(t, loc).Query().Has("id_token_hint") {
		t.Errorf("second use of the ticket: %d to %q, want the end-session endpoint without id_token_hint", again.StatusCode, loc)
	}
	// The logout was sound: none of its warnings (the log holds the
	// sign-out itself, so the check reads real output).
	for _, warning := range []string{"logout without a valid session", "refresh token not revoked"} {
		if !strings.Contains(e.logs.String(), `"msg":"signed out"`) || strings.Contains(e.logs.String(), warning) {
			t.Errorf("sound logout: want \"signed out\" and no %q in the log:\n%s", warning, e.logs)
		}
	}
	// Logging out again with the revoked session's cookies is still a 200,
	// logged as a logout without a valid session.
	if r := e.browserWithJar(old.clone()).do(http.MethodPost, "/auth/logout", e.apiHeaders()); r.StatusCode != http.StatusOK ||
		!strings.Contains(e.logs.String(), "logout without a valid session") {
		t.Errorf("logout with a revoked session: status %d; want 200 and it logged:\n%s", r.StatusCode, e.logs)
	}
	if strings.Contains(e.logs.String(), "could not be recorded as used") {
		t.Errorf("a ticket recorded as used is logged as not recorded:\n%s", e.logs)
	}
	// A ticket that does not open is refused, and so is one of another purpose.
	flipped := []byte(path)
	flipped[len(flipped)-5] ^= 1
	checkJSONError(t, b.get(string(flipped)), http.StatusBadRequest, "invalid_request")
	checkJSONError(t, b.get("/auth/end-session?t="+old.value("localhost", chunks[0])), http.StatusBadRequest, "invalid_request")
	checkJSONError(t, b.get("/auth/end-session"), http.StatusBadRequest, "invalid_request")
	for _, name := range chunks {
		if !slices.Contains(r.deleted(), name) {
			t.Errorf("chunk %s not cleared; deleted %v", name, r.deleted())
		}
	}
	if left := b.jar.names("localhost", sessionCookie+"."); len(left) != 0 {
		t.Errorf("session cookies left after logout: %v", left)
	}
	if u := b.get("/auth/user"); u.StatusCode != http.StatusUnauthorized {
		t.Errorf("/auth/user after logout: %d", u.StatusCode)
	}

	// A copy of the old cookies is dead on this instance.
	for _, tg := range []struct{ method, path string }{{http.MethodGet, "/auth/user"}, {http.MethodGet, "/api/x"}} {
		t.Run("replay "+tg.path, func(t *testing.T) {
			r := e.browserWithJar(old.clone()).do(tg.method, tg.path, e.apiHeaders())
			checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
			for _, name := range chunks {
				if !slices.Contains(r.deleted(), name) {
					t.Errorf("replayed chunk %s not cleared; deleted %v", name, r.deleted())
				}
			}
		})
	}

	// And the refresh token is dead at the provider: the other instance
	// does not know the session was revoked, but its refresh is refused.
	t.Run("refresh token revoked", func(t *testing.T) {
		r := e.browserWithJar(old.clone()).doAt(other.base, http.MethodGet, "/api/x", e.apiHeaders())
		checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
		if r.sessionSet() {
			t.Error("the other instance refreshed a logged-out session")
		}
		if !slices.Contains(r.deleted(), chunks[0]) {
			t.Errorf("session not cleared after invalid_grant; deleted %v", r.deleted())
		}
		if !strings.Contains(other.logs.String(), "refresh refused, session ended") {
			t.Errorf("the other instance did not log a refused refresh:\n%s", other.logs)
		}
		// The session went on the revocation list, and counts as such.
		if got := metricValue(t, other.srv, `bff_revocations_total{kind="refresh_refused"}`); got != 1 {
			t.Errorf(`bff_revocations_total{kind="refresh_refused"} = %v, want 1`, got)
		}
		if strings.Contains(other.logs.String(), "session could not be revoked") {
			t.Errorf("the refused session could not be revoked:\n%s", other.logs)
		}
	})
}

func TestLogoutWithoutSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d; body %s", r.StatusCode, r.body)
	}
	var ans logoutAnswer
	r.json(t, &ans)
	if !strings.HasPrefix(ans.LogoutURL, e.endpoints.EndSession) {
		t.Errorf("logout_url %q, want the provider's end-session endpoint", ans.LogoutURL)
	}
	if q := mustParse(t, ans.LogoutURL).Query(); q.Has("id_token_hint") {
		t.Errorf("logout_url without a session carries id_token_hint")
	}
}

func TestLogoutClearsEveryChunk(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	// Extra and stale chunks (a session that shrank, or junk) go too, even
	// though they make the session itself invalid.
	b.jar.put("localhost", sessionCookie+".1", "stale")
	b.jar.put("localhost", sessionCookie+".7", "junk")
	r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d; body %s", r.StatusCode, r.body)
	}
	for _, name := range []string{".0", ".1", ".7"} {
		if !slices.Contains(r.deleted(), sessionCookie+name) {
			t.Errorf("%s%s not cleared; deleted %v", sessionCookie, name, r.deleted())
		}
	}
	var ans logoutAnswer
	r.json(t, &ans)
	if ans.LogoutURL == "" {
		t.Error("no logout_url")
	}
}

// failRevocation answers 503 for the provider's revocation endpoint and
// passes every other request on.
type failRevocation struct{}

func (failRevocation) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/revoke") {
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestLogoutRevocationFails: the provider refusing to revoke the refresh
// token does not stop the logout, and is logged (TestLogoutWithSession is
// the control: a revocation that works logs no such warning).
func TestLogoutRevocationFails(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		c.OIDC.HTTPClient = &http.Client{Transport: failRevocation{}, Timeout: 10 * time.Second}
	}})
	b := e.browser()
	b.signIn("/")
	r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
	if r.StatusCode != http.StatusOK || !slices.Contains(r.deleted(), sessionCookie+".0") {
		t.Fatalf("logout: status %d, deleted %v; body %s", r.StatusCode, r.deleted(), r.body)
	}
	if !strings.Contains(e.logs.String(), "refresh token not revoked at the provider") {
		t.Errorf("a failed revocation was not logged:\n%s", e.logs)
	}
}
