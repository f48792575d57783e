package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Client authentication methods at the token and revocation endpoints
// (OpenID Connect Core 1.0 section 9).
const (
	AuthMethodAuto  = ""                    // pick from the provider's metadata; basic when it says nothing
	AuthMethodBasic = "client_secret_basic" // HTTP Basic with the form-encoded id and secret
	AuthMethodPost  = "client_secret_post"  // client_id and client_secret in the form body
	// AuthMethodPrivateKeyJWT (clientkeys.go): a JWT signed with ClientKeys.
)

// DefaultScopes are asked for when Config.Scopes is empty. offline_access asks
// for a refresh token, which transparent refresh needs.
var DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}

// signingAlgs is the allow-list for ID-token signatures: asymmetric only, so a
// token can never be "signed" with the client secret or with alg none.
var signingAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// Config configures a Client. The zero value of every optional field is safe.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery document
	// names it. Required.
	Issuer string
	// ClientID and ClientSecret are the BFF's confidential-client credentials.
	// ClientID is required; ClientSecret too unless AuthMethod is
	// AuthMethodPrivateKeyJWT, which ignores it.
	ClientID     string
	ClientSecret string
	// ClientKeys sign the client assertions of AuthMethodPrivateKeyJWT; required
	// with it. Replace them while running to rotate.
	ClientKeys *ClientKeys
	// ClientCert is the TLS client certificate of AuthMethodTLSClient and
	// AuthMethodSelfSignedTLSClient; required with them. With HTTPClient
	// nil the client presents it; a given HTTPClient must (TLSConfig).
	ClientCert *ClientCert
	// DPoP, when set, makes every token request carry a DPoP proof by the
	// binding key, so the provider binds the tokens to it (RFC 9449).
	DPoP *DPoPKeys
	// RedirectURL is the absolute callback URL registered at the provider.
	// Required.
	RedirectURL string
	// PostLogoutRedirectURL is where the provider sends the browser after
	// RP-initiated logout. Optional.
	PostLogoutRedirectURL string
	// Scopes to ask for; empty means DefaultScopes. Must include "openid".
	Scopes []string
	// AuthMethod is AuthMethodAuto, AuthMethodBasic, AuthMethodPost,
	// AuthMethodPrivateKeyJWT, AuthMethodTLSClient or
	// AuthMethodSelfSignedTLSClient.
	AuthMethod string
	// AuthParams are extra authorization-request parameters some providers
	// need (Auth0's "audience", RFC 8707 "resource"). They may not override
	// the protocol's own parameters.
	AuthParams map[string]string
	// PAR is PARAuto ("" or "auto"), PARRequired or PAROff: whether sign-in
	// pushes the authorization request (RFC 9126).
	PAR string
	// UserInfo fetches the userinfo claims once, at the callback, with the
	// new access token (OpenID Connect Core 5.3); their sub must be the ID
	// token's (5.3.4).
	UserInfo bool
	// HTTPClient talks to the provider; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock for token expiry checks; nil means time.Now.
	Now func() time.Time
}

// Client is an OpenID Connect relying party for one provider. It is safe for
// concurrent use. Until Discover succeeds, every method that needs the
// provider's metadata returns ErrNotReady.
type Client struct {
	cfg        Config
	httpClient *http.Client
	tokenHTTP  *http.Client           // httpClient, adding client assertions and DPoP proofs to token requests
	dpopNonce  atomic.Pointer[string] // the token endpoint's last DPoP-Nonce
	now        func() time.Time
	meta       atomic.Pointer[provider]
}

// provider is what discovery yields; immutable once stored.
type provider struct {
	oauth2         oauth2.Config
	op             *oidc.Provider // go-oidc's, for UserInfo
	verifier       *oidc.IDTokenVerifier
	logoutVerifier *oidc.IDTokenVerifier
	revokeURL      string
	endSession     string
	issParameter   bool   // authorization_response_iss_parameter_supported (RFC 9207)
	authMethod     string // the method in use: never AuthMethodAuto
	backchannel    bool   // backchannel_logout_supported
	parURL         string // pushed_authorization_request_endpoint, when AuthURL pushes
	parOffered     bool
	dpopOffered    bool // dpop_signing_alg_values_supported is advertised
	jwksURL        string
}

