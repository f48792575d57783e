package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/session"
)

var (
	errInvalidGrant = &oauth.TokenError{Op: "refresh", Code: "invalid_grant", Status: 400}
	errProviderDown = fmt.Errorf("%w: down", oauth.ErrProvider)
)

func TestRefresh(t *testing.T) {
	tests := []struct {
		name     string
		accessIn time.Duration // access token expiry relative to now
		noRT     bool          // the session holds no refresh token
		tokens   *oauth.Tokens // refresh answer (nil: newTokens())
		nilTok   bool          // the refresher answers (nil, nil)
		err      error         // refresh error
		saveErr  error

		wantCalls   int
		wantBearer  string // "" means the request must fail
		wantErr     error  // errors.Is at the ErrorHandler
		wantAnyErr  bool   // an error not matched by wantErr
		wantClears  int
		wantSaved   *session.Session // fields checked: tokens, expiry, scope
		wantOutcome []proxy.Outcome
	}{
		{
			name: "far from expiry: no refresh", accessIn: time.Hour,
			wantBearer: "Bearer AT-old",
		},
		{
			name: "just outside the margin: no refresh", accessIn: 61 * time.Second,
			wantBearer: "Bearer AT-old",
		},
		{
			name: "within the margin: refreshed, ID token kept", accessIn: 30 * time.Second,
			wantCalls: 1, wantBearer: "Bearer AT-new",
			wantSaved: &session.Session{
				AccessToken: "AT-new", AccessExpiry: t0.Add(time.Hour).Unix(), RefreshToken: "RT-new",
				IDToken: "IDT-old", Scope: "openid api",
			},
			wantOutcome: []proxy.Outcome{proxy.OutcomeRefreshed},
		},
		{
			name: "exactly at the margin: refreshed", accessIn: 60 * time.Second,
			wantCalls: 1, wantBearer: "Bearer AT-new",
			wantOutcome: []proxy.Outcome{proxy.OutcomeRefreshed},
		},
		{
			name: "already expired: refreshed", accessIn: -time.Hour,
			wantCalls: 1, wantBearer: "Bearer AT-new",
			wantOutcome: []proxy.Outcome{proxy.OutcomeRefreshed},
		},
		{
			name: "no rotation: refresh token kept, new ID token and scope taken", accessIn: 10 * time.Second,
			tokens:    &oauth.Tokens{AccessToken: "AT-new", Expiry: t0.Add(time.Hour), IDToken: "IDT-new", Scope: "openid", Subject: "alice"},
			wantCalls: 1, wantBearer: "Bearer AT-new",
			wantSaved: &session.Session{
				AccessToken: "AT-new", AccessExpiry: t0.Add(time.Hour).Unix(), RefreshToken: "RT-old",
				IDToken: "IDT-new", Scope: "openid",
			},
			wantOutcome: []proxy.Outcome{proxy.OutcomeRefreshed},
		},
		{
			name: "invalid_grant ends the session", accessIn: 10 * time.Second, err: errInvalidGrant,
			wantCalls: 1, wantErr: oauth.ErrReauthRequired, wantClears: 1,
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "no refresh token inside the margin ends the session", accessIn: 10 * time.Second, noRT: true,
			wantErr: oauth.ErrReauthRequired, wantClears: 1,
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "provider down, token expired: error, session kept", accessIn: -time.Second, err: errProviderDown,
			wantCalls: 1, wantErr: oauth.ErrProvider,
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "provider down, token expires now: error, session kept", accessIn: 0, err: errProviderDown,
			wantCalls: 1, wantErr: oauth.ErrProvider,
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "provider 5xx, token expired: error, session kept", accessIn: -time.Second,
			err:       &oauth.TokenError{Op: "refresh", Code: "server_error", Status: 503},
			wantCalls: 1, wantErr: oauth.ErrProvider,
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "provider down, token still valid: old token forwarded", accessIn: 10 * time.Second, err: errProviderDown,
			wantCalls: 1, wantBearer: "Bearer AT-old",
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "refresher returns no tokens, token expired: error, session kept", accessIn: -time.Second, nilTok: true,
			wantCalls: 1, wantAnyErr: true,
			wantOutcome: []proxy.Outcome{""},
		},
		{
			name: "saving the refreshed session fails", accessIn: 10 * time.Second, saveErr: errors.New("session: too large"),
			wantCalls: 1, wantAnyErr: true,
			wantOutcome: []proxy.Outcome{proxy.OutcomeRefreshed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.sess.sess = newSession(tt.accessIn)
			if tt.noRT {
				h.sess.sess.RefreshToken = ""
			}
			h.sess.saveErr = tt.saveErr
			if tt.tokens != nil {
				h.ref.tokens = tt.tokens
			}
			h.ref.err, h.ref.nilTok = tt.err, tt.nilTok

			w := h.get("/api/x")

			if got := h.ref.Calls(); got != tt.wantCalls {
				t.Errorf("Refresher called %d times, want %d", got, tt.wantCalls)
			}
			if tt.wantCalls > 0 {
				if h.ref.gotRT[0] != "RT-old" || h.ref.gotSub[0] != "alice" {
					t.Errorf("Refresh(%q, %q), want the session's refresh token and subject", h.ref.gotRT[0], h.ref.gotSub[0])
				}
			}
			var outcomes []proxy.Outcome
			for _, c := range h.refreshes() {
				outcomes = append(outcomes, c.Outcome)
				if (c.Outcome == "") != (c.Err != nil) {
					t.Errorf("OnRefresh(%q, %v): an outcome needs a nil error and vice versa", c.Outcome, c.Err)
				}
			}
			if !slices.Equal(outcomes, tt.wantOutcome) {
				t.Errorf("OnRefresh outcomes %q, want %q", outcomes, tt.wantOutcome)
			}
			_, saves, clears := h.sess.counts()
			if clears != tt.wantClears {
				t.Errorf("Clear called %d times, want %d", clears, tt.wantClears)
			}
			if tt.wantBearer == "" {
				if tt.wantErr != nil {
					h.wantErr(w, tt.wantErr)
				} else if errs := h.errors(); len(errs) != 1 || w.Code != errStatus {
					t.Errorf("ErrorHandler got %v (status %d), want one error", errs, w.Code)
				} else if errors.Is(errs[0], oauth.ErrReauthRequired) {
					t.Errorf("error %v would end the session", errs[0])
				}
				if n := len(h.up.requests()); n != 0 {
					t.Errorf("%d requests reached the upstream", n)
				}
				return
			}
			h.wantOK(w)
			if b := bearer(t, h.up.last(t)); b != tt.wantBearer {
				t.Errorf("upstream got %q, want %q", b, tt.wantBearer)
			}
			wantSaves := 0
			if tt.wantBearer == "Bearer AT-new" {
				wantSaves = 1
			}
			if saves != wantSaves {
				t.Errorf("Save called %d times, want %d", saves, wantSaves)
			}
			if wantSaves == 1 && !slices.Contains(w.Result().Header.Values("Set-Cookie"), savedMarker) {
				t.Error("the refreshed session cookie is not on the response")
			}
			if ws := tt.wantSaved; ws != nil {
				got := h.sess.lastSaved(t)
				if got.AccessToken != ws.AccessToken || got.AccessExpiry != ws.AccessExpiry ||
					got.RefreshToken != ws.RefreshToken || got.IDToken != ws.IDToken || got.Scope != ws.Scope {
					t.Errorf("saved at=%q ate=%d rt=%q idt=%q scp=%q, want at=%q ate=%d rt=%q idt=%q scp=%q",
						got.AccessToken, got.AccessExpiry, got.RefreshToken, got.IDToken, got.Scope,
						ws.AccessToken, ws.AccessExpiry, ws.RefreshToken, ws.IDToken, ws.Scope)
				}
				old := newSession(0)
				if got.ID != old.ID || got.Subject != old.Subject || got.Issuer != old.Issuer ||
					got.Start != old.Start || got.Expiry != old.Expiry {
					t.Errorf("refresh changed the session's identity or lifetime: %+v", got.LogValue())
				}
			}
		})
	}
}

