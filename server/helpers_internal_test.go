package server

import (
	"log/slog"
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