// metadata is the subset of the discovery document that go-oidc does not expose.
type metadata struct {
	RevocationEndpoint  string   `json:"revocation_endpoint"`
	EndSessionEndpoint  string   `json:"end_session_endpoint"`
	IssParameter        bool     `json:"authorization_response_iss_parameter_supported"`
	TokenAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
	TokenAuthAlgs       []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethod []string `json:"code_challenge_methods_supported"`
	SigningAlgs         []string `json:"id_token_signing_alg_values_supported"`
	Backchannel         bool     `json:"backchannel_logout_supported"`
	PAREndpoint         string   `json:"pushed_authorization_request_endpoint"`
	RequirePAR          bool     `json:"require_pushed_authorization_requests"`
	DPoPAlgs            []string `json:"dpop_signing_alg_values_supported"`
	JWKSURL             string   `json:"jwks_uri"`
	MTLSAliases         struct {
		TokenEndpoint      string `json:"token_endpoint"`
		PAREndpoint        string `json:"pushed_authorization_request_endpoint"`
		RevocationEndpoint string `json:"revocation_endpoint"`
	} `json:"mtls_endpoint_aliases"`
}

// New validates cfg and returns a Client. It does not contact the provider:
// call Discover (and retry it until it succeeds).
func New(cfg Config) (*Client, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oauth: issuer is required")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("oauth: issuer must be an absolute URL")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("oauth: client id is required")
	}
	switch {
	case cfg.AuthMethod == AuthMethodPrivateKeyJWT:
		if cfg.ClientKeys == nil {
			return nil, errors.New("oauth: private_key_jwt needs the client's keys")
		}
	case mtls(cfg.AuthMethod):
		if cfg.ClientCert == nil {
			return nil, errNoClientCert
		}
	case cfg.ClientSecret == "":
		return nil, errors.New("oauth: client secret is required")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("oauth: redirect URL must be an absolute URL")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		return nil, errors.New(`oauth: scopes must include "openid"`)
	}
	switch cfg.AuthMethod {
	case AuthMethodAuto, AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT, AuthMethodTLSClient, AuthMethodSelfSignedTLSClient:
	default:
		return nil, fmt.Errorf("oauth: unknown client auth method %q", cfg.AuthMethod)
	}
	switch cfg.PAR {
	case PARAuto, "auto", PARRequired, PAROff:
	default:
		return nil, fmt.Errorf("oauth: unknown PAR mode %q (auto, required or off)", cfg.PAR)
	}
	if cfg.PAR == "auto" {
		cfg.PAR = PARAuto
	}
	for k := range cfg.AuthParams {
		if ProtocolParam(k) {
			return nil, fmt.Errorf("oauth: auth parameter %q is set by the protocol", k)
		}
	}
	c := &Client{cfg: cfg, httpClient: cfg.HTTPClient, now: cfg.Now}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: 10 * time.Second}
		if cfg.ClientCert != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = cfg.ClientCert.TLSConfig()
			c.httpClient.Transport = t
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	tc := *c.httpClient
	tc.Transport = &tokenTransport{c: c, base: c.httpClient.Transport}
	c.tokenHTTP = &tc
	return c, nil
}

// Ready reports whether discovery has succeeded.
func (c *Client) Ready() bool { return c.meta.Load() != nil }

// Issuer returns the configured issuer URL.
func (c *Client) Issuer() string { return c.cfg.Issuer }

