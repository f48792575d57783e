package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProviderReport: `bff check`'s description of the provider follows its
// discovery document, offered and missing features each named, and an
// unreachable provider is an error, not a report.
func TestProviderReport(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]any
		want  []string
		edit  func(*Config)
	}{
		{"everything offered", map[string]any{
			"authorization_response_iss_parameter_supported": true,
			"userinfo_endpoint":                     "/userinfo",
			"end_session_endpoint":                  "/logout",
			"revocation_endpoint":                   "/revoke",
			"backchannel_logout_supported":          true,
			"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
			"pushed_authorization_request_endpoint": "/par",
		}, []string{
			"discovery ok", "client authentication: client_secret_post",
			"iss parameter: advertised", "userinfo: offered", "end_session_endpoint): offered",
			"(RFC 7009): offered", "back-channel logout: offered", "(RFC 9126): used",
		}, nil},
		{"private_key_jwt", map[string]any{"token_endpoint_auth_methods_supported": []string{"private_key_jwt"}}, []string{
			"client authentication: private_key_jwt",
			`client assertions signed with kid "k1" (ES256); public keys at https://app.example.com/auth/jwks.json`,
		}, func(c *Config) {
			c.OIDC.AuthMethod, c.OIDC.ClientSecret, c.OIDC.ClientKeys = "private_key_jwt", "", testClientKeys(t, "k1", "k0")
		}},
		{"DPoP", map[string]any{"dpop_signing_alg_values_supported": []string{"ES256"}}, []string{
			"DPoP (RFC 9449): used: access tokens are bound to the BFF's key (ES256)",
		}, func(c *Config) { c.OIDC.DPoP = testDPoPKeys(t, "d1") }},
		{"DPoP not advertised", nil, []string{"DPoP (RFC 9449): configured but not advertised"}, func(c *Config) { c.OIDC.DPoP = testDPoPKeys(t, "d1") }},
		{"DPoP offered, not used", map[string]any{"dpop_signing_alg_values_supported": []string{"ES256"}}, []string{
			"DPoP (RFC 9449): offered, not used",
		}, nil},
		{"nothing offered", nil, []string{
			"discovery ok", "client authentication: client_secret_basic",
			"iss parameter: not advertised", "userinfo: not offered", "end_session_endpoint): not offered",
			"(RFC 7009): not offered", "back-channel logout: not advertised", "(RFC 9126): not offered",
			"DPoP (RFC 9449): not offered",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var op *httptest.Server
			op = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeDiscovery(w, op.URL, tt.extra)
			}))
			t.Cleanup(op.Close)
			s := newTestServer(t, op.URL, tt.edit)
			report, err := s.ProviderReport(context.Background())
			if err != nil {
				t.Fatalf("ProviderReport: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(report, w) {
					t.Errorf("report lacks %q:\n%s", w, report)
				}
			}
		})
	}
	t.Run("provider unreachable", func(t *testing.T) {
		s := newTestServer(t, "http://127.0.0.1:1", nil)
		if report, err := s.ProviderReport(context.Background()); err == nil || report != "" {
			t.Errorf("ProviderReport = %q, %v; want an error", report, err)
		}
	})
}