// TestRefreshConcurrent sends 50 requests of one session at expiry while the
// refresh is held open: one refresh, every request forwarded with its result.
func TestRefreshConcurrent(t *testing.T) {
	const n = 50
	h := newHarness(t, nil)
	h.sess.sess = newSession(5 * time.Second)
	h.ref.entered = make(chan struct{}, 1)
	h.ref.release = make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(h.ref.release)
		}
	}
	t.Cleanup(release)

	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i] = h.get("/api/x").Code
		})
	}
	select {
	case <-h.ref.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh started")
	}
	// Hold the refresh until every request has loaded its session and had
	// time to join the flight.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if loads, _, _ := h.sess.counts(); loads == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not every request loaded its session")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	release()
	wg.Wait()

	if got := h.ref.Calls(); got != 1 {
		t.Errorf("Refresher called %d times, want 1", got)
	}
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	reqs := h.up.requests()
	if len(reqs) != n {
		t.Fatalf("%d requests reached the upstream, want %d", len(reqs), n)
	}
	for i, r := range reqs {
		if b := bearer(t, r); b != "Bearer AT-new" {
			t.Errorf("request %d: upstream got %q", i, b)
		}
	}
	count := map[proxy.Outcome]int{}
	for _, c := range h.refreshes() {
		count[c.Outcome]++
	}
	if count[proxy.OutcomeRefreshed] != 1 || count[proxy.OutcomeShared]+count[proxy.OutcomeSuccessor] != n-1 {
		t.Errorf("outcomes %v, want 1 refreshed and %d shared or successor", count, n-1)
	}
	if count[proxy.OutcomeShared] == 0 {
		t.Errorf("outcomes %v: no request overlapped the refresh", count)
	}
	if _, saves, _ := h.sess.counts(); saves != n {
		t.Errorf("Save called %d times, want %d (every response carries the new cookie)", saves, n)
	}
}

