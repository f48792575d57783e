package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bff-project/bff/oauth"
)

// testKeySet is a JWK set of one new private P-256 key per kid.
func testKeySet(t *testing.T, kids ...string) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testClientKeys is a private_key_jwt key set (see testKeySet), the first
// key signing.
func testClientKeys(t *testing.T, kids ...string) *oauth.ClientKeys {
	t.Helper()
	ck, err := oauth.ParseClientKeys(testKeySet(t, kids...))
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// testDPoPKeys is a DPoP key set (see testKeySet), the first key binding.
func testDPoPKeys(t *testing.T, kids ...string) *oauth.DPoPKeys {
	t.Helper()
	dk, err := oauth.ParseDPoPKeys(testKeySet(t, kids...))
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func getJWKS(s *Server) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/auth/jwks.json", nil))
	return w
}

// publishedKids lists the kids a JWKS answer publishes, checking that each
// is a public key.
func publishedKids(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatalf("JWKS body: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("key %q is published with its private part", k.KeyID)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

// TestClientJWKS: with private_key_jwt the BFF publishes every client key's
// public half at <prefix>/jwks.json, cacheable for a minute; without it,
// there is no such endpoint.
func TestClientJWKS(t *testing.T) {
	keys := testClientKeys(t, "next", "current")
	s := newTestServer(t, "http://127.0.0.1:1", func(c *Config) {
		c.OIDC.AuthMethod, c.OIDC.ClientSecret, c.OIDC.ClientKeys = oauth.AuthMethodPrivateKeyJWT, "", keys
	})
	w := getJWKS(s)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET /auth/jwks.json: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=60" || w.Header().Get("Pragma") != "" {
		t.Errorf("Cache-Control %q Pragma %q: want a minute's public caching", cc, w.Header().Get("Pragma"))
	}
	if got := strings.Join(publishedKids(t, w), ","); got != "next,current" {
		t.Errorf("published %s, want next,current", got)
	}

	plain := newTestServer(t, "http://127.0.0.1:1", nil)
	if w := getJWKS(plain); w.Code != http.StatusNotFound {
		t.Errorf("without private_key_jwt: GET /auth/jwks.json answered %d, want 404", w.Code)
	}
}

// TestReloadClientKeys: a reload swaps the running client's keys (the next
// assertion signs with the new first key, the JWKS lists the new set); a
// refused reload leaves them; turning private_key_jwt on or off needs a
// restart.
func TestReloadClientKeys(t *testing.T) {
	withKeys := func(keys *oauth.ClientKeys) Config {
		cfg := reloaded(t)
		cfg.OIDC.AuthMethod, cfg.OIDC.ClientSecret, cfg.OIDC.ClientKeys = oauth.AuthMethodPrivateKeyJWT, "", keys
		return cfg
	}
	running, s := startReloadable(t, withKeys(testClientKeys(t, "k1")))

	refused := withKeys(testClientKeys(t, "k2", "k1"))
	refused.PublicURL = "https://other.example.com"
	if err := s.Reload(refused); err == nil {
		t.Fatal("a reload changing public_url was accepted")
	}
	if kid, _ := running.OIDC.ClientKeys.Signing(); kid != "k1" {
		t.Errorf("a refused reload changed the signing key to %q", kid)
	}

	if err := s.Reload(withKeys(testClientKeys(t, "k2", "k1"))); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if kid, _ := running.OIDC.ClientKeys.Signing(); kid != "k2" {
		t.Errorf("after the reload the client signs with %q, want k2", kid)
	}
	if got := strings.Join(publishedKids(t, getJWKS(s)), ","); got != "k2,k1" {
		t.Errorf("after the reload the JWKS lists %s, want k2,k1", got)
	}

	off := withKeys(nil) // only the keys are gone
	if err := s.Reload(off); err == nil || !strings.Contains(err.Error(), "oidc.client_key_file changed") {
		t.Errorf("Reload without keys: %v, want oidc.client_key_file changed", err)
	}
}

// TestReloadDPoPKeys: a reload swaps the DPoP keys the client and the proxy
// hold; a refused one leaves them; turning DPoP on or off needs a restart.
func TestReloadDPoPKeys(t *testing.T) {
	withKeys := func(keys *oauth.DPoPKeys) Config {
		cfg := reloaded(t)
		cfg.OIDC.DPoP = keys
		return cfg
	}
	running, s := startReloadable(t, withKeys(testDPoPKeys(t, "d1")))
	first := running.OIDC.DPoP.Binding()

	refused := withKeys(testDPoPKeys(t, "d2", "d1"))
	refused.PublicURL = "https://other.example.com"
	if err := s.Reload(refused); err == nil || running.OIDC.DPoP.Binding() != first {
		t.Fatalf("a refused reload: %v, binding changed %v", err, running.OIDC.DPoP.Binding() != first)
	}
	next := testDPoPKeys(t, "d2", "d1")
	if err := s.Reload(withKeys(next)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if running.OIDC.DPoP.Binding() != next.Binding() {
		t.Error("after the reload the running keys still bind with the old key")
	}
	if err := s.Reload(withKeys(nil)); err == nil || !strings.Contains(err.Error(), "oidc.dpop_key_file changed") {
		t.Errorf("Reload without DPoP keys: %v, want oidc.dpop_key_file changed", err)
	}
}

// testClientCert is a self-signed TLS client certificate for cn.
func testClientCert(t *testing.T, cn string) *oauth.ClientCert {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	c, err := oauth.ParseClientCert(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadClientCert: a reload swaps the certificate the provider client
// presents; turning mTLS on or off needs a restart.
func TestReloadClientCert(t *testing.T) {
	withCert := func(c *oauth.ClientCert) Config {
		cfg := reloaded(t)
		cfg.OIDC.AuthMethod, cfg.OIDC.ClientSecret, cfg.OIDC.ClientCert = oauth.AuthMethodTLSClient, "", c
		return cfg
	}
	running, s := startReloadable(t, withCert(testClientCert(t, "one")))
	if err := s.Reload(withCert(testClientCert(t, "two"))); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	got, _ := running.OIDC.ClientCert.GetClientCertificate(nil)
	if cn := running.OIDC.ClientCert.Leaf().Subject.CommonName; cn != "two" || got.Leaf.Subject.CommonName != "two" {
		t.Errorf("after the reload the client presents %q, want two", cn)
	}
	if err := s.Reload(withCert(nil)); err == nil || !strings.Contains(err.Error(), "oidc.tls_client_cert_file changed") {
		t.Errorf("Reload without a certificate: %v", err)
	}
}

// startReloadable starts a server on cfg with the first of reloaded's two
// secrets and routes, so that reloading reloaded(t) (edited) applies; it
// returns the configuration it runs on (whose key holders the server uses).
func startReloadable(t *testing.T, cfg Config) (Config, *Server) {
	t.Helper()
	cfg.Secrets, cfg.Routes = cfg.Secrets[1:], cfg.Routes[:1]
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return cfg, s
}
