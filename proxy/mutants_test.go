package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// Tests for mutants that survived the package tests (issue 14,
// tools/mutation.sh): each fails under the mutant it names.

// TestDefaultTransportIdleConns: the default transport keeps
// MaxIdleConnsPerHost idle connections to an upstream (128 when unset, not
// Go's 2, which makes a busy proxy re-dial on most requests), and 4 times
// that in all. Seen from the outside: n requests in flight at once open n
// connections; how many of them the transport keeps (PutIdleConn without
// error) and how many the next n requests reuse.
//
// Mutants: proxy.go:163 "<= 0" to "< 0" or "> 0" (0 stays 0: Go's 2; or a
// configured value becomes 128), proxy.go:181 "4 *" to "4 /" (4/3 = 1 idle
// connection in all).
func TestDefaultTransportIdleConns(t *testing.T) {
	tests := []struct {
		name       string
		maxIdle    int // Config.MaxIdleConnsPerHost
		n          int // requests in flight at once
		wantKept   int // connections the first round leaves idle
		wantReused int // connections the second round reuses
	}{
		{name: "unset: 128 per host", maxIdle: 0, n: 6, wantKept: 6, wantReused: 6},
		{name: "negative: 128 per host", maxIdle: -1, n: 6, wantKept: 6, wantReused: 6},
		{name: "3 per host, 12 in all", maxIdle: 3, n: 5, wantKept: 3, wantReused: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
				cfg.MaxIdleConnsPerHost = tt.maxIdle
			})
			// Hold every request until all n are in, so that each one
			// needs a connection of its own.
			var arrived sync.WaitGroup
			var gate chan struct{}
			h.up.handler = func(w http.ResponseWriter, r *http.Request) {
				arrived.Done()
				select {
				case <-gate:
				case <-time.After(10 * time.Second):
				}
				w.Write([]byte("ok"))
			}
			round := func() (kept, reused int) {
				arrived.Add(tt.n)
				gate = make(chan struct{})
				var mu sync.Mutex
				put := make(chan error, tt.n)
				var done sync.WaitGroup
				for range tt.n {
					done.Add(1)
					go func() {
						defer done.Done()
						trace := &httptrace.ClientTrace{
							GotConn: func(i httptrace.GotConnInfo) {
								if i.Reused {
									mu.Lock()
									reused++
									mu.Unlock()
								}
							},
							PutIdleConn: func(err error) { put <- err },
						}
						r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
						w := h.serve(r.WithContext(httptrace.WithClientTrace(r.Context(), trace)))
						if w.Code != http.StatusOK {
							t.Errorf("status %d", w.Code)
						}
					}()
				}
				arrived.Wait()
				close(gate)
				done.Wait()
				// The transport hands a connection back after the response,
				// on its own goroutine: wait for every one.
				for range tt.n {
					select {
					case err := <-put:
						if err == nil {
							kept++
						}
					case <-time.After(10 * time.Second):
						t.Fatal("a connection was neither kept nor closed")
					}
				}
				return kept, reused
			}
			kept, reused := round()
			if reused != 0 {
				t.Fatalf("first round reused %d connections, want 0", reused)
			}
			if kept != tt.wantKept {
				t.Errorf("first round: %d connections kept idle, want %d", kept, tt.wantKept)
			}
			if _, reused = round(); reused != tt.wantReused {
				t.Errorf("second round reused %d connections, want %d", reused, tt.wantReused)
			}
		})
	}
}

