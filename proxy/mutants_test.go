package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
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
