package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// IDPOptions configures one run of the test OpenID provider (idp/server.js).
// The zero value plus RedirectURIs is a valid configuration.
type IDPOptions struct {
	// ClientID and ClientSecret of the one confidential client; defaults
	// "bff" and a random-looking fixed test secret.
	ClientID     string
	ClientSecret string
	// TokenAuthMethod is client_secret_basic (default), client_secret_post
	// or private_key_jwt; with private_key_jwt the client has no secret,
	// ClientJWKSURI is where the provider fetches its keys and ClientKey
	// signs the test's own client requests (introspection, revocation).
	TokenAuthMethod string
	ClientJWKSURI   string
	ClientKey       *jose.JSONWebKey
	// RedirectURIs registered for the client; at least one.
	RedirectURIs []string
	// PostLogoutRedirectURIs registered for RP-initiated logout.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, receives back-channel logout tokens.
	BackchannelLogoutURI string
	// AccessTTL is the access-token lifetime; zero means 60 s. Whole seconds.
	AccessTTL time.Duration
	// NoRotation turns refresh-token rotation off (it is on by default).
	NoRotation bool
	// Audience of the JWT access tokens; default "http://api.test".
	Audience string
	// Issuer overrides the issuer URL (default http://127.0.0.1:PORT), for
	// a provider behind a tcpGate; Port is then the port it listens on.
	Issuer string
	Port   int
	// UserInfoClaims: profile and email claims only from userinfo.
	UserInfoClaims bool
	// PAR is "offered" (default), "required" or "disabled": pushed
	// authorization requests (RFC 9126).
	PAR string
	// Resources are more RFC 8707 resource indicators the client may get
	// tokens for (token exchange, client credentials); aud = the resource.
	Resources []string
	// DPoP is "optional" (default: a proof gets a bound token), "required"
	// (dpop_bound_access_tokens) or "nonce" (required, with DPoP-Nonce).
	DPoP string
	// MTLS, when Port is set, adds the provider's https listener for
	// mutual TLS (RFC 8705) as its mtls_endpoint_aliases; with
	// TokenAuthMethod tls_client_auth the client is registered with
	// SubjectDN.
	MTLS struct {
		Port                int
		Cert, Key, ClientCA string // PEM files: the listener's certificate and key, the CA of client certificates
		SubjectDN           string
	}
	// FAPI "2.0" runs oidc-provider's FAPI 2.0 profile with PAR required,
	// DPoP with nonces and PS256 ID tokens; needs private_key_jwt.
	FAPI string
}

// DefaultAudience is the access-token audience the provider uses by default.
const DefaultAudience = "http://api.test"

// defaultClientSecret is the test client's secret. It is long and unusual so
// that a search for it in logs cannot match anything by accident.
const defaultClientSecret = "e2e-client-secret-9f3b2c71d4a84e6b"

// IDP is a running test OpenID provider.
type IDP struct {
	opts   IDPOptions
	issuer string
	stderr *syncBuffer
	client *http.Client
}

// IDPStats mirrors the JSON of GET /__test/stats.
type IDPStats struct {
	TokenCalls           map[string]int `json:"token_calls"`  // token-endpoint calls by grant_type
	TokenErrors          map[string]int `json:"token_errors"` // failed token-endpoint calls by grant_type
	RefreshSuccess       int            `json:"refresh_success"`
	Revocations          int            `json:"revocations"` // revocation calls that destroyed a token
	RevocationCalls      int            `json:"revocation_calls"`
	Introspections       int            `json:"introspections"`
	IntrospectionsActive int            `json:"introspections_active"`
	GrantsRevoked        int            `json:"grants_revoked"`
	EndSessions          int            `json:"end_sessions"`
	BackchannelSuccess   int            `json:"backchannel_success"`
	BackchannelError     int            `json:"backchannel_error"`
	// ClientAssertions counts the requests the provider authenticated with a
	// client assertion, by the kid that signed it.
	ClientAssertions map[string]int `json:"client_assertions"`
	// Exchanges and ClientCredentials count tokens issued by token
	// exchange and by client credentials, by resource.
	Exchanges         map[string]int `json:"exchanges"`
	ClientCredentials map[string]int `json:"client_credentials"`
	// MTLSCalls counts successful calls on the mutual-TLS listener that
	// came with a client certificate, by path.
	MTLSCalls map[string]int `json:"mtls_calls"`
}