// TestRefreshSuccessor: a request still carrying the pre-refresh cookie gets
// the winner's tokens without redeeming the rotated refresh token again,
// until the grace has passed.
func TestRefreshSuccessor(t *testing.T) {
	tests := []struct {
		name        string
		grace       time.Duration
		advance     time.Duration // between the first and the second request
		wantCalls   int
		wantOutcome proxy.Outcome
	}{
		{name: "right after", wantCalls: 1, wantOutcome: proxy.OutcomeSuccessor},
		{name: "inside the default grace", advance: 29 * time.Second, wantCalls: 1, wantOutcome: proxy.OutcomeSuccessor},
		{name: "after the default grace", advance: 30 * time.Second, wantCalls: 2, wantOutcome: proxy.OutcomeRefreshed},
		{name: "inside a custom grace", grace: 5 * time.Minute, advance: 4 * time.Minute, wantCalls: 1, wantOutcome: proxy.OutcomeSuccessor},
		{name: "after a custom grace", grace: 5 * time.Second, advance: 6 * time.Second, wantCalls: 2, wantOutcome: proxy.OutcomeRefreshed},
		{name: "cache disabled", grace: -1, wantCalls: 2, wantOutcome: proxy.OutcomeRefreshed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, _ *upstream) { cfg.SuccessorGrace = tt.grace })
			h.sess.sess = newSession(10 * time.Second)

			h.wantOK(h.get("/api/x"))
			h.clk.Advance(tt.advance)
			// The fake still returns the old session: the old cookie.
			w := h.get("/api/x")
			h.wantOK(w)

			if got := h.ref.Calls(); got != tt.wantCalls {
				t.Errorf("Refresher called %d times, want %d", got, tt.wantCalls)
			}
			for i, rt := range h.ref.gotRT {
				if rt != "RT-old" {
					t.Errorf("refresh %d redeemed %q", i, rt)
				}
			}
			if b := bearer(t, h.up.last(t)); b != "Bearer AT-new" {
				t.Errorf("second request: upstream got %q", b)
			}
			if got := h.sess.lastSaved(t); got.RefreshToken != "RT-new" || got.AccessToken != "AT-new" {
				t.Errorf("second response saved rt=%q at=%q, want the successor's", got.RefreshToken, got.AccessToken)
			}
			if !slices.Contains(w.Result().Header.Values("Set-Cookie"), savedMarker) {
				t.Error("the second response does not carry the new cookie")
			}
			calls := h.refreshes()
			if len(calls) != 2 || calls[0].Outcome != proxy.OutcomeRefreshed || calls[1].Outcome != tt.wantOutcome {
				t.Errorf("OnRefresh calls %v, want [refreshed %s]", calls, tt.wantOutcome)
			}
		})
	}
}

