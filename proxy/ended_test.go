package proxy_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// TestSessionEnded: when the provider refuses a refresh, the cookies are
// cleared and OnSessionEnded is called once, after the clearing, with the
// session, so the server revokes its id and a copy of the cookie dies too;
// a provider that is down, or a refresh that works, ends nothing.
func TestSessionEnded(t *testing.T) {
	refuse := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}
	tests := []struct {
		name      string
		target    string        // "" means /api/x (TokenUser)
		accessIn  time.Duration // access token expiry
		noRT      bool
		refuse    bool // the upstream answers 401 invalid_token: a forced refresh
		err       error
		wantEnded bool
	}{
		{name: "refresh refused", accessIn: 10 * time.Second, err: errInvalidGrant, wantEnded: true},
		{name: "no refresh token", accessIn: 10 * time.Second, noRT: true, wantEnded: true},
		{name: "refresh refused on an optional route", target: "/opt/x", accessIn: 10 * time.Second, err: errInvalidGrant, wantEnded: true},
		{name: "forced refresh refused", accessIn: time.Hour, refuse: true, err: errInvalidGrant, wantEnded: true},

		{name: "provider down", accessIn: -time.Second, err: errProviderDown},
		{name: "provider down, token still valid", accessIn: 10 * time.Second, err: errProviderDown},
		{name: "forced refresh, provider down", accessIn: time.Hour, refuse: true, err: errProviderDown},
		{name: "refreshed", accessIn: 10 * time.Second},
		{name: "forced refresh succeeded", accessIn: time.Hour, refuse: true},
		{name: "no refresh needed", accessIn: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
				cfg.Routes = []proxy.Route{
					{Path: "/api/", Upstream: up.url(t, "")},
					{Path: "/opt/", Upstream: up.url(t, ""), Token: proxy.TokenOptional},
				}
				if tt.refuse {
					up.handler = refuse
				}
			})
			h.sess.sess = newSession(tt.accessIn)
			if tt.noRT {
				h.sess.sess.RefreshToken = ""
			}
			h.ref.err = tt.err
			target := tt.target
			if target == "" {
				target = "/api/x"
			}
			h.get(target)

			ended := h.endedSessions()
			_, _, clears := h.sess.counts()
			if !tt.wantEnded {
				if len(ended) != 0 || clears != 0 {
					t.Errorf("OnSessionEnded calls %v, Clear calls %d, want none", ended, clears)
				}
				return
			}
			if want := []endedCall{{ID: "sid-1", Clears: 1}}; !slices.Equal(ended, want) {
				t.Errorf("OnSessionEnded calls %v, want %v (once, after the cookies were cleared)", ended, want)
			}
			for _, c := range h.refreshes() {
				if !errors.Is(c.Err, oauth.ErrReauthRequired) {
					t.Errorf("OnRefresh(%q, %v), want a refused grant", c.Outcome, c.Err)
				}
			}
		})
	}
}
