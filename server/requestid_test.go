package server_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/bff-project/bff/server"
)

func TestRequestID(t *testing.T) {
	untrusted := newEnv(t, envOptions{noRun: true})
	trusted := newEnv(t, envOptions{noRun: true, config: func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	tests := []struct {
		name string
		e    *env
		in   string
		keep bool
	}{
		{"untrusted peer", untrusted, "abc-123", false},
		{"trusted peer", trusted, "abc-123", true},
		{"trusted peer, unprintable", trusted, "abc 123", false},
		{"trusted peer, longest", trusted, strings.Repeat("a", 128), true},
		{"trusted peer, too long", trusted, strings.Repeat("a", 129), false},
		{"trusted peer, first and last printable", trusted, "!abc-123~", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.e.browser().do(http.MethodGet, "/healthz", http.Header{"X-Request-Id": {tt.in}})
			got := r.Header.Get("X-Request-Id")
			if got == "" {
				t.Fatal("no X-Request-Id in the response")
			}
			if (got == tt.in) != tt.keep {
				t.Errorf("X-Request-Id %q for %q, keep=%v", got, tt.in, tt.keep)
			}
		})
	}
	// The access log names the peer by its address, without the port.
	if !strings.Contains(untrusted.logs.String(), `"peer":"127.0.0.1"`) {
		t.Errorf("access log without the peer's bare address:\n%s", untrusted.logs)
	}
}

func TestStringHasNoSecrets(t *testing.T) {
	e := newEnv(t, envOptions{noRun: true})
	s := e.srv.String()
	for _, want := range []string{e.cfg.PublicURL, e.idp.Issuer(), "/api/", e.upstream.URL} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	for _, secret := range append(masterBase64(), testClientSecret, string(testMaster)) {
		if strings.Contains(s, secret) {
			t.Errorf("String() shows a secret:\n%s", s)
		}
	}
}
