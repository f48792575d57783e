package oauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Mutual-TLS client authentication (RFC 8705 section 2): the BFF proves
// itself with the private key of an X.509 certificate during the TLS
// handshake with the provider; the form carries only client_id. With
// tls_client_auth the provider checks the certificate chains to a CA it
// trusts and names the registered subject; with self_signed_tls_client_auth
// it matches the certificate registered for the client. The BFF behaves the
// same for both. Token, PAR and revocation requests go to the provider's
// mtls_endpoint_aliases when it has them (RFC 8705 section 5).
const (
	AuthMethodTLSClient           = "tls_client_auth"
	AuthMethodSelfSignedTLSClient = "self_signed_tls_client_auth"
)

// mtls reports whether method authenticates with the TLS client certificate.
func mtls(method string) bool {
	return method == AuthMethodTLSClient || method == AuthMethodSelfSignedTLSClient
}

// ClientCert is the BFF's TLS client certificate for the provider. Replace
// swaps it while running; connections made afterwards present the new one.
// Safe for concurrent use.
type ClientCert struct {
	cert atomic.Pointer[tls.Certificate]
}

// ParseClientCert reads a PEM certificate (chain) and its PEM private key.
// It refuses a pair that does not match and a certificate outside its
// validity period at now.
func ParseClientCert(certPEM, keyPEM []byte, now time.Time) (*ClientCert, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("oauth: client certificate: %w", err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("oauth: client certificate: %w", err)
		}
	}
	if now.Before(pair.Leaf.NotBefore) || now.After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("oauth: client certificate %q is valid from %s to %s, not now",
			pair.Leaf.Subject, pair.Leaf.NotBefore.UTC().Format(time.RFC3339), pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	c := &ClientCert{}
	c.cert.Store(&pair)
	return c, nil
}

// Replace makes other's certificate the current one.
func (c *ClientCert) Replace(other *ClientCert) { c.cert.Store(other.cert.Load()) }

// Leaf is the current certificate.
func (c *ClientCert) Leaf() *x509.Certificate { return c.cert.Load().Leaf }

// GetClientCertificate is for tls.Config: the current certificate,
// whatever the server asks for (it decides whether it will do).
func (c *ClientCert) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

// TLSConfig is a client TLS configuration presenting c.
func (c *ClientCert) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetClientCertificate: c.GetClientCertificate}
}

var errNoClientCert = errors.New("oauth: tls_client_auth and self_signed_tls_client_auth need the client certificate")