// startIDP runs `node server.js` on a free loopback port, waits for its
// READY line and stops its process group when the test ends.
func startIDP(t testing.TB, opts IDPOptions) *IDP {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "bff"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = defaultClientSecret
	}
	if opts.TokenAuthMethod == "" {
		opts.TokenAuthMethod = "client_secret_basic"
	}
	if opts.AccessTTL == 0 {
		opts.AccessTTL = 60 * time.Second
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if len(opts.RedirectURIs) == 0 {
		t.Fatal("e2e: startIDP needs at least one redirect URI")
	}
	port := opts.Port
	if port == 0 {
		port = freePort(t)
	}

	cmd := exec.Command("node", "server.js")
	cmd.Dir = idpDir
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"CLIENT_ID="+opts.ClientID,
		"CLIENT_SECRET="+opts.ClientSecret,
		"TOKEN_AUTH_METHOD="+opts.TokenAuthMethod,
		"REDIRECT_URIS="+strings.Join(opts.RedirectURIs, ","),
		"POST_LOGOUT_REDIRECT_URIS="+strings.Join(opts.PostLogoutRedirectURIs, ","),
		"BACKCHANNEL_LOGOUT_URI="+opts.BackchannelLogoutURI,
		"ACCESS_TOKEN_TTL="+strconv.Itoa(int(opts.AccessTTL/time.Second)),
		"ROTATE_REFRESH="+strconv.FormatBool(!opts.NoRotation),
		"RESOURCE="+opts.Audience,
		"ISSUER="+opts.Issuer,
		"USERINFO_CLAIMS="+strconv.FormatBool(opts.UserInfoClaims),
		"PAR="+opts.PAR,
		"CLIENT_JWKS_URI="+opts.ClientJWKSURI,
		"DPOP="+opts.DPoP,
		"RESOURCES="+strings.Join(opts.Resources, ","),
		"MTLS_PORT="+strconv.Itoa(opts.MTLS.Port),
		"MTLS_CERT="+opts.MTLS.Cert,
		"MTLS_KEY="+opts.MTLS.Key,
		"MTLS_CA="+opts.MTLS.ClientCA,
		"TLS_CLIENT_SUBJECT_DN="+opts.MTLS.SubjectDN,
		"FAPI="+opts.FAPI,
	)
	_, issuer, stderr := startReady(t, "idp", cmd)
	idp := &IDP{opts: opts, issuer: issuer, stderr: stderr, client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("idp stderr:\n%s", stderr.String())
		}
	})
	return idp
}

// Issuer is the provider's issuer URL, http://127.0.0.1:PORT.
func (p *IDP) Issuer() string { return p.issuer }

// ClientID and ClientSecret of the configured client.
func (p *IDP) ClientID() string     { return p.opts.ClientID }
func (p *IDP) ClientSecret() string { return p.opts.ClientSecret }

// Endpoint URLs (oidc-provider's default routes).
func (p *IDP) AuthURL() string          { return p.issuer + "/auth" }
func (p *IDP) TokenURL() string         { return p.issuer + "/token" }
func (p *IDP) EndSessionURL() string    { return p.issuer + "/session/end" }
func (p *IDP) RevocationURL() string    { return p.issuer + "/token/revocation" }
func (p *IDP) IntrospectionURL() string { return p.issuer + "/token/introspection" }

// Stderr is everything the provider printed on stderr so far.
func (p *IDP) Stderr() string { return p.stderr.String() }

// Stats reads the provider's test counters.
func (p *IDP) Stats(t testing.TB) IDPStats {
	t.Helper()
	resp, err := p.client.Get(p.issuer + "/__test/stats")
	if err != nil {
		t.Fatalf("e2e: idp stats: %v", err)
	}
	defer resp.Body.Close()
	var s IDPStats
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("e2e: idp stats: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("e2e: idp stats: %v", err)
	}
	return s
}

