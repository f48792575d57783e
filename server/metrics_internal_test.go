package server

import (
	"testing"
	"time"
)

// TestCodeClass: the code label of bff_http_requests_total is the status
// class for every status from 100 to 599, ends included (an upstream may
// answer 599), and "other" outside, so a stray status cannot grow the
// label set.
func TestCodeClass(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{0, "other"}, {99, "other"},
		{100, "1xx"}, {101, "1xx"}, {199, "1xx"},
		{200, "2xx"}, {302, "3xx"}, {404, "4xx"},
		{500, "5xx"}, {599, "5xx"},
		{600, "other"}, {999, "other"},
	} {
		if got := codeClass(tc.status); got != tc.want {
			t.Errorf("codeClass(%d) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// TestProviderClientBounded: the default client to the provider has a
// timeout, and a short one: without it a provider that accepts connections
// and never answers would hold discovery, and so readiness, for ever.
func TestProviderClientBounded(t *testing.T) {
	s := newTestServer(t, "http://127.0.0.1:1", nil)
	if c := s.providerClient(); c.Timeout <= 0 || c.Timeout > 30*time.Second || c.Transport == nil {
		t.Errorf("provider client timeout %s, transport %T; want a timeout of at most 30 s and the metrics' transport", c.Timeout, c.Transport)
	}
}
