package oauth

// An in-process fake OpenID provider for the tests of this package: a
// discovery document each test can edit before Discover, a JWKS with one RSA
// key, and token and revocation endpoints whose answers each case controls.
// Every request those endpoints receive is recorded.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testClientID = "bff-client"
	// The secret has characters that RFC 6749 section 2.3.1 form-encodes
	// before HTTP Basic, and is long enough to be an HS256 key.
	testSecret     = "client-secret-0123456789abcdef:+/&XYZ"
	testCode       = "authz-code-5f2b9c1e7d3a"
	testRedirect   = "https://app.example.test/auth/callback"
	testPostLogout = "https://app.example.test/signed-out"
	testSubject    = "subject-alice-42"
	testSID        = "session-id-7f3e"
	testAccess     = "access-token-9f8e7d6c5b4a"
	testRefresh    = "refresh-token-1a2b3c4d5e6f"
	testKID        = "key-1"
)

// testNow is the fixed clock. It lies in the past so that a verification
// against the wall clock instead of Config.Now fails every success case.
var testNow = time.Date(2020, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// testKeys are the provider's signing key and a key it never published.
var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	return gen(), gen()
})

// reply is a canned HTTP answer.
type reply struct {
	status      int
	contentType string
	body        string
	header      http.Header // more response headers
}

func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return reply{status: status, contentType: "application/json", body: string(b)}
}

func (r reply) write(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.contentType != "" {
		w.Header().Set("Content-Type", r.contentType)
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	w.Write([]byte(r.body))
}

// request is what the token or revocation endpoint received.
type request struct {
	form       url.Values
	authHeader string
	user, pass string // HTTP Basic credentials, form-decoded
	basic      bool
	dpop       []string // DPoP header values
}

type fakeProvider struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string

	mu          sync.Mutex
	meta        map[string]any // the discovery document
	metaReply   *reply         // replaces the discovery document when set
	tokenReply  func(form url.Values) reply
	revokeReply reply
	tokenReqs   []request
	revokeReqs  []request
	issued      []string // every token string the provider handed out

	parReply func(form url.Values) reply // the PAR endpoint's answer (/par)
	parReqs  []request

	userInfoReply func() reply // the userinfo endpoint's answer; nil means 404
	userInfoAuth  []string     // the Authorization header of each userinfo request
}

func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	p := &fakeProvider{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /revoke", p.revoke)
	mux.HandleFunc("GET /userinfo", p.userInfo)
	mux.HandleFunc("POST /par", p.par)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.meta = map[string]any{
		"issuer":                                         p.issuer,
		"authorization_endpoint":                         p.issuer + "/authorize",
		"token_endpoint":                                 p.issuer + "/token",
		"jwks_uri":                                       p.issuer + "/jwks",
		"revocation_endpoint":                            p.issuer + "/revoke",
		"userinfo_endpoint":                              p.issuer + "/userinfo",
		"end_session_endpoint":                           p.issuer + "/logout?tenant=t1",
		"response_types_supported":                       []string{"code"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"token_endpoint_auth_methods_supported":          []string{AuthMethodBasic, AuthMethodPost},
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": true,
	}
	p.revokeReply = reply{status: http.StatusOK}
	return p
}

func (p *fakeProvider) discovery(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.metaReply != nil {
		p.metaReply.write(w)
		return
	}
	jsonReply(http.StatusOK, p.meta).write(w)
}

func (p *fakeProvider) jwks(w http.ResponseWriter, r *http.Request) {
	key, _ := testKeys()
	jsonReply(http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &key.PublicKey, KeyID: testKID, Algorithm: string(jose.RS256), Use: "sig",
	}}}).write(w)
}

func record(r *http.Request) request {
	r.ParseForm()
	req := request{form: r.PostForm, authHeader: r.Header.Get("Authorization"), dpop: r.Header.Values("DPoP")}
	if u, pw, ok := r.BasicAuth(); ok {
		req.basic = true
		req.user, _ = url.QueryUnescape(u)
		req.pass, _ = url.QueryUnescape(pw)
	}
	return req
}

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	req := record(r)
	p.mu.Lock()
	p.tokenReqs = append(p.tokenReqs, req)
	answer := p.tokenReply
	p.mu.Unlock()
	if answer == nil {
		jsonReply(http.StatusInternalServerError, map[string]string{"error": "server_error"}).write(w)
		return
	}
	answer(req.form).write(w)
}