// TestRefreshLocalReported: a refresh done for another instance
// (RefreshLocal, the owner side) is reported to OnRefresh like the proxy's
// own, outcome and error; with OnRefresh unset it still refreshes.
//
// Mutant: fresh.go:91 "OnRefresh != nil" to "== nil" (nothing reported, or
// a nil function called).
func TestRefreshLocalReported(t *testing.T) {
	tests := []struct {
		name      string
		noHook    bool  // OnRefresh unset
		err       error // the provider's answer
		want      []refreshCall
		wantToken string
	}{
		{name: "refreshed, then the successor", want: []refreshCall{{Outcome: proxy.OutcomeRefreshed}, {Outcome: proxy.OutcomeSuccessor}}, wantToken: "AT-new"},
		{name: "refused", err: oauth.ErrReauthRequired, want: []refreshCall{{Err: oauth.ErrReauthRequired}, {Err: oauth.ErrReauthRequired}}},
		{name: "no hook", noHook: true, wantToken: "AT-new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, _ *upstream) {
				if tt.noHook {
					cfg.OnRefresh = nil
				}
			})
			h.ref.err = tt.err
			for range 2 {
				tok, _, err := h.p.RefreshLocal(context.Background(), "RT-old", "alice")
				if !errors.Is(err, tt.err) {
					t.Fatalf("RefreshLocal: %v, want %v", err, tt.err)
				}
				if got := ""; tok != nil {
					got = tok.AccessToken
					if got != tt.wantToken {
						t.Errorf("access token %q, want %q", got, tt.wantToken)
					}
				} else if tt.wantToken != "" {
					t.Errorf("no tokens, want %q", tt.wantToken)
				}
			}
			got := h.refreshes()
			if len(got) != len(tt.want) {
				t.Fatalf("OnRefresh got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].Outcome != tt.want[i].Outcome || !errors.Is(got[i].Err, tt.want[i].Err) || (got[i].Err == nil) != (tt.want[i].Err == nil) {
					t.Errorf("OnRefresh call %d: %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestResealFailureLogged: a stale session whose re-seal fails still goes
// through on its current cookie, and the failure is logged as a warning;
// a re-seal that works logs none (the control).
//
// Mutant: fresh.go:36 "err != nil" to "== nil" (a warning for every
// successful re-seal, none for a failed one).
func TestResealFailureLogged(t *testing.T) {
	tests := []struct {
		name     string
		saveErr  error
		wantWarn bool
	}{
		{name: "re-seal fails", saveErr: errors.New("disk full"), wantWarn: true},
		{name: "re-seal works", wantWarn: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.sess.sess = openedSession(t, newClock(), true)
			h.sess.saveErr = tt.saveErr
			w := h.get("/api/x")
			h.wantOK(w)
			if b := bearer(t, h.up.last(t)); b != "Bearer AT-old" {
				t.Errorf("upstream got %q", b)
			}
			logs := h.logs.String()
			if got := strings.Contains(logs, `level=WARN msg="re-seal failed"`); got != tt.wantWarn {
				t.Errorf("re-seal warning logged: %v, want %v; logs:\n%s", got, tt.wantWarn, logs)
			}
			if tt.wantWarn && !strings.Contains(logs, "disk full") {
				t.Errorf("the warning does not say why:\n%s", logs)
			}
		})
	}
}

// fakeOwner is a proxy.Owner answering ok, tokens and err as configured,
// recording what it was asked.
type fakeOwner struct {
	mu     sync.Mutex
	asked  []string // "sessionID refreshToken sub"
	ok     bool
	tokens *oauth.Tokens
	err    error
}

func (o *fakeOwner) RefreshAt(ctx context.Context, sessionID, refreshToken, sub string) (*oauth.Tokens, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, sessionID+" "+refreshToken+" "+sub)
	if !o.ok {
		return nil, false, nil
	}
	if o.err != nil {
		return nil, true, o.err
	}
	t := *o.tokens
	return &t, true, nil
}

func (o *fakeOwner) calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.asked...)
}

