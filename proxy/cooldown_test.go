package proxy_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/session"
)

// refuseAll is an upstream that refuses every token as invalid_token: each
// call asks for a forced refresh.
func refuseAll(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	w.WriteHeader(http.StatusUnauthorized)
}

// call makes one API call as a browser would: with the session it last
// received, keeping the cookie a response sets.
func (h *harness) call(s *session.Session) (*session.Session, int) {
	h.t.Helper()
	h.sess.mu.Lock()
	c := *s
	h.sess.sess, h.sess.saved = &c, nil
	h.sess.mu.Unlock()
	w := h.get("/api/x")
	h.sess.mu.Lock()
	defer h.sess.mu.Unlock()
	if n := len(h.sess.saved); n > 0 {
		ns := h.sess.saved[n-1]
		return &ns, w.Code
	}
	return s, w.Code
}

func (h *harness) count(o proxy.Outcome) int {
	n := 0
	for _, c := range h.refreshes() {
		if c.Outcome == o {
			n++
		}
	}
	return n
}

// TestForcedRefreshCooldown: an upstream that always answers 401
// invalid_token costs at most one provider refresh per session per
// cooldown; the calls in between get the upstream's 401 and are counted as
// OutcomeCooldown.
func TestForcedRefreshCooldown(t *testing.T) {
	h := newHarness(t, func(_ *proxy.Config, up *upstream) { up.handler = refuseAll })
	alice := newSession(time.Hour)

	for i := range 20 {
		var code int
		alice, code = h.call(alice)
		if code != http.StatusUnauthorized {
			t.Fatalf("call %d: status %d, want the upstream's 401", i, code)
		}
	}
	if got := h.ref.Calls(); got != 1 {
		t.Errorf("20 calls: Refresher called %d times, want 1", got)
	}
	if got := h.count(proxy.OutcomeCooldown); got != 19 {
		t.Errorf("OutcomeCooldown reported %d times, want 19", got)
	}
	if got := len(h.up.requests()); got != 21 {
		t.Errorf("upstream saw %d requests, want 21 (one retry)", got)
	}

	h.clk.Advance(29 * time.Second)
	alice, _ = h.call(alice)
	if got := h.ref.Calls(); got != 1 {
		t.Errorf("inside the cooldown: Refresher called %d times, want 1", got)
	}
	h.clk.Advance(time.Second)
	alice, _ = h.call(alice)
	alice, _ = h.call(alice)
	if got := h.ref.Calls(); got != 2 {
		t.Errorf("after the cooldown: Refresher called %d times, want 2", got)
	}

	// Another session is not held back by alice's cooldown.
	bob := newSession(time.Hour)
	bob.ID, bob.RefreshToken = "sid-2", "RT-bob"
	h.call(bob)
	if got := h.ref.Calls(); got != 3 {
		t.Errorf("second session: Refresher called %d times, want 3", got)
	}
	if got := h.ref.gotRT[2]; got != "RT-bob" {
		t.Errorf("second session redeemed %q", got)
	}
	h.call(bob)
	if got := h.ref.Calls(); got != 3 {
		t.Errorf("second session again: Refresher called %d times, want 3", got)
	}
}

// TestForcedRefreshCooldownSuccessor: inside the cooldown a request still
// carrying the pre-refresh cookie uses the successor already cached for its
// refresh token (no provider cost) and is retried with it.
func TestForcedRefreshCooldownSuccessor(t *testing.T) {
	h := newHarness(t, func(_ *proxy.Config, up *upstream) {
		up.handler = func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "Bearer AT-old" {
				refuseAll(w, r)
			}
		}
	})
	old := newSession(time.Hour)
	if _, code := h.call(old); code != http.StatusOK {
		t.Fatalf("first call: status %d, want 200 after the forced refresh", code)
	}
	ns, code := h.call(old) // a second tab, still with the old cookie
	if code != http.StatusOK {
		t.Fatalf("old cookie: status %d, want 200 with the successor", code)
	}
	if ns.AccessToken != "AT-new" || ns.RefreshToken != "RT-new" {
		t.Errorf("old cookie: saved at=%q rt=%q, want the successor", ns.AccessToken, ns.RefreshToken)
	}
	if got := h.ref.Calls(); got != 1 {
		t.Errorf("Refresher called %d times, want 1", got)
	}
	if got := h.count(proxy.OutcomeSuccessor); got != 1 {
		t.Errorf("OutcomeSuccessor reported %d times, want 1", got)
	}
	if got := h.count(proxy.OutcomeCooldown); got != 0 {
		t.Errorf("OutcomeCooldown reported %d times, want 0", got)
	}
}

// TestForcedRefreshCooldownConfig: a custom cooldown, and a negative one
// that turns forced refreshes off (the control: the default refreshes once).
func TestForcedRefreshCooldownConfig(t *testing.T) {
	tests := []struct {
		name      string
		cooldown  time.Duration
		advance   time.Duration // between two calls
		wantCalls int
		wantUp    int
	}{
		{name: "default", advance: 10 * time.Second, wantCalls: 1, wantUp: 3},
		{name: "custom, inside", cooldown: 5 * time.Minute, advance: 4 * time.Minute, wantCalls: 1, wantUp: 3},
		{name: "custom, after", cooldown: 5 * time.Second, advance: 5 * time.Second, wantCalls: 2, wantUp: 3}, // the second refresh gives the token just refused: no retry
		{name: "disabled", cooldown: -1, wantCalls: 0, wantUp: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
				cfg.ForcedRefreshCooldown = tt.cooldown
				up.handler = refuseAll
			})
			s, _ := h.call(newSession(time.Hour))
			h.clk.Advance(tt.advance)
			h.call(s)
			if got := h.ref.Calls(); got != tt.wantCalls {
				t.Errorf("Refresher called %d times, want %d", got, tt.wantCalls)
			}
			if got := len(h.up.requests()); got != tt.wantUp {
				t.Errorf("upstream saw %d requests, want %d", got, tt.wantUp)
			}
		})
	}
}