func (p *fakeProvider) par(w http.ResponseWriter, r *http.Request) {
	req := record(r)
	p.mu.Lock()
	p.parReqs = append(p.parReqs, req)
	answer := p.parReply
	p.mu.Unlock()
	if answer == nil {
		jsonReply(http.StatusCreated, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 60}).write(w)
		return
	}
	answer(req.form).write(w)
}

func (p *fakeProvider) revoke(w http.ResponseWriter, r *http.Request) {
	req := record(r)
	p.mu.Lock()
	p.revokeReqs = append(p.revokeReqs, req)
	answer := p.revokeReply
	p.mu.Unlock()
	answer.write(w)
}

func (p *fakeProvider) userInfo(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.userInfoAuth = append(p.userInfoAuth, r.Header.Get("Authorization"))
	answer := p.userInfoReply
	p.mu.Unlock()
	if answer == nil {
		http.NotFound(w, r)
		return
	}
	answer().write(w)
}

// userInfoRequests returns the Authorization header of each userinfo request.
func (p *fakeProvider) userInfoRequests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.userInfoAuth...)
}

// tokenRequests returns what the token endpoint received so far.
func (p *fakeProvider) tokenRequests() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.tokenReqs...)
}

func (p *fakeProvider) revokeRequests() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.revokeReqs...)
}

// issue remembers s as a token value that must never appear in an error.
func (p *fakeProvider) issue(s string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issued = append(p.issued, s)
	return s
}

// secrets is every value that must never appear in an error message.
func (p *fakeProvider) secrets(extra ...string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := []string{testSecret, url.QueryEscape(testSecret), testCode, testAccess, testRefresh}
	s = append(s, p.issued...)
	for _, e := range extra {
		if e != "" {
			s = append(s, e)
		}
	}
	return s
}

// config is a valid Config for p.
func (p *fakeProvider) config() Config {
	return Config{
		Issuer:                p.issuer,
		ClientID:              testClientID,
		ClientSecret:          testSecret,
		RedirectURL:           testRedirect,
		PostLogoutRedirectURL: testPostLogout,
		HTTPClient:            p.srv.Client(),
		Now:                   fixedNow,
	}
}

// client returns a discovered Client for p; edit changes the config first.
func (p *fakeProvider) client(edit func(*Config)) *Client {
	p.t.Helper()
	cfg := p.config()
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		p.t.Fatalf("New: %v", err)
	}
	if err := c.Discover(p.t.Context()); err != nil {
		p.t.Fatalf("Discover: %v", err)
	}
	return c
}

// idClaims are valid ID-token claims for nonce at testNow.
func (p *fakeProvider) idClaims(nonce string) map[string]any {
	c := map[string]any{
		"iss": p.issuer,
		"sub": testSubject,
		"aud": testClientID,
		"exp": testNow.Add(time.Hour).Unix(),
		"iat": testNow.Unix(),
		"sid": testSID,
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

// sign signs claims with key under kid and alg, as a JWT.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jwk}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// signGood signs claims with the provider's published key.
func signGood(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, _ := testKeys()
	return sign(t, jose.RS256, key, testKID, claims)
}

// unsigned is an alg "none" JWT.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(b) + "."
}

// atHash is the at_hash of an access token for an RS256 ID token.
func atHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:len(h)/2])
}

// s256 is the PKCE S256 challenge of verifier (RFC 7636 section 4.2).
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// assertNoLeak fails when err's message contains one of secrets.
func assertNoLeak(t *testing.T, err error, secrets []string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error message %q contains the secret value %q", msg, s)
		}
	}
}

// checkErr checks err against want (errors.Is) and notWant.
func checkErr(t *testing.T, err, want error, notWant ...error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && err == nil:
		t.Fatalf("no error, want %v", want)
	case want != nil && !errors.Is(err, want) && want != errAny:
		t.Fatalf("error %q is not %q", err, want)
	}
	for _, n := range notWant {
		if errors.Is(err, n) {
			t.Errorf("error %q should not be %q", err, n)
		}
	}
}

// errAny stands for "some error" in a case table.
var errAny = errors.New("any error")
