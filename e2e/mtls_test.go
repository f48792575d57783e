package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA writing PEM files into dir.
type testPKI struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // the CA certificate's file
}

func newTestPKI(t *testing.T, dir, name string) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: dir, cert: cert, key: key, pem: filepath.Join(dir, name+"-ca.pem")}
	os.WriteFile(p.pem, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

// issue writes a certificate for cn (a server one names 127.0.0.1) and its
// key, and returns their files.
func (p *testPKI) issue(t *testing.T, file, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, file+".pem"), filepath.Join(p.dir, file+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

// TestMTLSClientAuth runs the BFF as a tls_client_auth client of
// oidc-provider (RFC 8705): the client has no secret; the provider's
// mtls_endpoint_aliases are an https listener that asks for a client
// certificate, and authenticates the client by it (issued by the CA it
// trusts, with the registered subject). Sign-in (PAR and the code
// exchange), a refresh and the logout's revocation all go there with the
// certificate. The controls: the same token request without a certificate
// (the plain endpoint) or with one from another CA is invalid_client. A
// new certificate by SIGHUP keeps the session.
func TestMTLSClientAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := newTestPKI(t, dir, "test")
	srvCert, srvKey := pki.issue(t, "provider", "127.0.0.1", true)
	cliCert, cliKey := pki.issue(t, "client", "bff-client", false)
	port, mtlsPort := freePort(t), freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	opts := IDPOptions{
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		TokenAuthMethod:        "tls_client_auth",
		AccessTTL:              4 * time.Second,
	}
	opts.MTLS.Port, opts.MTLS.Cert, opts.MTLS.Key, opts.MTLS.ClientCA, opts.MTLS.SubjectDN = mtlsPort, srvCert, srvKey, pki.pem, "CN=bff-client"
	idp := startIDP(t, opts)
	up := startUpstream(t, idp.Issuer(), DefaultAudience)
	bff := startBFF(t, BFFOptions{
		Port: port, Issuer: idp.Issuer(), ClientID: idp.ClientID(), Upstream: up.URL(),
		ExtraEnv: []string{"BFF_OIDC_AUTH_METHOD=tls_client_auth", "BFF_OIDC_TLS_CLIENT_CERT_FILE=" + cliCert,
			"BFF_OIDC_TLS_CLIENT_KEY_FILE=" + cliKey, "SSL_CERT_FILE=" + pki.pem},
	})

	b := newBrowser(t)
	authURL := b.StartLogin(t, bff.URL(), "/")
	if authURL.Query().Get("request_uri") == "" {
		t.Fatalf("authorization URL %s: want a pushed request", authURL)
	}
	if final := b.FinishLogin(t, authURL, bff.URL(), "alice", "pw"); final.Query().Get("login_error") != "" {
		t.Fatalf("sign-in landed on %s", final)
	}
	csrf := map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}
	st := idp.Stats(t)
	if st.MTLSCalls["/request"] != 1 || st.MTLSCalls["/token"] != 1 {
		t.Fatalf("calls over mutual TLS %v: want the push and the code exchange", st.MTLSCalls)
	}

	// The controls, with the client's own form: no certificate, or one the
	// provider's CA did not issue.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-refresh-token"}, "client_id": {idp.ClientID()}}
	pool := x509.NewCertPool()
	pool.AddCert(pki.cert)
	other := newTestPKI(t, dir, "other")
	otherCert, otherKey := other.issue(t, "stranger", "bff-client", false)
	pair, err := tls.LoadX509KeyPair(otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		endpoint string
		certs    []tls.Certificate
		want     string
	}{
		{"no certificate", idp.Issuer() + "/token", nil, "invalid_client"},
		{"a certificate from another CA, same subject", fmt.Sprintf("https://127.0.0.1:%d/token", mtlsPort), []tls.Certificate{pair}, "invalid_client"},
	} {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs}}}
		resp, err := hc.PostForm(tc.endpoint, form)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var body strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		body.Write(buf[:n])
		resp.Body.Close()
		if !strings.Contains(body.String(), tc.want) {
			t.Errorf("token request with %s: %d %s, want %s", tc.name, resp.StatusCode, body.String(), tc.want)
		}
	}

	refreshed := func(step string) {
		t.Helper()
		before := idp.Stats(t)
		time.Sleep(2500 * time.Millisecond) // past the 4 s token's 2 s refresh margin
		if r := b.Get(t, bff.URL()+"/api/x", csrf); r.Status != http.StatusOK {
			t.Fatalf("%s: /api/x: %d %s", step, r.Status, r.Body)
		}
		after := idp.Stats(t)
		if after.RefreshSuccess != before.RefreshSuccess+1 || after.MTLSCalls["/token"] != before.MTLSCalls["/token"]+1 {
			t.Fatalf("%s: refreshes %d -> %d, token calls over mTLS %d -> %d; want one more each", step,
				before.RefreshSuccess, after.RefreshSuccess, before.MTLSCalls["/token"], after.MTLSCalls["/token"])
		}
	}
	refreshed("refresh over mutual TLS")

	newCert, newKey := pki.issue(t, "client-next", "bff-client", false)
	os.Rename(newCert, cliCert)
	os.Rename(newKey, cliKey)
	hupAndWait(t, bff, "client certificate reloaded")
	refreshed("refresh with the new certificate")

	before := idp.Stats(t)
	if r := b.Post(t, bff.URL()+"/auth/logout", csrf, ""); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if after := idp.Stats(t); after.Revocations <= before.Revocations || after.MTLSCalls["/token/revocation"] <= before.MTLSCalls["/token/revocation"] {
		t.Errorf("logout: revocations %d -> %d, over mTLS %v: want the refresh token revoked over mutual TLS", before.Revocations, after.Revocations, after.MTLSCalls)
	}
}
