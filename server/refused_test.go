package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// TestRefreshRefusedRevokes: when the provider refuses a refresh, the
// session ends everywhere this instance decides, not only in the browser
// that made the call: a copy of the cookie is refused too, on every route,
// although its access token is still good.
func TestRefreshRefusedRevokes(t *testing.T) {
	e := newEnv(t, envOptions{})
	// other refreshes on every proxied call and keeps its own revocation
	// list: it hears of nothing that e's instance does.
	other := e.startBFF(nil, e.cfg.PublicURL, envOptions{config: func(c *server.Config) {
		c.RefreshMargin = 24 * time.Hour
	}})
	b := e.browser()
	b.signIn("/")
	cp := b.jar.clone()

	// Positive control: on the other instance the copy is a live session.
	if r := e.browserWithJar(cp.clone()).doAt(other.base, http.MethodGet, "/auth/user", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("control: /auth/user with the copy on the other instance: %d %s", r.StatusCode, r.body)
	}
	// The refresh token dies at the provider (a logout on the first
	// instance revokes it there; the other instance is not told).
	if r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders()); r.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	// A proxied call on the other instance refreshes, and is refused.
	r := e.browserWithJar(cp.clone()).doAt(other.base, http.MethodGet, "/api/x", e.apiHeaders())
	checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
	// Now the copy is dead there too, on a route that never refreshes.
	u := e.browserWithJar(cp.clone()).doAt(other.base, http.MethodGet, "/auth/user", nil)
	checkJSONError(t, u, http.StatusUnauthorized, "unauthenticated")
}
