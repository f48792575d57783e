package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestNewFlow(t *testing.T) {
	verifier := regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`) // RFC 7636 section 4.1
	seen := map[string]bool{}
	for range 50 {
		f := NewFlow()
		for name, v := range map[string]string{"state": f.State, "nonce": f.Nonce, "verifier": f.Verifier} {
			if len(v) < 43 {
				t.Errorf("%s %q is shorter than 256 bits", name, v)
			}
			if seen[v] {
				t.Fatalf("%s %q repeated", name, v)
			}
			seen[v] = true
		}
		if !verifier.MatchString(f.Verifier) {
			t.Errorf("verifier %q is not an RFC 7636 code verifier", f.Verifier)
		}
	}
}

func TestAuthURL(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Config)
		scope  string
		extra  map[string]string
		absent []string
	}{
		{name: "defaults", scope: "openid profile email offline_access"},
		{
			name: "scopes and extra params",
			edit: func(c *Config) {
				c.Scopes = []string{"openid", "api:read"}
				c.AuthParams = map[string]string{"audience": "https://api", "prompt": "login"}
			},
			scope: "openid api:read",
			extra: map[string]string{"audience": "https://api", "prompt": "login"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			c := p.client(tc.edit)
			f := NewFlow()
			raw, err := c.AuthURL(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Scheme + "://" + u.Host + u.Path; got != p.issuer+"/authorize" {
				t.Errorf("endpoint %q, want %q", got, p.issuer+"/authorize")
			}
			q := u.Query()
			want := map[string]string{
				"response_type":         "code",
				"client_id":             testClientID,
				"redirect_uri":          testRedirect,
				"scope":                 tc.scope,
				"state":                 f.State,
				"nonce":                 f.Nonce,
				"code_challenge":        s256(f.Verifier),
				"code_challenge_method": "S256",
			}
			for k, v := range tc.extra {
				want[k] = v
			}
			for k, v := range want {
				if got := q[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
			for _, k := range []string{"code_verifier", "client_secret"} {
				if q.Has(k) {
					t.Errorf("authorization URL carries %s", k)
				}
			}
			if strings.Contains(raw, f.Verifier) || strings.Contains(raw, testSecret) || strings.Contains(raw, url.QueryEscape(testSecret)) {
				t.Error("authorization URL leaks the verifier or the client secret")
			}
		})
	}
}

// callbackTest is one authorization response and token-endpoint answer. The
// default of every field is the happy path.
type callbackTest struct {
	name  string
	meta  func(m map[string]any)                  // edits the discovery document
	cfg   func(c *Config)                         // edits the client config
	flow  func(f *Flow)                           // edits the flow passed to Callback
	query func(q url.Values)                      // edits the authorization response
	claim func(p *fakeProvider, c map[string]any) // edits the ID-token claims
	// sign replaces the signature with the provider's key.
	sign func(t *testing.T, c map[string]any) string
	body func(b map[string]any) // edits the token response (after id_token is set)
	// reply replaces the token endpoint's answer entirely.
	reply *reply
	down  bool // the provider is gone after Discover

	wantErr      error   // errors.Is; errAny for any error
	notErr       []error // errors the answer must not be
	wantAuthCode string  // *AuthorizationError with this Code
	wantToken    *TokenError
	noRequest    bool // the token endpoint must not be called
	check        func(t *testing.T, p *fakeProvider, f Flow, challenge string, tok *Tokens)
}

func (tc callbackTest) run(t *testing.T) {
	p := newFakeProvider(t)
	if tc.meta != nil {
		tc.meta(p.meta)
	}
	c := p.client(tc.cfg)
	f := NewFlow()
	authURL, err := c.AuthURL(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	challenge := u.Query().Get("code_challenge")

	sent := f
	if tc.flow != nil {
		tc.flow(&sent)
	}
	p.tokenReply = func(form url.Values) reply {
		if tc.reply != nil {
			return *tc.reply
		}
		body := map[string]any{
			"access_token":  testAccess,
			"token_type":    "Bearer",
			"refresh_token": testRefresh,
			"expires_in":    3600,
			"scope":         "openid profile",
		}
		claims := p.idClaims(f.Nonce)
		claims["at_hash"] = atHash(testAccess)
		if tc.claim != nil {
			tc.claim(p, claims)
		}
		signFn := signGood
		if tc.sign != nil {
			signFn = tc.sign
		}
		body["id_token"] = p.issue(signFn(t, claims))
		if tc.body != nil {
			tc.body(body)
		}
		if at, ok := body["access_token"].(string); ok {
			p.issue(at)
		}
		return jsonReply(http.StatusOK, body)
	}
	q := url.Values{"state": {f.State}, "code": {testCode}, "iss": {p.issuer}}
	if tc.query != nil {
		tc.query(q)
	}
	if tc.down {
		p.srv.Close()
	}

	before := time.Now()
	tok, err := c.Callback(t.Context(), sent, q)
	after := time.Now()

	assertNoLeak(t, err, p.secrets(f.Verifier, f.Nonce))
	if tc.noRequest {
		if n := len(p.tokenRequests()); n != 0 {
			t.Errorf("token endpoint called %d times", n)
		}
	}
	if tc.wantAuthCode != "" {
		var ae *AuthorizationError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an *AuthorizationError", err)
		}
		if ae.Code != tc.wantAuthCode {
			t.Errorf("Code = %q, want %q", ae.Code, tc.wantAuthCode)
		}
		return
	}
	checkErr(t, err, tc.wantErr, tc.notErr...)
	if tc.wantToken != nil {
		var te *TokenError
		if !errors.As(err, &te) {
			t.Fatalf("error %v is not a *TokenError", err)
		}
		if *te != *tc.wantToken {
			t.Errorf("TokenError = %+v, want %+v", *te, *tc.wantToken)
		}
	}
	if err != nil {
		if tok != nil {
			t.Error("tokens returned with an error")
		}
		return
	}
	if tc.check != nil {
		tc.check(t, p, f, challenge, tok)
		return
	}
	// Default checks of a success.
	if tok.AccessToken != testAccess || tok.RefreshToken != testRefresh {
		t.Errorf("tokens = %q, %q", tok.AccessToken, tok.RefreshToken)
	}
	if tok.IDToken == "" || tok.Subject != testSubject || tok.SessionID != testSID || tok.Scope != "openid profile" {
		t.Errorf("IDToken %t, Subject %q, SessionID %q, Scope %q", tok.IDToken != "", tok.Subject, tok.SessionID, tok.Scope)
	}
	// x/oauth2 computes Expiry from expires_in with the wall clock; accept it
	// or the fixed clock (see TestCallbackExpiresInUsesClock).
	lo, hi := before.Add(time.Hour), after.Add(time.Hour)
	if e := tok.Expiry; !e.Equal(testNow.Add(time.Hour)) && (e.Before(lo.Add(-time.Second)) || e.After(hi.Add(time.Second))) {
		t.Errorf("Expiry = %v, want expires_in (3600 s) from now", e)
	}
	reqs := p.tokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("token endpoint called %d times, want 1", len(reqs))
	}
	r := reqs[0]
	for k, v := range map[string]string{
		"grant_type":    "authorization_code",
		"code":          testCode,
		"code_verifier": f.Verifier,
		"redirect_uri":  testRedirect,
	} {
		if got := r.form.Get(k); got != v {
			t.Errorf("token request %s = %q, want %q", k, got, v)
		}
	}
	if got := s256(r.form.Get("code_verifier")); got != challenge {
		t.Errorf("S256(code_verifier) = %q, the authorization URL had %q", got, challenge)
	}
	if !r.basic || r.user != testClientID || r.pass != testSecret {
		t.Errorf("Basic credentials %t %q %q, want the client's", r.basic, r.user, r.pass)
	}
	if r.form.Has("client_secret") {
		t.Error("client_secret in the body with client_secret_basic")
	}
}

// checkPost checks a success where the client authenticated in the body.
func checkPost(t *testing.T, p *fakeProvider, f Flow, challenge string, tok *Tokens) {
	if tok.Subject != testSubject {
		t.Errorf("Subject %q", tok.Subject)
	}
	reqs := p.tokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("token endpoint called %d times, want 1", len(reqs))
	}
	r := reqs[0]
	if r.authHeader != "" {
		t.Errorf("Authorization header %q with client_secret_post", r.authHeader)
	}
	if r.form.Get("client_id") != testClientID || r.form.Get("client_secret") != testSecret {
		t.Errorf("body credentials %q %q, want the client's", r.form.Get("client_id"), r.form.Get("client_secret"))
	}
	if r.form.Get("code_verifier") != f.Verifier || r.form.Get("code") != testCode {
		t.Error("code or verifier missing with client_secret_post")
	}
}

// checkBasic checks that the client authenticated with HTTP Basic.
func checkBasic(t *testing.T, p *fakeProvider, f Flow, challenge string, tok *Tokens) {
	reqs := p.tokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("token endpoint called %d times, want 1", len(reqs))
	}
	if r := reqs[0]; !r.basic || r.user != testClientID || r.pass != testSecret || r.form.Has("client_secret") {
		t.Errorf("want Basic credentials only, got basic=%t user=%q body secret=%t", r.basic, r.user, r.form.Has("client_secret"))
	}
}

func TestCallback(t *testing.T) {
	hostile := "access_denied\r\nSet-Cookie: a=b\"<script>\\" + strings.Repeat("x", 500)
	tests := []callbackTest{
		{name: "success client_secret_basic"},
		{
			name:  "success client_secret_post from metadata",
			meta:  func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{AuthMethodPost} },
			check: checkPost,
		},
		{
			name:  "success client_secret_post forced by config",
			cfg:   func(c *Config) { c.AuthMethod = AuthMethodPost },
			check: checkPost,
		},
		{
			name:  "client_secret_basic forced by config",
			meta:  func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{AuthMethodPost} },
			cfg:   func(c *Config) { c.AuthMethod = AuthMethodBasic },
			check: checkBasic,
		},
		{
			name:  "basic when the metadata lists no method",
			meta:  func(m map[string]any) { delete(m, "token_endpoint_auth_methods_supported") },
			check: checkBasic,
		},
		{
			name:  "iss absent and not advertised",
			meta:  func(m map[string]any) { m["authorization_response_iss_parameter_supported"] = false },
			query: func(q url.Values) { q.Del("iss") },
		},
		{
			name: "several audiences with our azp",
			claim: func(p *fakeProvider, c map[string]any) {
				c["aud"] = []string{testClientID, "api"}
				c["azp"] = testClientID
			},
		},
		{
			name: "lowercase bearer",
			body: func(b map[string]any) { b["token_type"] = "bearer" },
		},

		{name: "state mismatch", query: func(q url.Values) { q.Set("state", "other") }, wantErr: ErrStateMismatch, noRequest: true},
		{name: "state missing", query: func(q url.Values) { q.Del("state") }, wantErr: ErrStateMismatch, noRequest: true},
		{
			name:      "empty state in flow and response",
			flow:      func(f *Flow) { f.State = "" },
			query:     func(q url.Values) { q.Set("state", "") },
			wantErr:   ErrStateMismatch,
			noRequest: true,
		},
		{name: "iss wrong", query: func(q url.Values) { q.Set("iss", "https://evil.example.test") }, wantErr: ErrIssuerMismatch, noRequest: true},
		{
			name:      "iss wrong though not advertised",
			meta:      func(m map[string]any) { m["authorization_response_iss_parameter_supported"] = false },
			query:     func(q url.Values) { q.Set("iss", "https://evil.example.test") },
			wantErr:   ErrIssuerMismatch,
			noRequest: true,
		},
		{name: "iss repeated", query: func(q url.Values) { q.Add("iss", "https://evil.example.test") }, wantErr: ErrIssuerMismatch, noRequest: true},
		{name: "iss missing when advertised", query: func(q url.Values) { q.Del("iss") }, wantErr: ErrIssuerMismatch, noRequest: true},
		{
			name: "access_denied",
			query: func(q url.Values) {
				q.Del("code")
				q.Set("error", "access_denied")
				q.Set("error_description", "user said no")
			},
			wantAuthCode: "access_denied",
			noRequest:    true,
		},
		{
			name: "error with a bad iss is a mix-up",
			query: func(q url.Values) {
				q.Del("code")
				q.Set("error", "access_denied")
				q.Set("iss", "https://evil.example.test")
			},
			wantErr:   ErrIssuerMismatch,
			noRequest: true,
		},
		{
			name:      "error with a bad state",
			query:     func(q url.Values) { q.Del("code"); q.Set("error", "access_denied"); q.Set("state", "x") },
			wantErr:   ErrStateMismatch,
			noRequest: true,
		},
		{
			name:         "hostile error code is sanitized",
			query:        func(q url.Values) { q.Del("code"); q.Set("error", hostile) },
			wantAuthCode: sanitizeCode(hostile),
			noRequest:    true,
		},
		{name: "no code", query: func(q url.Values) { q.Del("code") }, wantErr: ErrInvalidResponse, noRequest: true},

		// ID-token verification.
		{name: "id token wrong iss", claim: func(p *fakeProvider, c map[string]any) { c["iss"] = "https://evil.example.test" }, wantErr: ErrInvalidResponse},
		{name: "id token wrong aud", claim: func(p *fakeProvider, c map[string]any) { c["aud"] = "other-client" }, wantErr: ErrInvalidResponse},
		{
			name: "id token expired",
			claim: func(p *fakeProvider, c map[string]any) {
				c["iat"] = testNow.Add(-time.Hour).Unix()
				c["exp"] = testNow.Add(-time.Minute).Unix()
			},
			wantErr: ErrInvalidResponse,
		},
		{name: "id token wrong nonce", claim: func(p *fakeProvider, c map[string]any) { c["nonce"] = "other-nonce" }, wantErr: ErrInvalidResponse},
		{name: "id token missing nonce", claim: func(p *fakeProvider, c map[string]any) { delete(c, "nonce") }, wantErr: ErrInvalidResponse},
		{
			name:    "several audiences without azp",
			claim:   func(p *fakeProvider, c map[string]any) { c["aud"] = []string{testClientID, "api"} },
			wantErr: ErrInvalidResponse,
		},
		{name: "azp of another client", claim: func(p *fakeProvider, c map[string]any) { c["azp"] = "other-client" }, wantErr: ErrInvalidResponse},
		{name: "id token without sub", claim: func(p *fakeProvider, c map[string]any) { delete(c, "sub") }, wantErr: ErrInvalidResponse},
		{
			name: "id token signed by an unknown key",
			sign: func(t *testing.T, c map[string]any) string {
				_, other := testKeys()
				return sign(t, jose.RS256, other, "key-2", c)
			},
			wantErr: ErrInvalidResponse,
		},
		{
			name: "id token signed by an unknown key under the known kid",
			sign: func(t *testing.T, c map[string]any) string {
				_, other := testKeys()
				return sign(t, jose.RS256, other, testKID, c)
			},
			wantErr: ErrInvalidResponse,
		},
		{name: "id token alg none", sign: unsigned, wantErr: ErrInvalidResponse},
		{
			name: "id token HS256 with the client secret",
			sign: func(t *testing.T, c map[string]any) string {
				return sign(t, jose.HS256, []byte(testSecret), testKID, c)
			},
			wantErr: ErrInvalidResponse,
		},
		{name: "at_hash mismatch", claim: func(p *fakeProvider, c map[string]any) { c["at_hash"] = atHash("another-token") }, wantErr: ErrInvalidResponse},
		{name: "no id token", body: func(b map[string]any) { delete(b, "id_token") }, wantErr: ErrInvalidResponse},
		{name: "id token garbage", body: func(b map[string]any) { b["id_token"] = "not.a.jwt" }, wantErr: ErrInvalidResponse},

		// Token endpoint answers.
		{
			name: "invalid_grant",
			reply: ptr(jsonReply(http.StatusBadRequest, map[string]string{
				"error":             "invalid_grant",
				"error_description": "code " + testCode + " already used by " + testSecret,
			})),
			wantErr:   ErrReauthRequired,
			notErr:    []error{ErrProvider},
			wantToken: &TokenError{Op: "code exchange", Code: "invalid_grant", Status: http.StatusBadRequest},
		},
		{
			name:      "invalid_grant with status 200",
			reply:     ptr(jsonReply(http.StatusOK, map[string]string{"error": "invalid_grant"})),
			wantErr:   ErrReauthRequired,
			wantToken: &TokenError{Op: "code exchange", Code: "invalid_grant", Status: http.StatusOK},
		},
		{
			name:      "invalid_client",
			reply:     ptr(jsonReply(http.StatusUnauthorized, map[string]string{"error": "invalid_client"})),
			wantErr:   ErrClientAuth,
			notErr:    []error{ErrReauthRequired, ErrProvider},
			wantToken: &TokenError{Op: "code exchange", Code: "invalid_client", Status: http.StatusUnauthorized},
		},
		// Literal answers of the interop matrix's providers (e2e/interop_*).
		{
			// Ory Hydra v2.3.0 (fosite client_authentication.go:209): the
			// client is registered for client_secret_post, the BFF chose
			// client_secret_basic from discovery.
			name:      "Hydra: auth method mismatch (literal answer)",
			reply:     &reply{status: http.StatusUnauthorized, contentType: "application/json", body: `{"error":"invalid_client","error_description":"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method). The OAuth 2.0 Client supports client authentication method 'client_secret_post', but method 'client_secret_basic' was requested. You must configure the OAuth 2.0 client's 'token_endpoint_auth_method' value to accept 'client_secret_basic'."}`},
			wantErr:   ErrClientAuth,
			notErr:    []error{ErrProvider, ErrReauthRequired},
			wantToken: &TokenError{Op: "code exchange", Code: "invalid_client", Status: http.StatusUnauthorized},
		},
		{
			// Dex v2.45.1 server/handlers.go:848-855.
			name:    "Dex: wrong client secret (literal answer)",
			reply:   &reply{status: http.StatusUnauthorized, contentType: "application/json", body: `{"error":"invalid_client","error_description":"Invalid client credentials."}`},
			wantErr: ErrClientAuth,
			notErr:  []error{ErrProvider, ErrReauthRequired},
		},
		{
			// zitadel/oidc v3.52.0 pkg/op/token_request.go:161.
			name:    "zitadel/oidc: wrong client secret (literal answer)",
			reply:   &reply{status: http.StatusUnauthorized, contentType: "application/json", body: `{"error":"invalid_client","error_description":"invalid client_id / client_secret"}`},
			wantErr: ErrClientAuth,
			notErr:  []error{ErrProvider, ErrReauthRequired},
		},
		{
			// zitadel/oidc v3.52.0 pkg/op/token_refresh.go:118: an unknown
			// client_id is a 500 server_error there. Nothing in the answer
			// says configuration, so it stays "try again".
			name:    "zitadel/oidc: unknown client (literal answer)",
			reply:   &reply{status: http.StatusInternalServerError, contentType: "application/json", body: `{"error":"server_error","error_description":"client not found"}`},
			wantErr: ErrProvider,
			notErr:  []error{ErrClientAuth, ErrReauthRequired},
		},
		{
			// Hydra v2.3.0 (fosite flow_authorize_code_token.go:42): a
			// replayed code.
			name:    "Hydra: code already used (literal answer)",
			reply:   &reply{status: http.StatusBadRequest, contentType: "application/json", body: `{"error":"invalid_grant","error_description":"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client. The authorization code has already been used."}`},
			wantErr: ErrReauthRequired,
			notErr:  []error{ErrProvider, ErrClientAuth},
		},
		{
			name:      "hostile token error code",
			reply:     ptr(jsonReply(http.StatusBadRequest, map[string]string{"error": hostile})),
			wantErr:   ErrReauthRequired,
			wantToken: &TokenError{Op: "code exchange", Code: sanitizeCode(hostile), Status: http.StatusBadRequest},
		},
		{
			name:      "server error",
			reply:     &reply{status: http.StatusInternalServerError, contentType: "text/html", body: "<h1>" + testSecret + "</h1>"},
			wantErr:   ErrProvider,
			notErr:    []error{ErrReauthRequired},
			wantToken: &TokenError{Op: "code exchange", Status: http.StatusInternalServerError},
		},
		{name: "connection refused", down: true, wantErr: ErrProvider, notErr: []error{ErrReauthRequired}},
		{name: "unparsable answer", reply: &reply{status: http.StatusOK, contentType: "application/json", body: "{" + testAccess}, wantErr: errAny},
		{name: "missing access token", body: func(b map[string]any) { delete(b, "access_token") }, wantErr: errAny},
		{name: "token type mac", body: func(b map[string]any) { b["token_type"] = "mac" }, wantErr: ErrInvalidResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func ptr[T any](v T) *T { return &v }

// TestCallbackExpiry covers how Expiry is found when expires_in is missing.
func TestCallbackExpiry(t *testing.T) {
	tests := []struct {
		name   string
		access func(t *testing.T) string
		want   time.Time
	}{
		{
			name: "JWT access token with exp",
			access: func(t *testing.T) string {
				return signGood(t, map[string]any{"sub": testSubject, "exp": testNow.Add(30 * time.Minute).Unix()})
			},
			want: testNow.Add(30 * time.Minute),
		},
		{
			name:   "opaque access token",
			access: func(t *testing.T) string { return testAccess },
			want:   testNow.Add(DefaultAccessLifetime),
		},
		{
			name:   "opaque access token: five minutes",
			access: func(t *testing.T) string { return testAccess },
			want:   testNow.Add(5 * time.Minute),
		},
		{
			name: "JWT access token without exp",
			access: func(t *testing.T) string {
				return signGood(t, map[string]any{"sub": testSubject})
			},
			want: testNow.Add(DefaultAccessLifetime),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			c := p.client(nil)
			f := NewFlow()
			access := p.issue(tc.access(t))
			p.tokenReply = func(url.Values) reply {
				claims := p.idClaims(f.Nonce)
				claims["at_hash"] = atHash(access)
				return jsonReply(http.StatusOK, map[string]any{
					"access_token": access,
					"token_type":   "Bearer",
					"id_token":     p.issue(signGood(t, claims)),
				})
			}
			tok, err := c.Callback(t.Context(), f, url.Values{"state": {f.State}, "code": {testCode}, "iss": {p.issuer}})
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tc.want) {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, tc.want)
			}
			if tok.AccessToken != access || tok.RefreshToken != "" {
				t.Errorf("tokens %q %q", tok.AccessToken, tok.RefreshToken)
			}
		})
	}
}

// Expiry from expires_in should follow Config.Now like every other expiry.
func TestCallbackExpiresInUsesClock(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	f := NewFlow()
	p.tokenReply = func(url.Values) reply {
		claims := p.idClaims(f.Nonce)
		return jsonReply(http.StatusOK, map[string]any{
			"access_token": testAccess, "token_type": "Bearer", "expires_in": 600,
			"id_token": signGood(t, claims),
		})
	}
	tok, err := c.Callback(t.Context(), f, url.Values{"state": {f.State}, "code": {testCode}, "iss": {p.issuer}})
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(10 * time.Minute); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want Config.Now + expires_in = %v", tok.Expiry, want)
	}
}

// A Flow whose nonce got lost (an old or damaged login cookie) must not turn
// off the nonce check, nor let a code exchange succeed without an ID token.
func TestCallbackIncompleteFlow(t *testing.T) {
	tests := []struct {
		name string
		flow func(*Flow)
		body func(p *fakeProvider, f Flow) map[string]any
	}{
		{
			name: "empty nonce, no id token",
			flow: func(f *Flow) { f.Nonce = "" },
			body: func(p *fakeProvider, f Flow) map[string]any {
				return map[string]any{"access_token": testAccess, "token_type": "Bearer"}
			},
		},
		{
			name: "empty nonce, id token of another flow",
			flow: func(f *Flow) { f.Nonce = "" },
			body: func(p *fakeProvider, f Flow) map[string]any {
				return map[string]any{"access_token": testAccess, "token_type": "Bearer",
					"id_token": signGood(p.t, p.idClaims("nonce-of-another-login"))}
			},
		},
		{
			name: "empty verifier",
			flow: func(f *Flow) { f.Verifier = "" },
			body: func(p *fakeProvider, f Flow) map[string]any {
				return map[string]any{"access_token": testAccess, "token_type": "Bearer",
					"id_token": signGood(p.t, p.idClaims(f.Nonce))}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			c := p.client(nil)
			f := NewFlow()
			tc.flow(&f)
			p.tokenReply = func(url.Values) reply { return jsonReply(http.StatusOK, tc.body(p, f)) }
			tok, err := c.Callback(t.Context(), f, url.Values{"state": {f.State}, "code": {testCode}, "iss": {p.issuer}})
			if err == nil {
				t.Fatalf("Callback accepted an incomplete flow: subject %q", tok.Subject)
			}
		})
	}
}

func TestSanitizeCode(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "access_denied", "access_denied"},
		{"crlf", "a\r\nb", "a__b"},
		{"quotes and backslash", `a"b\c`, "a_b_c"},
		{"space and unicode", "a bé", "a_b__"},
		{"long", strings.Repeat("x", 100), strings.Repeat("x", 64)},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sanitizeCode(tc.in)
			if len(got) > 64 || strings.ContainsFunc(got, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) {
				t.Errorf("sanitizeCode(%q) = %q is not short and printable", tc.in, got)
			}
			if got := sanitizeCode(tc.in); got != tc.want {
				t.Errorf("sanitizeCode(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAuthURLFlowOptions(t *testing.T) {
	dur := func(d time.Duration) *time.Duration { return &d }
	tests := []struct {
		name    string
		cfg     func(*Config)
		flow    func(*Flow)
		want    map[string]string // parameters that must appear once with this value
		absent  []string
		wantErr bool
	}{
		{
			name:   "none",
			absent: []string{"prompt", "max_age", "login_hint"},
		},
		{
			name: "params passed on",
			flow: func(f *Flow) {
				f.Params = map[string]string{"prompt": "login consent", "login_hint": "alice@example.test"}
			},
			want: map[string]string{"prompt": "login consent", "login_hint": "alice@example.test"},
		},
		{
			name: "flow params win over AuthParams",
			cfg:  func(c *Config) { c.AuthParams = map[string]string{"prompt": "consent", "audience": "https://api"} },
			flow: func(f *Flow) { f.Params = map[string]string{"prompt": "none"} },
			want: map[string]string{"prompt": "none", "audience": "https://api"},
		},
		{name: "max_age in seconds", flow: func(f *Flow) { f.MaxAge = dur(90 * time.Second) }, want: map[string]string{"max_age": "90"}},
		{name: "max_age zero", flow: func(f *Flow) { f.MaxAge = dur(0) }, want: map[string]string{"max_age": "0"}},
		{name: "negative max_age", flow: func(f *Flow) { f.MaxAge = dur(-time.Second) }, wantErr: true},
		{name: "max_age as a param", flow: func(f *Flow) { f.Params = map[string]string{"max_age": "5"} }, wantErr: true},
		{name: "state", flow: func(f *Flow) { f.Params = map[string]string{"state": "attacker"} }, wantErr: true},
		{name: "nonce", flow: func(f *Flow) { f.Params = map[string]string{"nonce": "attacker"} }, wantErr: true},
		{name: "code_challenge", flow: func(f *Flow) { f.Params = map[string]string{"code_challenge": "attacker"} }, wantErr: true},
		{name: "redirect_uri", flow: func(f *Flow) { f.Params = map[string]string{"redirect_uri": "https://evil.example.test/cb"} }, wantErr: true},
		{name: "client_id", flow: func(f *Flow) { f.Params = map[string]string{"client_id": "other"} }, wantErr: true},
		{name: "scope", flow: func(f *Flow) { f.Params = map[string]string{"scope": "openid admin"} }, wantErr: true},
		{name: "request_uri", flow: func(f *Flow) { f.Params = map[string]string{"request_uri": "urn:x"} }, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			c := p.client(tc.cfg)
			f := NewFlow()
			if tc.flow != nil {
				tc.flow(&f)
			}
			raw, err := c.AuthURL(context.Background(), f)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("AuthURL accepted the flow: %s", raw)
				}
				if raw != "" {
					t.Errorf("AuthURL returned %q with an error", raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			q := u.Query()
			for k, v := range tc.want {
				if got := q[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if q.Has(k) {
					t.Errorf("%s = %q, want none", k, q[k])
				}
			}
			for k, v := range map[string]string{"state": f.State, "nonce": f.Nonce, "code_challenge": s256(f.Verifier), "redirect_uri": testRedirect} {
				if got := q[k]; len(got) != 1 || got[0] != v {
					t.Errorf("protocol parameter %s = %q, want [%q]", k, got, v)
				}
			}
		})
	}
}

func TestProtocolParam(t *testing.T) {
	for _, name := range []string{"state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "client_id",
		"response_type", "response_mode", "scope", "request", "request_uri", "client_secret", "code_verifier"} {
		if !ProtocolParam(name) {
			t.Errorf("ProtocolParam(%q) = false", name)
		}
	}
	for _, name := range []string{"prompt", "max_age", "login_hint", "acr_values", "ui_locales", "audience", "resource"} {
		if ProtocolParam(name) {
			t.Errorf("ProtocolParam(%q) = true; it is a sign-in option", name)
		}
	}
}

// TestCallbackMaxAge: with max_age asked for, the ID token must say the user
// authenticated recently enough (OpenID Connect Core 3.1.3.7), measured with
// Config.Now (the fixed clock lies in the past: the wall clock fails every
// success case).
func TestCallbackMaxAge(t *testing.T) {
	maxAge := func(d time.Duration) func(f *Flow) { return func(f *Flow) { f.MaxAge = &d } }
	authTime := func(v any) func(p *fakeProvider, c map[string]any) {
		return func(p *fakeProvider, c map[string]any) { c["auth_time"] = v }
	}
	ago := func(d time.Duration) int64 { return testNow.Add(-d).Unix() }
	tests := []callbackTest{
		{name: "recent", flow: maxAge(5 * time.Minute), claim: authTime(ago(time.Minute))},
		{name: "as old as allowed with skew", flow: maxAge(5 * time.Minute), claim: authTime(ago(5*time.Minute + AuthTimeSkew - time.Second))},
		{name: "a minute past max_age: the skew of two", flow: maxAge(5 * time.Minute), claim: authTime(ago(6 * time.Minute))},
		{name: "auth_time as a fraction", flow: maxAge(5 * time.Minute), claim: authTime(float64(ago(time.Minute)) + 0.5)},
		{name: "zero just now", flow: maxAge(0), claim: authTime(ago(0))},
		{name: "not asked, no auth_time"},
		{name: "not asked, old auth_time", claim: authTime(ago(24 * time.Hour))},

		{name: "too old", flow: maxAge(5 * time.Minute), claim: authTime(ago(5*time.Minute + AuthTimeSkew + time.Second)), wantErr: ErrAuthTooOld},
		{name: "three minutes past max_age", flow: maxAge(5 * time.Minute), claim: authTime(ago(8 * time.Minute)), wantErr: ErrAuthTooOld},
		{name: "zero and old", flow: maxAge(0), claim: authTime(ago(AuthTimeSkew + time.Minute)), wantErr: ErrAuthTooOld},
		{name: "no auth_time", flow: maxAge(time.Hour), wantErr: ErrAuthTooOld},
		{name: "auth_time not a number", flow: maxAge(time.Hour), claim: authTime("yesterday"), wantErr: errAny},
		{name: "auth_time zero", flow: maxAge(time.Hour), claim: authTime(0), wantErr: ErrAuthTooOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}
