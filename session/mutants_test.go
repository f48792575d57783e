package session

// Tests for mutants that survived the package's other tests (issue 14,
// tools/mutation.sh): each pins behaviour a caller or an operator can see.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// randomSession is f.session() with an incompressible access token of about
// n bytes, so that its sealed value takes a predictable number of chunks.
func randomSession(f *fixture, n int) *Session {
	s := f.session()
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(NewID())
	}
	s.AccessToken = b.String()[:n]
	return s
}

// The open cache keeps up to its bound of distinct sessions: below the bound
// nothing is evicted (every recent session is served from the cache), at the
// bound it holds exactly that many, however many sessions pass through.
// (cache.go:58 "len >= max": negated, the cache kept one entry below the
// bound and grew without limit with a bound of 1.)
func TestCacheKeepsUpToItsBound(t *testing.T) {
	tests := []struct {
		name     string
		bound    int
		sessions int
		want     int
	}{
		{"bound 1, one session", 1, 1, 1},
		{"bound 1, many sessions", 1, 20, 1},
		{"below the bound", 8, 5, 5},
		{"at the bound", 8, 8, 8},
		{"past the bound", 8, 30, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t).withConfig(t, func(c *Config) { c.CacheEntries = tt.bound })
			var reqs []*http.Request
			for range tt.sessions {
				reqs = append(reqs, f.roundTrip(t, f.session()))
			}
			if got := f.store.CacheLen(); got != tt.want {
				t.Fatalf("CacheLen after %d sessions = %d, want %d", tt.sessions, got, tt.want)
			}
			if tt.sessions > tt.bound {
				return
			}
			// Below or at the bound every session is still a cache hit.
			for i, r := range reqs {
				if f.store.cache.get(cacheKey(mustRead(t, f, r)), f.clock.t.Unix()) == nil {
					t.Errorf("session %d of %d was evicted from a cache of %d", i, tt.sessions, tt.bound)
				}
			}
		})
	}
}

// Clear deletes the cookies and forgets the session it was given (and only
// that one), with or without a cache.
// (cache.go:70 "c == nil" negated: drop forgot nothing and panicked on a
// disabled cache; store.go:215 "err == nil" negated: Clear never forgot.)
func TestClearForgetsOpenedSession(t *testing.T) {
	tests := []struct {
		name         string
		cacheEntries int
		wantBefore   int // cached sessions: the cleared one and another
		wantAfter    int
	}{
		{"cache enabled", 0, 2, 1},
		{"cache disabled", -1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t).withConfig(t, func(c *Config) { c.CacheEntries = tt.cacheEntries })
			gone, kept := f.session(), f.session()
			rGone, rKept := f.roundTrip(t, gone), f.roundTrip(t, kept)
			for _, r := range []*http.Request{rGone, rKept} {
				if _, err := f.store.Load(r); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.store.CacheLen(); got != tt.wantBefore {
				t.Fatalf("CacheLen before Clear = %d, want %d", got, tt.wantBefore)
			}
			h := http.Header{}
			f.store.Clear(h, rGone)
			deleted := false
			for _, c := range (&http.Response{Header: h}).Cookies() {
				if c.Name == "__Host-Http-bff.0" && c.MaxAge < 0 {
					deleted = true
				}
			}
			if !deleted {
				t.Errorf("Clear did not delete the session cookie: %q", h.Values("Set-Cookie"))
			}
			if got := f.store.CacheLen(); got != tt.wantAfter {
				t.Errorf("CacheLen after Clear = %d, want %d (the cleared session forgotten, the other kept)", got, tt.wantAfter)
			}
			if tt.wantAfter > 0 && f.store.cache.get(cacheKey(mustRead(t, f, rKept)), f.clock.t.Unix()) == nil {
				t.Error("Clear forgot a session it was not given")
			}
		})
	}
}

