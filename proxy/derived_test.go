package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// fakeDeriver hands out derived tokens named after their subject and
// target, counting each call.
type fakeDeriver struct {
	mu       sync.Mutex
	calls    []string // "exchange <subject> <scope> <resource>" or "client <resource>"
	lifetime time.Duration
	dpopKey  string
	err      error
	now      func() time.Time
	gate     chan struct{} // when set, every call waits for it
}

func (f *fakeDeriver) answer(kind, name string) (*oauth.Tokens, error) {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, kind+" "+name)
	if f.err != nil {
		return nil, f.err
	}
	return &oauth.Tokens{AccessToken: fmt.Sprintf("%s-%s-%d", kind, name, len(f.calls)), Expiry: f.now().Add(f.lifetime), DPoPKey: f.dpopKey}, nil
}

func (f *fakeDeriver) Exchange(ctx context.Context, subject, scope string, t oauth.Target) (*oauth.Tokens, error) {
	return f.answer("exchange", subject+" "+t.Resource+" "+t.Audience+" "+strings.Join(t.Scopes, ","))
}

func (f *fakeDeriver) ClientCredentials(ctx context.Context, t oauth.Target) (*oauth.Tokens, error) {
	return f.answer("client", t.Resource)
}

func (f *fakeDeriver) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func derivedHarness(t *testing.T, d *fakeDeriver) *harness {
	return newHarness(t, func(c *proxy.Config, up *upstream) {
		d.now = c.Now
		if d.lifetime == 0 {
			d.lifetime = 10 * time.Minute
		}
		c.Deriver = d
		c.Routes = append(c.Routes,
			proxy.Route{Path: "/orders/", Upstream: up.url(t, ""), Resource: "https://orders.example", Scopes: []string{"orders"}},
			proxy.Route{Path: "/billing/", Upstream: up.url(t, ""), Audience: "billing"},
			proxy.Route{Path: "/reports/", Upstream: up.url(t, ""), Token: proxy.TokenClient, Resource: "https://reports.example"},
		)
	})
}

// TestDerivedTokens: each upstream with a target gets its own token, the
// session's exchanged for it, once per session token: never the session's
// token, which only the route without a target gets; a TokenClient route
// gets the BFF's token, with no session at all.
func TestDerivedTokens(t *testing.T) {
	d := &fakeDeriver{}
	h := derivedHarness(t, d)
	for range 2 {
		h.wantOK(h.get("/orders/1"))
		if got := bearer(t, h.up.last(t)); got != "Bearer exchange-AT-old https://orders.example  orders-1" {
			t.Fatalf("orders upstream got %q", got)
		}
	}
	h.wantOK(h.get("/billing/1"))
	if got := bearer(t, h.up.last(t)); got != "Bearer exchange-AT-old  billing -2" {
		t.Errorf("billing upstream got %q", got)
	}
	h.wantOK(h.get("/api/x"))
	if got := bearer(t, h.up.last(t)); got != "Bearer AT-old" {
		t.Errorf("the route without a target got %q, want the session's token", got)
	}

	h.sess.sess = nil // signed out: the client route needs no session
	for range 2 {
		h.wantOK(h.get("/reports/q"))
		if got := bearer(t, h.up.last(t)); got != "Bearer client-https://reports.example-3" {
			t.Errorf("reports upstream got %q", got)
		}
	}
	if calls := d.Calls(); len(calls) != 3 {
		t.Errorf("%d token requests %q, want 3: one per target (and session token)", len(calls), calls)
	}
	if loads, _, _ := h.sess.counts(); loads != 4 {
		t.Errorf("%d session loads, want 4: the client route reads none", loads)
	}
}

// TestDerivedLifetime: a derived token is handed out until RefreshMargin
// before its expiry, and never past the session's access token or the
// session: a new session token derives anew.
func TestDerivedLifetime(t *testing.T) {
	d := &fakeDeriver{lifetime: 3 * time.Minute}
	h := derivedHarness(t, d)
	h.wantOK(h.get("/orders/1"))
	h.clk.Advance(119 * time.Second) // 3 min - 60 s margin - 1 s
	h.wantOK(h.get("/orders/1"))
	if n := len(d.Calls()); n != 1 {
		t.Fatalf("%d exchanges inside the derived token's life, want 1", n)
	}
	h.clk.Advance(2 * time.Second)
	h.wantOK(h.get("/orders/1"))
	if n := len(d.Calls()); n != 2 {
		t.Fatalf("%d exchanges after the margin, want 2", n)
	}

	// The session's token expires in 5 minutes: a derived token of an hour
	// is cached only that long (its refresh then replaces the subject).
	d.lifetime = time.Hour
	h.sess.sess = newSession(5 * time.Minute)
	h.sess.sess.AccessToken = "AT-short"
	h.wantOK(h.get("/billing/1"))
	h.clk.Advance(5*time.Minute - time.Second) // inside the 60 s margin: the proxy refreshes the session first
	h.wantOK(h.get("/billing/1"))
	calls := d.Calls()
	if len(calls) != 4 || !strings.HasPrefix(calls[3], "exchange AT-new ") {
		t.Errorf("exchanges %q: want the refreshed session token exchanged anew", calls)
	}
}

// TestDerivedSingleFlight: concurrent requests missing the same derived
// token make one token request; all get its token.
func TestDerivedSingleFlight(t *testing.T) {
	d := &fakeDeriver{gate: make(chan struct{})}
	h := derivedHarness(t, d)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() { codes[i] = h.get("/orders/1").Code })
	}
	time.Sleep(50 * time.Millisecond)
	close(d.gate)
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("statuses %v", codes)
		}
	}
	if n := len(d.Calls()); n != 1 {
		t.Errorf("%d exchanges for 8 concurrent requests, want 1", n)
	}
}