// TestRefreshErrorNotCached: a failed refresh leaves no successor; the next
// request tries again.
func TestRefreshErrorNotCached(t *testing.T) {
	h := newHarness(t, nil)
	h.sess.sess = newSession(-time.Second)
	h.ref.err = errProviderDown
	h.wantErr(h.get("/api/x"), oauth.ErrProvider)
	h.ref.mu.Lock()
	h.ref.err = nil
	h.ref.mu.Unlock()
	w := h.get("/api/x")
	if w.Code != http.StatusOK {
		t.Fatalf("second request: status %d", w.Code)
	}
	if got := h.ref.Calls(); got != 2 {
		t.Errorf("Refresher called %d times, want 2", got)
	}
	if b := bearer(t, h.up.last(t)); b != "Bearer AT-new" {
		t.Errorf("upstream got %q", b)
	}
}

// TestRefreshFailsSlowly: the provider is down and the refresh takes its
// time; a token that expired meanwhile must not be forwarded.
func TestRefreshFailsSlowly(t *testing.T) {
	h := newHarness(t, nil)
	h.sess.sess = newSession(10 * time.Second)
	h.ref.err = errProviderDown
	h.ref.during = func() { h.clk.Advance(15 * time.Second) } // refreshTimeout
	h.wantErr(h.get("/api/x"), oauth.ErrProvider)
	if n := len(h.up.requests()); n != 0 {
		t.Errorf("an expired token was forwarded %d times", n)
	}
}

// TestRefreshSurvivesClientCancel: one client going away must not cancel the
// refresh that other requests wait on, and the refresh is bounded.
func TestRefreshSurvivesClientCancel(t *testing.T) {
	h := newHarness(t, nil)
	h.sess.sess = newSession(5 * time.Second)
	h.ref.entered = make(chan struct{}, 1)
	h.ref.release = make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(h.ref.release) }) }
	t.Cleanup(release)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.serve(httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/x", nil))
	}()
	<-h.ref.entered
	cancel()
	release()
	<-done

	h.ref.mu.Lock()
	ctxErr, noDL := h.ref.ctxErr, h.ref.noDL
	h.ref.mu.Unlock()
	if len(ctxErr) != 1 || ctxErr[0] != nil {
		t.Errorf("refresh context errors %v, want [nil]", ctxErr)
	}
	if noDL != 0 {
		t.Error("the refresh context has no deadline")
	}
	// The redeemed token is not lost: the next request uses the successor.
	w := h.get("/api/x")
	if w.Code != http.StatusOK {
		t.Fatalf("next request: status %d", w.Code)
	}
	if got := h.ref.Calls(); got != 1 {
		t.Errorf("Refresher called %d times, want 1", got)
	}
	if b := bearer(t, h.up.last(t)); b != "Bearer AT-new" {
		t.Errorf("upstream got %q", b)
	}
}

// TestStaleSessionResealed: a session opened with an older key is re-sealed
// on the way through, even when no refresh is needed. A stale session can only
// be made by session.Store (the flag is unexported), so this opens one with a
// real store whose key ring has rotated since the cookie was sealed.
func TestStaleSessionResealed(t *testing.T) {
	tests := []struct {
		name      string
		rotate    bool
		wantSaves int
	}{
		{name: "stale session re-sealed", rotate: true, wantSaves: 1},
		{name: "current session not re-sealed", rotate: false, wantSaves: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ringClock := newClock()
			s := openedSession(t, ringClock, tt.rotate)
			if s.Stale() != tt.rotate {
				t.Fatalf("Stale() = %v, want %v", s.Stale(), tt.rotate)
			}
			h := newHarness(t, nil)
			h.sess.sess = s
			w := h.get("/api/x")
			h.wantOK(w)
			if _, saves, _ := h.sess.counts(); saves != tt.wantSaves {
				t.Errorf("Save called %d times, want %d", saves, tt.wantSaves)
			}
			if tt.wantSaves > 0 {
				if got := h.sess.lastSaved(t); got.AccessToken != "AT-old" || got.RefreshToken != "RT-old" {
					t.Errorf("re-seal changed the tokens")
				}
				if !slices.Contains(w.Result().Header.Values("Set-Cookie"), savedMarker) {
					t.Error("the re-sealed cookie is not on the response")
				}
			}
			if h.ref.Calls() != 0 {
				t.Errorf("Refresher called %d times", h.ref.Calls())
			}
			if b := bearer(t, h.up.last(t)); b != "Bearer AT-old" {
				t.Errorf("upstream got %q", b)
			}
		})
	}
}