// The session's log value says whether a refresh token is held, and carries
// short SHA-256 prefixes of the id and subject, so log lines about one
// session or user can be correlated without holding either; empty ones stay
// empty. (session.go:80 "!= \"\"" and store.go:241 "== \"\"" negated.)
func TestLogValueFields(t *testing.T) {
	hash := func(v string) string {
		h := sha256.Sum256([]byte(v))
		return hex.EncodeToString(h[:6])
	}
	tests := []struct {
		name    string
		sess    Session
		refresh bool
		sid     string
		sub     string
	}{
		{"with refresh token", Session{ID: "sid-1", Subject: "alice", RefreshToken: "rt"}, true, hash("sid-1"), hash("alice")},
		{"without refresh token", Session{ID: "sid-2", Subject: "bob"}, false, hash("sid-2"), hash("bob")},
		{"no id or subject", Session{RefreshToken: "rt"}, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			var refresh, found bool
			for _, a := range tt.sess.LogValue().Group() {
				got[a.Key] = a.Value.String()
				if a.Key == "refresh_token" {
					refresh, found = a.Value.Bool(), true
				}
			}
			if !found || refresh != tt.refresh {
				t.Errorf("refresh_token = %v (present %v), want %v", refresh, found, tt.refresh)
			}
			if got["sid_hash"] != tt.sid || got["sub_hash"] != tt.sub {
				t.Errorf("sid_hash, sub_hash = %q, %q; want %q, %q", got["sid_hash"], got["sub_hash"], tt.sid, tt.sub)
			}
		})
	}
}

// OverBudget fires for a session over the budget, not for one exactly at it.
// (store.go:201 "n > Budget" as "n >= Budget".)
func TestOverBudgetExactlyAtBudget(t *testing.T) {
	// The size of this session's cookies, with the default budget.
	f := newFixture(t)
	var size int
	f.withConfig(t, func(c *Config) { c.OnSave = func(n int) { size = n } })
	s := f.session()
	f.roundTrip(t, s)
	if size == 0 {
		t.Fatal("OnSave was not called")
	}
	tests := []struct {
		name   string
		budget int
		over   bool
	}{
		{"budget one byte short", size - 1, true},
		{"budget exactly the size", size, false},
		{"budget one byte more", size + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var saved int
			f.over = nil
			f.withConfig(t, func(c *Config) {
				c.Budget = tt.budget
				c.OnSave = func(n int) { saved = n }
			})
			f.roundTrip(t, s) // the same session: the same size
			if saved != size {
				t.Fatalf("re-saved at %d bytes, first saved at %d: the case would test nothing", saved, size)
			}
			if got := len(f.over) > 0; got != tt.over {
				t.Errorf("%d bytes with budget %d: OverBudget called %v, want %v (%v)", size, tt.budget, got, tt.over, f.over)
			}
		})
	}
}

// The size OnSave and OverBudget report is the Cookie header the browser
// sends back, byte for byte (crypto.Chunker.HeaderBytes; its test covers
// other cookie names).
func TestCookieBytesCoverWhatTheBrowserSends(t *testing.T) {
	tests := []struct {
		name   string
		token  int // bytes of incompressible access token
		chunks int
	}{
		{"one chunk", 1000, 1},
		{"two chunks", 5000, 2},
		{"three chunks", 9000, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var reported int
			f.withConfig(t, func(c *Config) { c.OnSave = func(n int) { reported = n } })
			r := f.roundTrip(t, randomSession(f, tt.token))
			if n := len(f.store.Names(r)); n != tt.chunks {
				t.Fatalf("%d chunks, want %d", n, tt.chunks)
			}
			sent := len(r.Header.Get("Cookie")) // "NAME.0=...; NAME.1=..."
			value := mustRead(t, f, r)
			if reported != sent {
				t.Errorf("reported %d bytes, the browser sends %d (value %d bytes in %d chunks)", reported, sent, len(value), tt.chunks)
			}
		})
	}
}

// Persistent cookies carry Max-Age, which leaves less room in each chunk:
// across the size where the value takes a second chunk, the reported size
// still follows what the browser sends (crypto.Chunker.HeaderBytesMaxAge).
func TestCookieBytesPersistent(t *testing.T) {
	f := newFixture(t)
	var reported int
	f.withConfig(t, func(c *Config) {
		c.Persistent = true
		c.OnSave = func(n int) { reported = n }
	})
	seen := map[int]bool{}
	for token := 2600; token <= 4600; token += 4 {
		r := f.roundTrip(t, randomSession(f, token))
		seen[len(f.store.Names(r))] = true
		if sent := len(r.Header.Get("Cookie")); reported != sent {
			t.Fatalf("token of %d bytes: reported %d bytes, the browser sends %d", token, reported, sent)
		}
	}
	if !seen[1] || !seen[2] {
		t.Fatalf("chunk counts %v: the sizes did not cross the first chunk boundary", seen)
	}
}
