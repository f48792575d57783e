package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
)

// An upstream that refuses a token with invalid_token gets one retry with a
// force-refreshed token, for requests without a body; never a loop.
func TestInvalidTokenRetry(t *testing.T) {
	refuse := func(accept string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if accept != "" && r.Header.Get("Authorization") == "Bearer "+accept {
				w.Write([]byte("ok"))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}
	tests := []struct {
		name       string
		method     string
		body       string
		handler    http.HandlerFunc
		refreshErr error
		wantStatus int
		wantCalls  int // Refresher calls
		wantUp     int // upstream requests
		wantSaves  int
		wantClears int
	}{
		{name: "refused, retried with the new token", method: "GET", handler: refuse("AT-new"), wantStatus: 200, wantCalls: 1, wantUp: 2, wantSaves: 1},
		{name: "refused twice: the second 401 goes to the client", method: "GET", handler: refuse(""), wantStatus: 401, wantCalls: 1, wantUp: 2, wantSaves: 1},
		{name: "request with a body is not retried", method: "POST", body: "x=1", handler: refuse("AT-new"), wantStatus: 401, wantUp: 1},
		{name: "401 without invalid_token is not retried", method: "GET", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="insufficient_scope"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, wantStatus: 401, wantUp: 1},
		{name: "forced refresh says invalid_grant: cookies cleared, 401 passed on", method: "GET", handler: refuse("AT-new"),
			refreshErr: errInvalidGrant, wantStatus: 401, wantCalls: 1, wantUp: 1, wantClears: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(_ *proxy.Config, up *upstream) { up.handler = tt.handler })
			h.sess.sess = newSession(time.Hour) // far from expiry: only the 401 triggers a refresh
			h.ref.err = tt.refreshErr
			var body *strings.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req := newRequest(tt.method, "/api/x", body)
			w := h.serve(req)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := h.ref.Calls(); got != tt.wantCalls {
				t.Errorf("Refresher called %d times, want %d", got, tt.wantCalls)
			}
			if got := len(h.up.requests()); got != tt.wantUp {
				t.Errorf("upstream saw %d requests, want %d", got, tt.wantUp)
			}
			_, saves, clears := h.sess.counts()
			if saves != tt.wantSaves || clears != tt.wantClears {
				t.Errorf("saves %d clears %d, want %d and %d", saves, clears, tt.wantSaves, tt.wantClears)
			}
		})
	}
}

func newRequest(method, target string, body *strings.Reader) *http.Request {
	if body == nil {
		return httptest.NewRequest(method, target, nil)
	}
	return httptest.NewRequest(method, target, body)
}