// openedSession seals newSession(time.Hour) with a real store, optionally
// moves the key ring to its next epoch, and opens it again.
func openedSession(t *testing.T, clk *clock, rotate bool) *session.Session {
	t.Helper()
	ring, err := keys.New(keys.Config{
		Secrets:  [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		Rotation: time.Hour,
		Now:      clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(crypto.Config{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	chunker, err := crypto.NewChunker(crypto.ChunkConfig{Name: sessionCookie})
	if err != nil {
		t.Fatal(err)
	}
	store, err := session.NewStore(session.Config{Sealer: sealer, Chunker: chunker, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{}
	if err := store.Save(hdr, httptest.NewRequest(http.MethodGet, "/", nil), newSession(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		r.AddCookie(c)
	}
	if rotate {
		clk.Advance(time.Hour)
	}
	s, err := store.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// On an optional route, a session whose grant is gone goes on signed out:
// cookies cleared, request forwarded without a bearer.
func TestOptionalRouteAfterInvalidGrant(t *testing.T) {
	h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{{Path: "/opt/", Upstream: up.url(t, ""), Token: proxy.TokenOptional}}
	})
	h.sess.sess = newSession(-time.Second)
	h.ref.err = errInvalidGrant
	w := h.get("/opt/x")
	h.wantOK(w)
	if b := bearer(t, h.up.last(t)); b != "" {
		t.Errorf("upstream got %q, want no bearer", b)
	}
	if _, _, clears := h.sess.counts(); clears != 1 {
		t.Errorf("Clear called %d times, want 1", clears)
	}
}

// TestRefreshSuccessorAboutToExpire: an old cookie late in a long grace
// window finds a successor whose own access token is about to expire; the
// proxy then moves on from the successor's refresh token (never the old,
// rotated one), once. Early in the window the successor is used as it is.
func TestRefreshSuccessorAboutToExpire(t *testing.T) {
	tests := []struct {
		name      string
		advance   time.Duration // the successor's token lives 2 minutes; the margin is 60 s
		wantRTs   []string
		wantLast  proxy.Outcome
		wantCalls int
	}{
		{name: "successor still good", advance: 30 * time.Second, wantRTs: []string{"RT-old"}, wantLast: proxy.OutcomeSuccessor, wantCalls: 1},
		{name: "successor just past the margin", advance: 60 * time.Second, wantRTs: []string{"RT-old", "RT-new"}, wantLast: proxy.OutcomeRefreshed, wantCalls: 2},
		{name: "successor expiring", advance: 100 * time.Second, wantRTs: []string{"RT-old", "RT-new"}, wantLast: proxy.OutcomeRefreshed, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, _ *upstream) { cfg.SuccessorGrace = 10 * time.Minute })
			h.sess.sess = newSession(10 * time.Second)
			h.ref.tokens = &oauth.Tokens{AccessToken: "AT-new", Expiry: t0.Add(2 * time.Minute), RefreshToken: "RT-new"}

			h.wantOK(h.get("/api/x"))
			h.clk.Advance(tt.advance)
			h.ref.tokens = &oauth.Tokens{AccessToken: "AT-newer", Expiry: t0.Add(time.Hour), RefreshToken: "RT-newer"}
			h.wantOK(h.get("/api/x")) // the old cookie again

			if got := h.ref.Calls(); got != tt.wantCalls {
				t.Fatalf("Refresher called %d times, want %d", got, tt.wantCalls)
			}
			if !slices.Equal(h.ref.gotRT, tt.wantRTs) {
				t.Errorf("refresh tokens redeemed %v, want %v", h.ref.gotRT, tt.wantRTs)
			}
			calls := h.refreshes()
			if len(calls) != 2 || calls[1].Outcome != tt.wantLast {
				t.Errorf("OnRefresh calls %v, want the second %s", calls, tt.wantLast)
			}
			wantBearer := "Bearer AT-new"
			if tt.wantCalls == 2 {
				wantBearer = "Bearer AT-newer"
			}
			if b := bearer(t, h.up.last(t)); b != wantBearer {
				t.Errorf("second request: upstream got %q, want %q", b, wantBearer)
			}
		})
	}
}
