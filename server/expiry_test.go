package server_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// testClock is a clock the test moves forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestLoginExpires(t *testing.T) {
	var clock testClock
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Now = clock.now }})
	b := e.browser()
	f := b.startLogin("/")
	clock.advance(11 * time.Minute)
	r := b.finish(f)
	checkJSONError(t, r, http.StatusBadRequest, "invalid_state")
	if r.sessionSet() {
		t.Error("an expired sign-in set a session")
	}
}

// TestLoginUsableForItsTTL: a sign-in may take loginTTL (10 min), its end
// excluded; at 10 min the callback refuses it as expired, and the log says
// so rather than calling it a replay (what the single-use check would say).
func TestLoginUsableForItsTTL(t *testing.T) {
	clock := newFixedClock()
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Now = clock.now }})
	for _, tc := range []struct {
		age      time.Duration
		signedIn bool
	}{
		{10*time.Minute - time.Second, true},
		{10 * time.Minute, false},
	} {
		b := e.browser()
		f := b.startLogin("/")
		clock.advance(tc.age)
		r := b.finish(f)
		if tc.signedIn {
			if r.StatusCode != http.StatusFound || !r.sessionSet() {
				t.Errorf("callback %s after login: status %d, session set %v, want a sign-in; body %s", tc.age, r.StatusCode, r.sessionSet(), r.body)
			}
			continue
		}
		checkJSONError(t, r, http.StatusBadRequest, "invalid_state")
		if r.sessionSet() {
			t.Errorf("callback %s after login set a session", tc.age)
		}
		var refused []string
		for line := range strings.SplitSeq(e.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"request refused"`) && strings.Contains(line, `"path":"/auth/callback"`) {
				refused = append(refused, line)
			}
		}
		if len(refused) != 1 || !strings.Contains(refused[0], "sign-in expired") || strings.Contains(refused[0], "already used") {
			t.Errorf("callback %s after login: refusals logged %q, want one for an expired sign-in, not a replay", tc.age, refused)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	var clock testClock
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		c.Now = clock.now
		c.Lifetime = time.Hour
	}})
	b := e.browser()
	b.signIn("/")
	clock.advance(59 * time.Minute)
	if r := b.get("/auth/user"); r.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user before expiry: %d", r.StatusCode)
	}
	clock.advance(2 * time.Minute)
	r := b.get("/auth/user")
	checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
	if !slices.Contains(r.deleted(), sessionCookie+".0") {
		t.Errorf("expired session not cleared; deleted %v", r.deleted())
	}
}
