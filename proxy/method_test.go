package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bff-project/bff/proxy"
)

// TestMethodGuard: TRACE and CONNECT are refused with ErrMethod before
// anything reaches the upstream (a TRACE echo would reflect the user's
// bearer); ordinary methods on the same route are forwarded (the control
// that the refusal is the guard's, not the route's).
func TestMethodGuard(t *testing.T) {
	tests := []struct {
		method  string
		refused bool
	}{
		{http.MethodTrace, true},
		{http.MethodConnect, true},
		{http.MethodGet, false},
		{http.MethodDelete, false},
		{http.MethodPatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			h := newHarness(t, nil)
			r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
			r.Method = tt.method
			w := h.serve(r)
			got := h.up.requests()
			if tt.refused {
				if len(got) != 0 {
					t.Errorf("upstream saw %d request(s) %+v, want none", len(got), got)
				}
				h.wantErr(w, proxy.ErrMethod)
				if loads, _, _ := h.sess.counts(); loads != 0 {
					t.Errorf("session loaded %d times for a refused method, want 0", loads)
				}
				return
			}
			h.wantOK(w)
			if len(got) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(got))
			}
			if got[0].Method != tt.method || got[0].Path != "/api/x" {
				t.Errorf("upstream saw %s %s, want %s /api/x", got[0].Method, got[0].Path, tt.method)
			}
			if b := bearer(t, got[0]); b != "Bearer AT-old" {
				t.Errorf("Authorization %q, want the session's bearer", b)
			}
		})
	}
}
