package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/bff-project/bff/proxy"
)

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