// IssuedTokens is one successful token-endpoint answer as the provider
// recorded it. They are real tokens: compare with them, never log them.
type IssuedTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// Issued returns every token set the provider's token endpoint handed out,
// oldest first (Reset does not clear it).
func (p *IDP) Issued(t testing.TB) []IssuedTokens {
	t.Helper()
	resp, err := p.client.Get(p.issuer + "/__test/tokens")
	if err != nil {
		t.Fatalf("e2e: idp tokens: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("e2e: idp tokens: status %d", resp.StatusCode)
	}
	var out []IssuedTokens
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("e2e: idp tokens: decode failed") // the body holds tokens: keep it out of the message
	}
	return out
}

// Reset zeroes the provider's test counters.
func (p *IDP) Reset(t testing.TB) {
	t.Helper()
	resp, err := p.client.Post(p.issuer+"/__test/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("e2e: idp reset: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("e2e: idp reset: status %d", resp.StatusCode)
	}
}

// clientPost posts form to the provider with the client's authentication.
func (p *IDP) clientPost(endpoint string, form url.Values) (int, []byte, error) {
	if p.opts.TokenAuthMethod == "private_key_jwt" {
		return p.AssertionPost(endpoint, form, p.opts.ClientKey)
	}
	if p.opts.TokenAuthMethod == "client_secret_post" {
		form.Set("client_id", p.opts.ClientID)
		form.Set("client_secret", p.opts.ClientSecret)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.opts.TokenAuthMethod != "client_secret_post" {
		// RFC 6749 section 2.3.1: form-encode before base64.
		req.SetBasicAuth(url.QueryEscape(p.opts.ClientID), url.QueryEscape(p.opts.ClientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// AssertionPost posts form to the provider authenticated with a client
// assertion (RFC 7523) that key signs: iss and sub the client id, aud the
// issuer, a fresh jti, a minute's life.
func (p *IDP) AssertionPost(endpoint string, form url.Values, key *jose.JSONWebKey) (int, []byte, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, nil)
	if err != nil {
		return 0, nil, err
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	now := time.Now()
	a, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: p.opts.ClientID, Subject: p.opts.ClientID, Audience: jwt.Audience{p.issuer},
		ID: hex.EncodeToString(jti), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		return 0, nil, err
	}
	form.Set("client_id", p.opts.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", a)
	resp, err := p.client.PostForm(endpoint, form)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// Introspect asks the provider (RFC 7662) whether token is active.
func (p *IDP) Introspect(t testing.TB, token string) bool {
	t.Helper()
	status, body, err := p.clientPost(p.IntrospectionURL(), url.Values{"token": {token}})
	if err != nil {
		t.Fatalf("e2e: introspect: %v", err)
	}
	if status != http.StatusOK {
		t.Fatalf("e2e: introspect: status %d: %s", status, body)
	}
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("e2e: introspect: %v", err)
	}
	return r.Active
}

// Revoke revokes token at the provider (RFC 7009).
func (p *IDP) Revoke(t testing.TB, token string) {
	t.Helper()
	status, body, err := p.clientPost(p.RevocationURL(), url.Values{"token": {token}})
	if err != nil {
		t.Fatalf("e2e: revoke: %v", err)
	}
	if status != http.StatusOK {
		t.Fatalf("e2e: revoke: status %d: %s", status, body)
	}
}

// TokenError is an OAuth error answer from the token endpoint.
type TokenError struct {
	Status int
	Code   string // the "error" member, e.g. invalid_grant
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("e2e: token endpoint: status %d, error %q", e.Status, e.Code)
}

// RefreshDirect makes one raw refresh_token grant with the client's
// credentials and returns nil when the provider issued tokens. With rotation
// on, a successful call consumes refreshToken, and replaying a consumed
// token makes the provider revoke the whole grant (reuse detection): use it
// to prove a token is dead, not to probe a live one.
func (p *IDP) RefreshDirect(t testing.TB, refreshToken string) error {
	t.Helper()
	status, body, err := p.clientPost(p.TokenURL(), url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
	if err != nil {
		t.Fatalf("e2e: refresh: %v", err)
	}
	if status == http.StatusOK {
		return nil
	}
	var r struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &r)
	return &TokenError{Status: status, Code: r.Error}
}
