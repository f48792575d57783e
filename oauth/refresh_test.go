package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type refreshTest struct {
	name    string
	meta    func(m map[string]any)
	refresh string // the refresh token redeemed; testRefresh when empty and !noToken
	noToken bool   // redeem an empty refresh token
	sub     string // the session's subject; testSubject when empty
	// answer is the token endpoint's answer; nil means a plain success
	// without a new refresh token or ID token.
	answer func(t *testing.T, p *fakeProvider) reply
	down   bool

	wantErr   error
	notErr    []error
	wantToken *TokenError
	noRequest bool
	check     func(t *testing.T, p *fakeProvider, tok *Tokens)
}

func (tc refreshTest) run(t *testing.T) {
	p := newFakeProvider(t)
	if tc.meta != nil {
		tc.meta(p.meta)
	}
	c := p.client(nil)
	p.tokenReply = func(url.Values) reply {
		if tc.answer != nil {
			return tc.answer(t, p)
		}
		return jsonReply(http.StatusOK, map[string]any{"access_token": testAccess + "-2", "token_type": "Bearer", "expires_in": 300})
	}
	rt := tc.refresh
	if rt == "" && !tc.noToken {
		rt = testRefresh
	}
	sub := tc.sub
	if sub == "" {
		sub = testSubject
	}
	if tc.down {
		p.srv.Close()
	}
	tok, err := c.Refresh(t.Context(), rt, sub)
	assertNoLeak(t, err, p.secrets(testAccess+"-2", "refresh-token-new"))
	reqs := p.tokenRequests()
	if tc.noRequest && len(reqs) != 0 {
		t.Errorf("token endpoint called %d times", len(reqs))
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
		return
	}
	if len(reqs) != 1 {
		t.Fatalf("token endpoint called %d times, want 1", len(reqs))
	}
	r := reqs[0]
	if r.form.Get("grant_type") != "refresh_token" || r.form.Get("refresh_token") != rt {
		t.Errorf("grant_type %q refresh_token %q", r.form.Get("grant_type"), r.form.Get("refresh_token"))
	}
	if tc.check != nil {
		tc.check(t, p, tok)
	}
}

// newIDToken answers a refresh with rotation and a new ID token whose
// claims edit changes.
func newIDToken(edit func(c map[string]any)) func(t *testing.T, p *fakeProvider) reply {
	return func(t *testing.T, p *fakeProvider) reply {
		claims := p.idClaims("")
		if edit != nil {
			edit(claims)
		}
		return jsonReply(http.StatusOK, map[string]any{
			"access_token":  testAccess + "-2",
			"token_type":    "Bearer",
			"expires_in":    300,
			"refresh_token": "refresh-token-new",
			"id_token":      p.issue(signGood(t, claims)),
		})
	}
}