// TestOwnerRefresh: with an Owner, a refresh (due, or forced by the
// upstream's 401 invalid_token) goes to the owning instance first. Its
// tokens are used and kept as the successor; its refusal ends the session
// and is not cached; its failure leaves the current token in use while it
// lasts; when it does not answer (ok false: this instance owns the session,
// or the owner is unreachable) the refresh is local. Two requests with the
// same (old) cookie each time. No other test gave the proxy an Owner.
//
// Mutant: refresh.go:108 "err != nil" to "== nil" (the owner's tokens
// dropped as "no tokens", its refusal taken as success).
func TestOwnerRefresh(t *testing.T) {
	fwd := newTokens()
	fwd.AccessToken, fwd.RefreshToken = "AT-fwd", "RT-fwd"
	const asked = "sid-1 RT-old alice"
	tests := []struct {
		name        string
		accessIn    time.Duration // the session's access token
		ok          bool          // the owner answers
		err         error         // its answer, when it does
		wantBearer  []string      // what the upstream saw, in order
		wantCodes   []int         // the two responses
		wantOutcome []proxy.Outcome
		wantAsked   int // RefreshAt calls
		wantLocal   int // Refresher calls
		wantEnded   int
	}{
		{name: "the owner refreshes", accessIn: 10 * time.Second, ok: true,
			wantBearer: []string{"Bearer AT-fwd", "Bearer AT-fwd"}, wantCodes: []int{200, 200},
			wantOutcome: []proxy.Outcome{proxy.OutcomeForwarded, proxy.OutcomeSuccessor}, wantAsked: 1},
		{name: "forced: the owner refreshes", accessIn: time.Hour, ok: true,
			wantBearer: []string{"Bearer AT-old", "Bearer AT-fwd", "Bearer AT-old", "Bearer AT-fwd"}, wantCodes: []int{200, 200},
			wantOutcome: []proxy.Outcome{proxy.OutcomeForwarded, proxy.OutcomeSuccessor}, wantAsked: 1},
		{name: "the owner's provider refuses", accessIn: 10 * time.Second, ok: true, err: errInvalidGrant,
			wantCodes:   []int{errStatus, errStatus},
			wantOutcome: []proxy.Outcome{"", ""}, wantAsked: 2, wantEnded: 2},
		{name: "the owner's provider is down", accessIn: 10 * time.Second, ok: true, err: errProviderDown,
			wantBearer: []string{"Bearer AT-old", "Bearer AT-old"}, wantCodes: []int{200, 200},
			wantOutcome: []proxy.Outcome{"", ""}, wantAsked: 2},
		{name: "no answer: local refresh", accessIn: 10 * time.Second,
			wantBearer: []string{"Bearer AT-new", "Bearer AT-new"}, wantCodes: []int{200, 200},
			wantOutcome: []proxy.Outcome{proxy.OutcomeRefreshed, proxy.OutcomeSuccessor}, wantAsked: 1, wantLocal: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner := &fakeOwner{ok: tt.ok, err: tt.err, tokens: fwd}
			h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
				cfg.Owner = owner
				up.handler = func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") == "Bearer AT-old" && tt.accessIn == time.Hour {
						refuseAll(w, r)
					}
				}
			})
			h.sess.sess = newSession(tt.accessIn)
			var codes []int
			for range 2 {
				codes = append(codes, h.get("/api/x").Code)
			}
			if !slices.Equal(codes, tt.wantCodes) {
				t.Errorf("statuses %v, want %v (errors %v)", codes, tt.wantCodes, h.errors())
			}
			var bearers []string
			for _, s := range h.up.requests() {
				bearers = append(bearers, bearer(t, s))
			}
			if !slices.Equal(bearers, tt.wantBearer) {
				t.Errorf("upstream saw %q, want %q", bearers, tt.wantBearer)
			}
			var outcomes []proxy.Outcome
			for _, c := range h.refreshes() {
				outcomes = append(outcomes, c.Outcome)
				if (c.Err == nil) != (tt.err == nil) || !errors.Is(c.Err, tt.err) {
					t.Errorf("OnRefresh error %v, want %v", c.Err, tt.err)
				}
			}
			if !slices.Equal(outcomes, tt.wantOutcome) {
				t.Errorf("outcomes %q, want %q", outcomes, tt.wantOutcome)
			}
			got := owner.calls()
			if len(got) != tt.wantAsked {
				t.Errorf("owner asked %d times, want %d", len(got), tt.wantAsked)
			}
			for _, a := range got {
				if a != asked {
					t.Errorf("owner asked %q, want %q", a, asked)
				}
			}
			if n := h.ref.Calls(); n != tt.wantLocal {
				t.Errorf("local Refresher called %d times, want %d", n, tt.wantLocal)
			}
			if n := len(h.endedSessions()); n != tt.wantEnded {
				t.Errorf("%d sessions ended, want %d", n, tt.wantEnded)
			}
			if tt.ok && tt.err == nil {
				if s := h.sess.lastSaved(t); s.AccessToken != "AT-fwd" || s.RefreshToken != "RT-fwd" {
					t.Errorf("saved tokens %q %q, want the owner's", s.AccessToken, s.RefreshToken)
				}
			}
			// The owner side of a forwarded refresh never forwards again.
			before := len(owner.calls())
			if _, _, err := h.p.RefreshLocal(context.Background(), "RT-other", "alice"); err != nil {
				t.Errorf("RefreshLocal: %v", err)
			}
			if n := len(owner.calls()); n != before {
				t.Errorf("RefreshLocal asked the owner")
			}
		})
	}
}
