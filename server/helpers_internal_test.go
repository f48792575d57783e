package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/bff-project/bff/oauth"
)

// newTestServer is a Server for the provider at issuer (not contacted: call
// s.idp.Discover when the test needs its metadata), with one master secret
// and no log; edit, when not nil, changes the Config first. It is closed
// when the test ends.
func newTestServer(t *testing.T, issuer string, edit func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		PublicURL: "https://app.example.com",
		OIDC:      oauth.Config{Issuer: issuer, ClientID: "bff-test", ClientSecret: "client-secret"},
		Secrets:   [][]byte{[]byte("0123456789abcdef0123456789ABCDEF-internal-test")},
		Logger:    slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writeDiscovery answers a discovery request for the provider at base: the
// fields every provider has, then extra; an extra string starting with "/"
// is a path on base.
func writeDiscovery(w http.ResponseWriter, base string, extra map[string]any) {
	doc := map[string]any{
		"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
		"jwks_uri": base + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
	}
	for k, v := range extra {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "/") {
			v = base + s
		}
		doc[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}