func TestRefresh(t *testing.T) {
	tests := []refreshTest{
		{
			name: "keeps the refresh token when none is returned",
			check: func(t *testing.T, p *fakeProvider, tok *Tokens) {
				if tok.RefreshToken != testRefresh || tok.AccessToken != testAccess+"-2" {
					t.Errorf("tokens %q %q", tok.AccessToken, tok.RefreshToken)
				}
				if tok.Subject != testSubject || tok.IDToken != "" {
					t.Errorf("Subject %q, IDToken %q: want the session's subject and no ID token", tok.Subject, tok.IDToken)
				}
				r := p.tokenRequests()[0]
				if !r.basic || r.user != testClientID || r.pass != testSecret || r.form.Has("client_secret") {
					t.Error("want client_secret_basic")
				}
			},
		},
		{
			name: "rotation returns the new refresh token",
			answer: func(t *testing.T, p *fakeProvider) reply {
				return jsonReply(http.StatusOK, map[string]any{
					"access_token": testAccess + "-2", "token_type": "Bearer", "expires_in": 300,
					"refresh_token": "refresh-token-new",
				})
			},
			check: func(t *testing.T, p *fakeProvider, tok *Tokens) {
				if tok.RefreshToken != "refresh-token-new" {
					t.Errorf("RefreshToken %q, want the rotated one", tok.RefreshToken)
				}
			},
		},
		{
			name:   "new ID token for the same subject",
			answer: newIDToken(nil),
			check: func(t *testing.T, p *fakeProvider, tok *Tokens) {
				if tok.IDToken == "" || tok.Subject != testSubject || tok.SessionID != testSID || tok.RefreshToken != "refresh-token-new" {
					t.Errorf("IDToken %t Subject %q SessionID %q RefreshToken %q", tok.IDToken != "", tok.Subject, tok.SessionID, tok.RefreshToken)
				}
			},
		},
		{
			name: "client_secret_post",
			meta: func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{AuthMethodPost} },
			check: func(t *testing.T, p *fakeProvider, tok *Tokens) {
				r := p.tokenRequests()[0]
				if r.authHeader != "" || r.form.Get("client_id") != testClientID || r.form.Get("client_secret") != testSecret {
					t.Error("want client_secret_post")
				}
			},
		},
		{
			name:    "new ID token for another subject",
			answer:  newIDToken(func(c map[string]any) { c["sub"] = "subject-mallory" }),
			wantErr: ErrInvalidResponse,
		},
		{
			name:    "new ID token for another client",
			answer:  newIDToken(func(c map[string]any) { c["aud"] = "other-client" }),
			wantErr: ErrInvalidResponse,
		},
		{
			name:    "new ID token expired",
			answer:  newIDToken(func(c map[string]any) { c["exp"] = testNow.Add(-time.Second).Unix() }),
			wantErr: ErrInvalidResponse,
		},
		{
			name: "invalid_grant",
			answer: func(t *testing.T, p *fakeProvider) reply {
				return jsonReply(http.StatusBadRequest, map[string]string{
					"error": "invalid_grant", "error_description": "refresh token " + testRefresh + " revoked",
				})
			},
			wantErr:   ErrReauthRequired,
			notErr:    []error{ErrProvider},
			wantToken: &TokenError{Op: "refresh", Code: "invalid_grant", Status: http.StatusBadRequest},
		},
		{
			name: "503",
			answer: func(t *testing.T, p *fakeProvider) reply {
				return reply{status: http.StatusServiceUnavailable, contentType: "text/plain", body: "down"}
			},
			wantErr:   ErrProvider,
			notErr:    []error{ErrReauthRequired},
			wantToken: &TokenError{Op: "refresh", Status: http.StatusServiceUnavailable},
		},
		// What providers really answer for a dead refresh token, and what
		// means "try again" (RFC 6749 5.2 codes; status 5xx and 429).
		{
			// Dex v2.45.1, server/refreshhandlers.go: every unknown, used
			// or revoked refresh token.
			name: "Dex: refresh token already claimed (literal answer)",
			answer: rawAnswer(http.StatusBadRequest,
				`{"error":"invalid_request","error_description":"Refresh token is invalid or has already been claimed by another client."}`),
			wantErr:   ErrReauthRequired,
			notErr:    []error{ErrProvider, ErrClientAuth},
			wantToken: &TokenError{Op: "refresh", Code: "invalid_request", Status: http.StatusBadRequest},
		},
		{
			// Ory Hydra v2.3.0 (fosite flow_refresh.go:48-56): a rotated
			// refresh token used again (and the whole grant revoked).
			name: "Hydra: refresh token already used (literal answer)",
			answer: rawAnswer(http.StatusBadRequest,
				`{"error":"invalid_grant","error_description":"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client. The refresh token was already used."}`),
			wantErr: ErrReauthRequired,
			notErr:  []error{ErrProvider, ErrClientAuth},
		},
		{
			// zitadel/oidc v3.52.0 example storage.go:341 via
			// pkg/op/token_refresh.go:150: used, revoked or unknown.
			name:    "zitadel/oidc: refresh token used (literal answer)",
			answer:  rawAnswer(http.StatusBadRequest, `{"error":"invalid_grant"}`),
			wantErr: ErrReauthRequired,
			notErr:  []error{ErrProvider, ErrClientAuth},
		},
		{
			// Hydra v2.3.0: refresh with a client registered for
			// client_secret_post over HTTP Basic.
			name: "Hydra: refresh with the wrong auth method (literal answer)",
			answer: rawAnswer(http.StatusUnauthorized,
				`{"error":"invalid_client","error_description":"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method). The OAuth 2.0 Client supports client authentication method 'client_secret_post', but method 'client_secret_basic' was requested. You must configure the OAuth 2.0 client's 'token_endpoint_auth_method' value to accept 'client_secret_basic'."}`),
			wantErr: ErrClientAuth,
			notErr:  []error{ErrProvider, ErrReauthRequired},
		},
		{name: "invalid_scope", answer: codeAnswer(http.StatusBadRequest, "invalid_scope"), wantErr: ErrReauthRequired, notErr: []error{ErrProvider}},
		{name: "unauthorized_client", answer: codeAnswer(http.StatusBadRequest, "unauthorized_client"), wantErr: ErrReauthRequired, notErr: []error{ErrProvider}},
		{name: "unknown code", answer: codeAnswer(http.StatusBadRequest, "token_gone"), wantErr: ErrReauthRequired, notErr: []error{ErrProvider}},
		{name: "invalid_client", answer: codeAnswer(http.StatusUnauthorized, "invalid_client"), wantErr: ErrClientAuth, notErr: []error{ErrProvider, ErrReauthRequired}},
		{name: "invalid_client with 400", answer: codeAnswer(http.StatusBadRequest, "invalid_client"), wantErr: ErrClientAuth, notErr: []error{ErrProvider, ErrReauthRequired}},
		{
			name:    "401 without a code",
			answer:  rawAnswer(http.StatusUnauthorized, `Unauthorized`),
			wantErr: ErrClientAuth, notErr: []error{ErrProvider, ErrReauthRequired},
		},
		{name: "temporarily_unavailable", answer: codeAnswer(http.StatusBadRequest, "temporarily_unavailable"), wantErr: ErrProvider, notErr: []error{ErrReauthRequired}},
		{name: "server_error", answer: codeAnswer(http.StatusBadRequest, "server_error"), wantErr: ErrProvider, notErr: []error{ErrReauthRequired}},
		{name: "429 with a code", answer: codeAnswer(http.StatusTooManyRequests, "invalid_request"), wantErr: ErrProvider, notErr: []error{ErrReauthRequired}},
		{name: "500 with invalid_grant", answer: codeAnswer(http.StatusInternalServerError, "invalid_grant"), wantErr: ErrProvider, notErr: []error{ErrReauthRequired}},
		{
			name:    "400 HTML page without a code",
			answer:  rawAnswer(http.StatusBadRequest, `<html>Bad Request</html>`),
			wantErr: ErrProvider, notErr: []error{ErrReauthRequired, ErrClientAuth},
		},
		{name: "connection refused", down: true, wantErr: ErrProvider, notErr: []error{ErrReauthRequired}},
		{name: "empty refresh token", noToken: true, wantErr: ErrReauthRequired, noRequest: true},
		{
			name: "token type mac",
			answer: func(t *testing.T, p *fakeProvider) reply {
				return jsonReply(http.StatusOK, map[string]any{"access_token": testAccess + "-2", "token_type": "mac"})
			},
			wantErr: ErrInvalidResponse,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// rawAnswer is a token-endpoint answer with a literal body (JSON when it
// starts with '{').
func rawAnswer(status int, body string) func(*testing.T, *fakeProvider) reply {
	ct := "text/html"
	if strings.HasPrefix(body, "{") {
		ct = "application/json"
	}
	return func(*testing.T, *fakeProvider) reply { return reply{status: status, contentType: ct, body: body} }
}

// codeAnswer is an RFC 6749 error answer with code.
func codeAnswer(status int, code string) func(*testing.T, *fakeProvider) reply {
	return func(*testing.T, *fakeProvider) reply {
		return jsonReply(status, map[string]string{"error": code})
	}
}
