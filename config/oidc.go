package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// oidcConfig validates the oidc section and turns it into the client's
// oauth.Config (RedirectURL is the server's to derive). It reads the
// secret, key and certificate files the section names.
func (fc *fileConfig) oidcConfig() (oauth.Config, error) {
	o := fc.OIDC
	if o.Issuer == "" {
		return oauth.Config{}, &configError{"oidc.issuer", "required"}
	}
	if err := validIssuer(o.Issuer); err != nil {
		return oauth.Config{}, err
	}
	if o.ClientID == "" {
		return oauth.Config{}, &configError{"oidc.client_id", "required"}
	}
	secret, err := secretOrFile("oidc.client_secret", o.ClientSecret, o.ClientSecretFile)
	if err != nil {
		return oauth.Config{}, err
	}
	clientKeys, err := loadClientKeys(o.AuthMethod, o.ClientKeyFile)
	if err != nil {
		return oauth.Config{}, err
	}
	clientCert, err := loadClientCert(o.AuthMethod, o.TLSClientCertFile, o.TLSClientKeyFile)
	if err != nil {
		return oauth.Config{}, err
	}
	var dpopKeys *oauth.DPoPKeys
	if o.DPoPKeyFile != "" {
		if dpopKeys, err = parseKeyFile("oidc.dpop_key_file", o.DPoPKeyFile, oauth.ParseDPoPKeys, "oauth: DPoP keys: "); err != nil {
			return oauth.Config{}, err
		}
	}
	if secret == "" && clientKeys == nil && clientCert == nil {
		return oauth.Config{}, &configError{"oidc.client_secret", "required (or client_secret_file, or BFF_OIDC_CLIENT_SECRET), or auth_method private_key_jwt with client_key_file, or tls_client_auth with tls_client_cert_file"}
	}
	oc := oauth.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, AuthMethod: o.AuthMethod, ClientKeys: clientKeys, DPoP: dpopKeys, ClientCert: clientCert,
		Scopes: o.Scopes, AuthParams: o.AuthParams, PostLogoutRedirectURL: o.PostLogoutRedirectURL,
		UserInfo: o.UserInfo, PAR: o.PAR,
	}
	switch o.PAR {
	case "", "auto", oauth.PARRequired, oauth.PAROff:
	default:
		return oauth.Config{}, &configError{"oidc.par", fmt.Sprintf("%q: want auto, required or off", o.PAR)}
	}
	if _, err := oauth.New(oauth.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, ClientKeys: clientKeys, ClientCert: clientCert, RedirectURL: "https://x/", Scopes: o.Scopes, AuthMethod: o.AuthMethod, AuthParams: o.AuthParams}); err != nil {
		return oauth.Config{}, &configError{"oidc", strings.TrimPrefix(err.Error(), "oauth: ")}
	}
	return oc, nil
}

// validIssuer checks oidc.issuer before discovery would: an https URL with
// a host (http only on loopback, like public_url: discovery and the keys
// that sign ID tokens must not travel in clear), no query or fragment.
func validIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return &configError{"oidc.issuer", fmt.Sprintf("%q: want an absolute https URL, e.g. https://idp.example.com", issuer)}
	case u.Scheme == "http" && !proxy.IsLoopback(u.Hostname()):
		return &configError{"oidc.issuer", fmt.Sprintf("%q: must be https (http only on loopback): discovery and the ID-token signing keys would travel in clear", issuer)}
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return &configError{"oidc.issuer", fmt.Sprintf("%q: an issuer has no query, fragment or credentials", issuer)}
	}
	return nil
}

// loadClientKeys reads oidc.client_key_file, which private_key_jwt needs
// and no other method uses; nil without one.
func loadClientKeys(method, file string) (*oauth.ClientKeys, error) {
	switch {
	case method == oauth.AuthMethodPrivateKeyJWT && file == "":
		return nil, &configError{"oidc.client_key_file", "required with auth_method private_key_jwt (a JWK set of private keys; bff keygen makes one)"}
	case method != oauth.AuthMethodPrivateKeyJWT && file != "":
		return nil, &configError{"oidc.client_key_file", "only used with auth_method private_key_jwt"}
	case file == "":
		return nil, nil
	}
	return parseKeyFile("oidc.client_key_file", file, oauth.ParseClientKeys, "oauth: client keys: ")
}

// parseKeyFile reads a JWK set file with parse; errors name field, parse's
// without its prefix.
func parseKeyFile[T any](field, file string, parse func([]byte) (T, error), prefix string) (T, error) {
	var zero T
	b, err := ReadNamedFile(file)
	if err != nil {
		return zero, &configError{field, err.Error()}
	}
	keys, err := parse(b)
	if err != nil {
		return zero, &configError{field, strings.TrimPrefix(err.Error(), prefix)}
	}
	return keys, nil
}

// loadClientCert reads oidc.tls_client_cert_file and tls_client_key_file,
// which the mTLS methods need and no other method uses; nil without them.
func loadClientCert(method, certFile, keyFile string) (*oauth.ClientCert, error) {
	mtls := method == oauth.AuthMethodTLSClient || method == oauth.AuthMethodSelfSignedTLSClient
	switch {
	case mtls && (certFile == "" || keyFile == ""):
		return nil, &configError{"oidc.tls_client_cert_file", "tls_client_cert_file and tls_client_key_file are required with auth_method " + method}
	case !mtls && (certFile != "" || keyFile != ""):
		return nil, &configError{"oidc.tls_client_cert_file", "only used with auth_method tls_client_auth or self_signed_tls_client_auth"}
	case !mtls:
		return nil, nil
	}
	certPEM, err := ReadNamedFile(certFile)
	if err != nil {
		return nil, &configError{"oidc.tls_client_cert_file", err.Error()}
	}
	keyPEM, err := ReadNamedFile(keyFile)
	if err != nil {
		return nil, &configError{"oidc.tls_client_key_file", err.Error()}
	}
	c, err := oauth.ParseClientCert(certPEM, keyPEM, time.Now())
	if err != nil {
		return nil, &configError{"oidc.tls_client_cert_file", strings.TrimPrefix(err.Error(), "oauth: ")}
	}
	return c, nil
}