// TestDerivedErrors: when the provider will not derive a token the request
// fails with ErrDerived wrapping its reason and reaches no upstream.
func TestDerivedErrors(t *testing.T) {
	d := &fakeDeriver{err: fmt.Errorf("%w: scope", oauth.ErrOutranks)}
	h := derivedHarness(t, d)
	w := h.get("/orders/1")
	if err := h.wantErr(w, proxy.ErrDerived); !errors.Is(err, oauth.ErrOutranks) {
		t.Errorf("error %v does not say why", err)
	}
	if n := len(h.up.requests()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// TestDerivedInvalidTokenRetry: an upstream refusing a derived token
// forces the session's refresh and one retry with a token derived from the
// new session token; on a client route, a new client token.
func TestDerivedInvalidTokenRetry(t *testing.T) {
	d := &fakeDeriver{}
	h := derivedHarness(t, d)
	h.up.handler = refuseTokens(`Bearer error="invalid_token"`, func(a string) bool {
		return strings.Contains(a, "AT-old") || a == "Bearer client-https://reports.example-3"
	})
	h.wantOK(h.get("/orders/1"))
	reqs := h.up.requests()
	if len(reqs) != 2 || bearer(t, reqs[1]) != "Bearer exchange-AT-new https://orders.example  orders-2" || h.ref.Calls() != 1 {
		t.Fatalf("%d upstream requests, retry with %q, %d refreshes", len(reqs), bearer(t, reqs[len(reqs)-1]), h.ref.Calls())
	}

	// A client token younger than the forced-refresh cooldown is not
	// replaced (an upstream cannot make the BFF ask the provider on every
	// request); an older one is, once.
	h.up.handler = refuseTokens(`Bearer error="invalid_token"`, func(a string) bool { return a == "Bearer client-https://reports.example-3" })
	if w := h.get("/reports/1"); w.Code != http.StatusUnauthorized || len(d.Calls()) != 3 {
		t.Fatalf("a fresh client token refused: status %d after %d token requests, want 401 and no new token", w.Code, len(d.Calls()))
	}
	h.clk.Advance(31 * time.Second) // past the forced-refresh cooldown
	before := len(h.up.requests())
	h.wantOK(h.get("/reports/1"))
	reqs = h.up.requests()[before:]
	if len(reqs) != 2 || bearer(t, reqs[1]) != "Bearer client-https://reports.example-4" {
		t.Errorf("client route: %d requests, retry with %q", len(reqs), bearer(t, reqs[len(reqs)-1]))
	}
}

// TestDerivedRouteValidation: a target needs a token mode that sends one,
// a resource must be an absolute URI, scopes must be scope tokens, and a
// route with a target needs a Deriver.
func TestDerivedRouteValidation(t *testing.T) {
	up := newUpstream(t)
	for _, tc := range []struct {
		name    string
		route   proxy.Route
		deriver bool
		want    string
	}{
		{"no token, a resource", proxy.Route{Path: "/a/", Token: proxy.TokenNone, Resource: "https://a"}, true, "need a token"},
		{"relative resource", proxy.Route{Path: "/a/", Resource: "/a"}, true, "absolute URI"},
		{"resource with a fragment", proxy.Route{Path: "/a/", Resource: "https://a#x"}, true, "absolute URI"},
		{"a scope with a space", proxy.Route{Path: "/a/", Scopes: []string{"a b"}}, true, "not a scope token"},
		{"no deriver", proxy.Route{Path: "/a/", Audience: "a"}, false, "no deriver"},
		{"client route without a deriver", proxy.Route{Path: "/a/", Token: proxy.TokenClient}, false, "no deriver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.route.Upstream = up.url(t, "")
			cfg := proxy.Config{
				Routes: []proxy.Route{tc.route}, Sessions: &fakeSessions{}, Refresher: &fakeRefresher{},
				PublicURL: up.url(t, ""), IsBFFCookie: isBFFCookie,
				ErrorHandler: func(http.ResponseWriter, *http.Request, error) {},
			}
			if tc.deriver {
				cfg.Deriver = &fakeDeriver{}
			}
			if _, err := proxy.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestDerivedDPoP: a DPoP-bound derived token goes out with a proof hashing
// it, by the key it is bound to.
func TestDerivedDPoP(t *testing.T) {
	keys, jkts := dpopKeys(t, "d1")
	d := &fakeDeriver{dpopKey: jkts[0]}
	h := newHarness(t, func(c *proxy.Config, up *upstream) {
		d.now, d.lifetime = c.Now, 10*time.Minute
		c.DPoP, c.Deriver = keys, d
		c.Routes = append(c.Routes, proxy.Route{Path: "/orders/", Upstream: up.url(t, ""), Resource: "https://orders.example"})
	})
	h.wantOK(h.serve(httptest.NewRequest(http.MethodGet, "/orders/1", nil)))
	s := h.up.last(t)
	want := "exchange-AT-old https://orders.example  -1"
	if bearer(t, s) != "DPoP "+want {
		t.Fatalf("Authorization %q", bearer(t, s))
	}
	if p := verifyProof(t, s); p.jkt != jkts[0] || p.ATH != ath(want) {
		t.Errorf("proof by %s for ath %s, want the bound key and the derived token's hash", p.jkt, p.ATH)
	}
}
