package server_test

import (
	"net/http"
	"slices"
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
