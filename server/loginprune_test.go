package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// loginWithCookies sends GET /auth/login from a browser holding exactly the
// given cookies, in that order on the Cookie header, and returns the login
// cookie it set and the cookies it deleted.
func (e *env) loginWithCookies(cookies []*http.Cookie) (set *http.Cookie, deleted []string) {
	e.t.Helper()
	var h http.Header
	if len(cookies) > 0 {
		pairs := make([]string, len(cookies))
		for i, c := range cookies {
			pairs[i] = c.Name + "=" + c.Value
		}
		h = http.Header{"Cookie": {strings.Join(pairs, "; ")}}
	}
	r := e.browser().do(http.MethodGet, "/auth/login?returnTo=/", h)
	if r.StatusCode != http.StatusFound {
		e.t.Fatalf("login: status %d; body %s", r.StatusCode, r.body)
	}
	for _, c := range r.Cookies() {
		switch {
		case c.MaxAge < 0:
			deleted = append(deleted, c.Name)
		case strings.HasPrefix(c.Name, loginCookie):
			set = c
		}
	}
	if set == nil {
		e.t.Fatal("login set no login cookie")
	}
	return set, deleted
}

// TestLoginKeepsFlowUntilItsTTL: starting a sign-in prunes the flows that
// have expired, and only those. A flow lives loginTTL (10 min), its end
// excluded, as the callback counts it: at 10 min it is dead and goes.
func TestLoginKeepsFlowUntilItsTTL(t *testing.T) {
	clock := newFixedClock()
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Now = clock.now }})
	flow, _ := e.loginWithCookies(nil)
	age := time.Duration(0)
	for _, tc := range []struct {
		age     time.Duration
		deleted bool
	}{
		{10*time.Minute - 2*time.Second, false},
		{10*time.Minute - time.Second, false},
		{10 * time.Minute, true},
	} {
		clock.advance(tc.age - age)
		age = tc.age
		_, deleted := e.loginWithCookies([]*http.Cookie{flow})
		if got := slices.Contains(deleted, flow.Name); got != tc.deleted {
			t.Errorf("flow %s old: deleted %v, want %v (deleted %v)", tc.age, got, tc.deleted, deleted)
		}
	}
}

// TestLoginEvictsOldestWhateverTheOrder: with maxLogins (4) flows alive a
// new sign-in drops the one started first, whatever order the browser sends
// the cookies in (RFC 6265 leaves it open; a jar may send newest first).
func TestLoginEvictsOldestWhateverTheOrder(t *testing.T) {
	clock := newFixedClock()
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Now = clock.now }})
	var flows []*http.Cookie // oldest first, one second apart
	for range 4 {
		f, _ := e.loginWithCookies(nil)
		flows = append(flows, f)
		clock.advance(time.Second)
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 2, 0}} {
		var sent []*http.Cookie
		for _, i := range order {
			sent = append(sent, flows[i])
		}
		if _, deleted := e.loginWithCookies(sent); !slices.Equal(deleted, []string{flows[0].Name}) {
			t.Errorf("cookies in order %v: deleted %v, want only the oldest flow %s", order, deleted, flows[0].Name)
		}
	}
}