// Discover fetches the provider's discovery document and keys URL. It can be
// called again; the last success wins.
func (c *Client) Discover(ctx context.Context) error {
	ctx = oidc.ClientContext(ctx, c.httpClient)
	op, err := oidc.NewProvider(ctx, c.cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return fmt.Errorf("oauth: discovery: %w", err)
		}
		return fmt.Errorf("%w: discovery: %w", ErrProvider, err)
	}
	var md metadata
	if err := op.Claims(&md); err != nil {
		return fmt.Errorf("%w: discovery document: %w", ErrInvalidResponse, err)
	}
	if len(md.CodeChallengeMethod) > 0 && !slices.Contains(md.CodeChallengeMethod, "S256") {
		return fmt.Errorf("oauth: provider does not support PKCE S256")
	}
	algs := signingAlgs
	if len(md.SigningAlgs) > 0 {
		algs = nil
		for _, a := range md.SigningAlgs {
			if slices.Contains(signingAlgs, a) {
				algs = append(algs, a)
			}
		}
		if len(algs) == 0 {
			return fmt.Errorf("oauth: provider signs ID tokens with no allowed algorithm")
		}
	}
	parURL, err := parEndpoint(c.cfg.PAR, md.PAREndpoint, md.RequirePAR)
	if err != nil {
		return err
	}
	method, err := c.authMethod(md)
	if err != nil {
		return err
	}
	if k := c.cfg.DPoP; k != nil && len(md.DPoPAlgs) > 0 && !slices.Contains(md.DPoPAlgs, k.Alg()) {
		return fmt.Errorf("oauth: the provider takes DPoP proofs signed with %s, not %s",
			strings.Join(md.DPoPAlgs, ", "), k.Alg())
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	secret := c.cfg.ClientSecret
	revokeURL := md.RevocationEndpoint
	switch {
	case method == AuthMethodBasic:
		endpoint.AuthStyle = oauth2.AuthStyleInHeader
	case method == AuthMethodPrivateKeyJWT:
		secret = "" // x/oauth2 then sends client_id alone; tokenTransport adds the assertion
	case mtls(method):
		secret = "" // client_id alone: the TLS handshake authenticates
		a := md.MTLSAliases
		endpoint.TokenURL = cmp.Or(a.TokenEndpoint, endpoint.TokenURL)
		revokeURL = cmp.Or(a.RevocationEndpoint, revokeURL)
		if parURL != "" {
			parURL = cmp.Or(a.PAREndpoint, parURL)
		}
	}
	p := &provider{
		oauth2: oauth2.Config{
			ClientID:     c.cfg.ClientID,
			ClientSecret: secret,
			Endpoint:     endpoint,
			RedirectURL:  c.cfg.RedirectURL,
			Scopes:       c.cfg.Scopes,
		},
		verifier: op.Verifier(&oidc.Config{
			ClientID:             c.cfg.ClientID,
			SupportedSigningAlgs: algs,
			Now:                  c.now,
		}),
		logoutVerifier: newLogoutVerifier(op, c.cfg.ClientID, algs, c.now),
		op:             op,
		revokeURL:      revokeURL,
		endSession:     md.EndSessionEndpoint,
		issParameter:   md.IssParameter,
		authMethod:     method,
		backchannel:    md.Backchannel,
		parURL:         parURL,
		parOffered:     md.PAREndpoint != "",
		dpopOffered:    len(md.DPoPAlgs) > 0,
		jwksURL:        md.JWKSURL,
	}
	c.meta.Store(p)
	return nil
}

// Capabilities is what the provider's discovery document offers the BFF,
// for `bff check` and the start-up log.
type Capabilities struct {
	TokenAuthMethod   string // how the BFF authenticates: one of the AuthMethod constants, never AuthMethodAuto
	IssParameter      bool   // RFC 9207 iss in authorization responses
	EndSession        bool   // RP-initiated logout (end_session_endpoint)
	Revocation        bool   // RFC 7009 token revocation
	UserInfo          bool   // userinfo_endpoint
	BackchannelLogout bool   // backchannel_logout_supported
	PAR               bool   // sign-in pushes its authorization requests (RFC 9126)
	PAROffered        bool   // the provider advertises a PAR endpoint (used or not)
	DPoP              bool   // token requests carry DPoP proofs (oidc.dpop_key_file)
	DPoPOffered       bool   // the provider advertises DPoP (dpop_signing_alg_values_supported)
}

// Capabilities reports what discovery found; ErrNotReady before it ran.
func (c *Client) Capabilities() (Capabilities, error) {
	p, err := c.provider()
	if err != nil {
		return Capabilities{}, err
	}
	return Capabilities{
		TokenAuthMethod:   p.authMethod,
		IssParameter:      p.issParameter,
		EndSession:        p.endSession != "",
		Revocation:        p.revokeURL != "",
		UserInfo:          p.op.UserInfoEndpoint() != "",
		BackchannelLogout: p.backchannel,
		PAR:               p.parURL != "",
		PAROffered:        p.parOffered,
		DPoP:              c.cfg.DPoP != nil,
		DPoPOffered:       p.dpopOffered,
	}, nil
}

func (c *Client) provider() (*provider, error) {
	p := c.meta.Load()
	if p == nil {
		return nil, ErrNotReady
	}
	return p, nil
}

// authMethod is how the client authenticates at this provider: the
// configured method, or for AuthMethodAuto basic unless the provider lists
// methods without it. private_key_jwt needs the provider to take it (when
// it says) with the signing key's algorithm.
func (c *Client) authMethod(md metadata) (string, error) {
	switch c.cfg.AuthMethod {
	case AuthMethodAuto:
		if len(md.TokenAuthMethods) == 0 || slices.Contains(md.TokenAuthMethods, AuthMethodBasic) {
			return AuthMethodBasic, nil
		}
		return AuthMethodPost, nil
	case AuthMethodTLSClient, AuthMethodSelfSignedTLSClient:
		if len(md.TokenAuthMethods) > 0 && !slices.Contains(md.TokenAuthMethods, c.cfg.AuthMethod) {
			return "", fmt.Errorf("oauth: the provider does not offer %s client authentication", c.cfg.AuthMethod)
		}
	case AuthMethodPrivateKeyJWT:
		if len(md.TokenAuthMethods) > 0 && !slices.Contains(md.TokenAuthMethods, AuthMethodPrivateKeyJWT) {
			return "", errors.New("oauth: the provider does not offer private_key_jwt client authentication")
		}
		if _, alg := c.cfg.ClientKeys.Signing(); len(md.TokenAuthAlgs) > 0 && !slices.Contains(md.TokenAuthAlgs, alg) {
			return "", fmt.Errorf("oauth: the provider takes client assertions signed with %s, not %s",
				strings.Join(md.TokenAuthAlgs, ", "), alg)
		}
	}
	return c.cfg.AuthMethod, nil
}

