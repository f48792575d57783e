package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// derived wraps err as the proxy does a failed derived token.
func derived(err error) error { return fmt.Errorf("%w: %w", proxy.ErrDerived, err) }

// TestClassify pins the public answer of the errors the attack review
// added: each must keep its status even when wrapped the way its caller
// wraps it.
func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"forged internal request looks like no endpoint", fmt.Errorf("%w: replayed", errForgedInternal), http.StatusNotFound, "not_found"},
		{"non-WebSocket upgrade", proxy.ErrUpgrade, http.StatusBadRequest, "invalid_request"},
		{"slow body on an auth endpoint", fmt.Errorf("read: %w", errBodyTimeout), http.StatusRequestTimeout, "request_timeout"},
		// The proxy's error handler wraps a failed body read as an
		// upstream failure: the client still learns it was too slow.
		{"slow body through the proxy", fmt.Errorf("%w: %w", proxy.ErrUpstream, fmt.Errorf("read: %w", errBodyTimeout)), http.StatusRequestTimeout, "request_timeout"},
		{"slow body, proxy sentinel", fmt.Errorf("%w: %w", proxy.ErrUpstream, proxy.ErrBodyTimeout), http.StatusRequestTimeout, "request_timeout"},
		{"end-session ticket that does not open", errBadTicket, http.StatusBadRequest, "invalid_request"},
		{"upstream down", fmt.Errorf("%w: dial", proxy.ErrUpstream), http.StatusBadGateway, "bad_gateway"},
		// A route's derived token: only a refused subject token sends the
		// user to sign in again; what the provider refuses for the route
		// is the operator's, or every sign-in would loop.
		{"derived: subject token refused", derived(&oauth.TokenError{Op: "token exchange", Code: "invalid_grant", Status: 400}), http.StatusUnauthorized, "unauthenticated"},
		{"derived: target refused", derived(&oauth.TokenError{Op: "token exchange", Code: "invalid_target", Status: 400}), http.StatusInternalServerError, "misconfigured"},
		{"derived: scope refused", derived(&oauth.TokenError{Op: "token exchange", Code: "invalid_scope", Status: 400}), http.StatusInternalServerError, "misconfigured"},
		{"derived: a scope the session lacks", derived(fmt.Errorf("%w: x", oauth.ErrOutranks)), http.StatusInternalServerError, "misconfigured"},
		{"derived: client refused", derived(&oauth.TokenError{Op: "client credentials", Code: "invalid_client", Status: 401}), http.StatusInternalServerError, "misconfigured"},
		{"derived: provider down", derived(&oauth.TokenError{Op: "token exchange", Code: "server_error", Status: 500}), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"derived: provider not ready", derived(oauth.ErrNotReady), http.StatusServiceUnavailable, "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe := classify(tt.err)
			if pe.status != tt.status || pe.code != tt.code {
				t.Errorf("classify(%v) = %d %s, want %d %s", tt.err, pe.status, pe.code, tt.status, tt.code)
			}
		})
	}
}
