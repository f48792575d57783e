package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns PEM certificate and key for cn, valid from notBefore for
// an hour; a server certificate names 127.0.0.1.
func (ca *testCA) issue(t *testing.T, cn string, server bool, notBefore time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notBefore.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func TestParseClientCert(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	cert, key := ca.issue(t, "bff", false, now.Add(-time.Minute))
	_, otherKey := ca.issue(t, "other", false, now.Add(-time.Minute))
	future, futureKey := ca.issue(t, "bff", false, now.Add(time.Minute))
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"valid", cert, key, ""},
		{"key of another certificate", cert, otherKey, "private key does not match"},
		{"not yet valid", future, futureKey, "not now"},
		{"expired", cert, key, "not now"},
		{"not PEM", []byte("nope"), key, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := now
			if tc.name == "expired" {
				at = now.Add(2 * time.Hour)
			}
			c, err := ParseClientCert(tc.cert, tc.key, at)
			if tc.want == "" {
				if err != nil || c.Leaf().Subject.CommonName != "bff" {
					t.Fatalf("ParseClientCert: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseClientCert = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Error("the error carries the key")
			}
		})
	}
}

// TestMTLSClientAuth: with tls_client_auth the token, PAR and revocation
// requests go to the provider's mtls_endpoint_aliases, over TLS with the
// client certificate, the form carrying client_id and nothing that
// authenticates; Replace changes the certificate new connections present.
func TestMTLSClientAuth(t *testing.T) {
	ca := newTestCA(t)
	p := newFakeProvider(t)
	var mu sync.Mutex
	var peers []string // the client certificate's CN of each request over TLS, with its path
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := "none"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		mu.Lock()
		peers = append(peers, r.URL.Path+" "+cn)
		mu.Unlock()
		p.srv.Config.Handler.ServeHTTP(w, r)
	}))
	srvCert, srvKey := ca.issue(t, "provider", true, time.Now().Add(-time.Minute))
	pair, _ := tls.X509KeyPair(srvCert, srvKey)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	p.meta["token_endpoint_auth_methods_supported"] = []string{AuthMethodTLSClient, AuthMethodPrivateKeyJWT}
	p.meta["pushed_authorization_request_endpoint"] = p.issuer + "/par"
	p.meta["mtls_endpoint_aliases"] = map[string]string{
		"token_endpoint": tlsSrv.URL + "/token", "pushed_authorization_request_endpoint": tlsSrv.URL + "/par",
		"revocation_endpoint": tlsSrv.URL + "/revoke",
	}
	c1, k1 := ca.issue(t, "bff-1", false, time.Now().Add(-time.Minute))
	cert, err := ParseClientCert(c1, k1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tc := cert.TLSConfig()
	tc.RootCAs = ca.pool
	transport := &http.Transport{TLSClientConfig: tc}
	c := p.client(func(c *Config) {
		c.AuthMethod, c.ClientCert, c.ClientSecret = AuthMethodTLSClient, cert, ""
		c.HTTPClient = &http.Client{Transport: transport}
	})
	p.tokenReply = func(url.Values) reply {
		return jsonReply(http.StatusOK, map[string]any{"access_token": testAccess + "-2", "token_type": "Bearer", "expires_in": 300})
	}
	if _, err := c.AuthURL(t.Context(), NewFlow()); err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := c.Revoke(t.Context(), testRefresh, "refresh_token"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	c2, k2 := ca.issue(t, "bff-2", false, time.Now().Add(-time.Minute))
	next, _ := ParseClientCert(c2, k2, time.Now())
	cert.Replace(next)
	transport.CloseIdleConnections()
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); err != nil {
		t.Fatalf("Refresh after Replace: %v", err)
	}

	want := []string{"/par bff-1", "/token bff-1", "/revoke bff-1", "/token bff-2"}
	mu.Lock()
	got := append([]string(nil), peers...)
	mu.Unlock()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("requests over mutual TLS %v, want %v", got, want)
	}
	for _, r := range append(append(p.tokenRequests(), p.parReqs...), p.revokeRequests()...) {
		if r.form.Get("client_id") != testClientID || r.basic || r.form.Has("client_secret") || r.form.Has("client_assertion") {
			t.Errorf("form %v basic %v: want client_id alone", r.form, r.basic)
		}
	}
	if caps, _ := c.Capabilities(); caps.TokenAuthMethod != AuthMethodTLSClient {
		t.Errorf("TokenAuthMethod %q", caps.TokenAuthMethod)
	}
}

// TestMTLSConfig: the mTLS methods need a certificate and no secret; a
// provider listing its methods without ours fails discovery; without
// mtls_endpoint_aliases the regular endpoints are used.
func TestMTLSConfig(t *testing.T) {
	cfg := validConfig()
	cfg.AuthMethod, cfg.ClientSecret = AuthMethodSelfSignedTLSClient, ""
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("New without a certificate: %v", err)
	}
	ca := newTestCA(t)
	c1, k1 := ca.issue(t, "bff", false, time.Now().Add(-time.Minute))
	cert, _ := ParseClientCert(c1, k1, time.Now())

	p := newFakeProvider(t)
	cfg = p.config()
	cfg.AuthMethod, cfg.ClientSecret, cfg.ClientCert = AuthMethodSelfSignedTLSClient, "", cert
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Discover(t.Context()); err == nil || !strings.Contains(err.Error(), "does not offer self_signed_tls_client_auth") {
		t.Errorf("Discover against a provider without the method: %v", err)
	}
	p.meta["token_endpoint_auth_methods_supported"] = []string{AuthMethodSelfSignedTLSClient}
	if err := c.Discover(t.Context()); err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if got := c.meta.Load().oauth2.Endpoint.TokenURL; got != p.issuer+"/token" {
		t.Errorf("token URL %q without aliases, want the regular one", got)
	}
}