// ctx carries the client's token-endpoint HTTP client to x/oauth2, and
// where its transport records the DPoP key the request proved.
func (c *Client) ctx(ctx context.Context) (context.Context, *dpopUse) {
	u := &dpopUse{}
	ctx = context.WithValue(ctx, dpopUseKey{}, u)
	return context.WithValue(ctx, oauth2.HTTPClient, c.tokenHTTP), u
}

// dpopUse is the jkt of the key whose proof a token request carried.
type dpopUse struct{ jkt string }

type dpopUseKey struct{}

// tokenTransport adds what x/oauth2 cannot to its posts to the token
// endpoint (it has no hook on refresh): the client assertion of
// private_key_jwt and a DPoP proof, answering one DPoP-Nonce challenge.
// tokenHTTP, whose transport it is, only carries those posts. With neither
// configured every request passes unchanged.
type tokenTransport struct {
	c    *Client
	base http.RoundTripper
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	p, dpop := t.c.meta.Load(), t.c.cfg.DPoP
	assert := p != nil && p.authMethod == AuthMethodPrivateKeyJWT
	if (!assert && dpop == nil) || req.Method != http.MethodPost || req.Body == nil {
		return base.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("oauth: token request form: %w", err)
	}
	send := func(nonce string) (*http.Response, error) {
		f := form
		if assert {
			f = maps.Clone(form)
			if err := t.c.authenticate(p, f); err != nil {
				return nil, err
			}
		}
		enc := f.Encode()
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(strings.NewReader(enc))
		r.ContentLength = int64(len(enc))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
		if dpop != nil {
			jkt := dpop.Binding()
			proof, err := dpop.Proof(jkt, http.MethodPost, req.URL, "", nonce, t.c.now())
			if err != nil {
				return nil, err
			}
			r.Header.Set("DPoP", proof)
			if u, _ := req.Context().Value(dpopUseKey{}).(*dpopUse); u != nil {
				u.jkt = jkt
			}
		}
		return base.RoundTrip(r)
	}
	var nonce string
	if n := t.c.dpopNonce.Load(); n != nil {
		nonce = *n
	}
	resp, err := send(nonce)
	if err != nil || dpop == nil {
		return resp, err
	}
	if n, ok := tokenNonceChallenge(resp); ok {
		// RFC 9449 section 8: retry once with the nonce asked for.
		t.c.dpopNonce.Store(&n)
		resp.Body.Close()
		resp, err = send(n)
		if err != nil {
			return resp, err
		}
	}
	if n := resp.Header.Get("DPoP-Nonce"); ValidNonce(n) {
		t.c.dpopNonce.Store(&n)
	}
	return resp, nil
}

// SigningKeys fetches the provider's JWKS (jwks_uri) once and returns how
// many keys could verify an ID token (public, for signatures, of an allowed
// algorithm or none named) and the algorithms they name. It is for `bff
// check -online`: a provider whose keys cannot be fetched, or hold none the
// BFF accepts, fails every sign-in.
func (c *Client) SigningKeys(ctx context.Context) (int, []string, error) {
	p, err := c.provider()
	if err != nil {
		return 0, nil, err
	}
	if p.jwksURL == "" {
		return 0, nil, fmt.Errorf("%w: discovery names no jwks_uri", ErrInvalidResponse)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.jwksURL, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("oauth: jwks_uri: %w", err)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: jwks_uri: %w", ErrProvider, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("%w: jwks_uri answered %d", ErrProvider, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return 0, nil, fmt.Errorf("%w: jwks_uri: not a JWK set", ErrInvalidResponse)
	}
	n, algs := 0, []string{}
	for _, k := range set.Keys {
		if !k.IsPublic() || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && !slices.Contains(signingAlgs, k.Algorithm)) {
			continue
		}
		n++
		if k.Algorithm != "" && !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: jwks_uri holds no key that can verify an ID token", ErrInvalidResponse)
	}
	return n, algs, nil
}
