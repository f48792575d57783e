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

// fixedClock is a clock that moves only when the test says. It starts one
// second into the current UTC day, so that the default 24 h key epoch does
// not roll over (a re-seal of its own) while a test moves it by an hour or
// two; the provider's tokens, issued on the real clock, then look younger.
type fixedClock struct{ ns atomic.Int64 }

func newFixedClock() *fixedClock {
	c := &fixedClock{}
	c.ns.Store(time.Now().UTC().Truncate(24 * time.Hour).Add(time.Second).UnixNano())
	return c
}

func (c *fixedClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fixedClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newIdleEnv is a BFF with the given idle timeout on a fixed clock, with
// access tokens that outlive the test (no refresh re-seals).
func newIdleEnv(t *testing.T, idle time.Duration, more ...func(*server.Config)) (*env, *fixedClock) {
	clock := newFixedClock()
	e := newEnv(t, envOptions{accessTTL: 3 * time.Hour, config: func(c *server.Config) {
		c.Now = clock.now
		c.IdleTimeout = idle
		for _, f := range more {
			f(c)
		}
	}})
	return e, clock
}

// A session not used for the idle timeout ends: 401 and cookies cleared, on
// the proxy's path and on /auth/user.
func TestIdleSessionEnds(t *testing.T) {
	const idle = 10 * time.Minute
	for _, tc := range []struct {
		name string
		call func(e *env, b *browser) *result
	}{
		{"api", func(e *env, b *browser) *result { return b.do(http.MethodGet, "/api/whoami", e.apiHeaders()) }},
		{"user", func(e *env, b *browser) *result { return b.get("/auth/user") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clock := newIdleEnv(t, idle)
			b := e.browser()
			b.signIn("/")
			clock.advance(idle - time.Second)
			if r := b.get("/auth/user?slide=false"); r.StatusCode != http.StatusOK {
				t.Fatalf("a second before the idle timeout: %d", r.StatusCode)
			}
			clock.advance(time.Second)
			r := tc.call(e, b)
			checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
			if !slices.Contains(r.deleted(), sessionCookie+".0") {
				t.Errorf("idle session not cleared; deleted %v", r.deleted())
			}
		})
	}
}

// Requests every idle/2 keep a session alive well past the idle timeout;
// left alone, it then ends after the idle timeout.
func TestActiveSessionLivesPastIdleTimeout(t *testing.T) {
	const idle = 10 * time.Minute
	e, clock := newIdleEnv(t, idle)
	b := e.browser()
	b.signIn("/")
	for i := range 12 { // an hour
		clock.advance(idle / 2)
		r := b.do(http.MethodGet, "/api/whoami", e.apiHeaders())
		if r.StatusCode != http.StatusOK {
			t.Fatalf("request %d, %s after sign-in: %d %s", i, time.Duration(i+1)*idle/2, r.StatusCode, r.body)
		}
		if !r.sessionSet() {
			t.Fatalf("request %d, %s after the last one: not re-sealed", i, idle/2)
		}
	}
	clock.advance(idle)
	checkJSONError(t, b.do(http.MethodGet, "/api/whoami", e.apiHeaders()), http.StatusUnauthorized, "unauthenticated")
}

// Many requests re-seal once per slide interval (idle/10 = 1 min here), not
// once per request: count the responses that set the session.
func TestSlideOncePerInterval(t *testing.T) {
	const idle = 10 * time.Minute
	for _, tc := range []struct {
		name string
		call func(e *env, b *browser) *result
	}{
		{"api", func(e *env, b *browser) *result { return b.do(http.MethodGet, "/api/whoami", e.apiHeaders()) }},
		{"user", func(e *env, b *browser) *result { return b.get("/auth/user") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clock := newIdleEnv(t, idle)
			b := e.browser()
			b.signIn("/")
			var reseals []time.Duration
			for i := 1; i <= 85; i++ { // every 7 s for 595 s
				clock.advance(7 * time.Second)
				r := tc.call(e, b)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("request at %s: %d %s", time.Duration(i)*7*time.Second, r.StatusCode, r.body)
				}
				if r.sessionSet() {
					reseals = append(reseals, time.Duration(i)*7*time.Second)
				}
			}
			// The first request over a minute after the last seal: 63 s, 126 s, ...
			want := []time.Duration{}
			for at := 63 * time.Second; at < 595*time.Second; at += 63 * time.Second {
				want = append(want, at)
			}
			if !slices.Equal(reseals, want) {
				t.Fatalf("re-sealed at %v, want %v", reseals, want)
			}
		})
	}
}

// GET /auth/user?slide=false answers without re-sealing, so a status poll
// does not keep a session alive; without it, /auth/user slides (the control).
func TestUserSlideFalse(t *testing.T) {
	const idle = 10 * time.Minute
	for _, tc := range []struct {
		path  string
		slide bool
	}{
		{"/auth/user?slide=false", false},
		{"/auth/user", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e, clock := newIdleEnv(t, idle)
			b := e.browser()
			b.signIn("/")
			for i := range 3 { // polls at 4, 8 and 12 minutes
				clock.advance(4 * time.Minute)
				r := b.get(tc.path)
				if !tc.slide && i == 2 {
					checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
					return
				}
				if r.StatusCode != http.StatusOK {
					t.Fatalf("poll %d: %d %s", i, r.StatusCode, r.body)
				}
				if r.sessionSet() != tc.slide {
					t.Fatalf("poll %d: re-sealed %v, want %v", i, r.sessionSet(), tc.slide)
				}
			}
			if !tc.slide {
				t.Fatal("unreachable")
			}
			// The re-seals went well: no warning (the log holds the
			// sign-in, so it is read).
			if logs := e.logs.String(); !strings.Contains(logs, `"msg":"signed in"`) || strings.Contains(logs, "re-seal failed") {
				t.Errorf("sliding /auth/user: want the sign-in and no \"re-seal failed\" in the log:\n%s", logs)
			}
		})
	}
}
