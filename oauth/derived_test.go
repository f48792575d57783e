package oauth

import (
	"crypto/elliptic"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestExchange(t *testing.T) {
	p := newFakeProvider(t)
	p.meta["token_endpoint_auth_methods_supported"] = []string{AuthMethodPrivateKeyJWT}
	dk := mustDPoPKeys(t, jwk(t, edKey(t), "d1", "", ""))
	c := p.client(func(c *Config) {
		c.DPoP = dk
		c.AuthMethod, c.ClientKeys = AuthMethodPrivateKeyJWT, mustClientKeys(t, jwk(t, ecKey(t, elliptic.P256()), "c1", "", ""))
	})
	answer := map[string]any{"access_token": "derived-at", "token_type": "DPoP", "expires_in": 120,
		"issued_token_type": TokenTypeAccess, "scope": "orders:read"}
	p.tokenReply = func(url.Values) reply { return jsonReply(http.StatusOK, answer) }
	target := Target{Resource: "https://orders.example", Audience: "orders", Scopes: []string{"orders:read"}}
	tok, err := c.Exchange(t.Context(), testAccess, "openid orders:read orders:write", target)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.AccessToken != "derived-at" || tok.DPoPKey != dk.Binding() || tok.Scope != "orders:read" ||
		!tok.Expiry.Equal(testNow.Add(2*time.Minute)) || tok.RefreshToken != "" {
		t.Errorf("tokens %+v", tok)
	}
	r := p.tokenRequests()[0]
	for k, v := range map[string]string{
		"grant_type": GrantTokenExchange, "subject_token": testAccess, "subject_token_type": TokenTypeAccess,
		"requested_token_type": TokenTypeAccess, "resource": "https://orders.example", "audience": "orders",
		"scope": "orders:read", "client_assertion_type": ClientAssertionType,
	} {
		if got := r.form.Get(k); got != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
	if len(r.dpop) != 1 || r.form.Has("refresh_token") || r.form.Has("client_secret") {
		t.Errorf("request: %d proofs, refresh_token %v, client_secret %v", len(r.dpop), r.form.Has("refresh_token"), r.form.Has("client_secret"))
	}

	for _, tc := range []struct {
		name    string
		granted string
		target  Target
		answer  map[string]any
		want    error
		asks    bool
	}{
		{name: "a scope the session lacks is never asked", granted: "openid orders:read", target: Target{Resource: "r", Scopes: []string{"orders:write"}}, want: ErrOutranks},
		{name: "an answered scope the session lacks", granted: "openid orders:read", target: Target{Resource: "r"},
			answer: map[string]any{"access_token": "x", "token_type": "Bearer", "scope": "orders:read admin"}, want: ErrOutranks, asks: true},
		{name: "without a granted scope, the asked ones bound the answer", target: Target{Resource: "r", Scopes: []string{"a"}},
			answer: map[string]any{"access_token": "x", "token_type": "Bearer", "scope": "a b"}, want: ErrOutranks, asks: true},
		{name: "a refresh token is not an access token", target: Target{Resource: "r"},
			answer: map[string]any{"access_token": "x", "token_type": "N_A", "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, want: ErrInvalidResponse, asks: true},
		{name: "no access token", target: Target{Resource: "r"}, answer: map[string]any{"token_type": "Bearer"}, want: ErrProvider, asks: true}, // as classify sorts x/oauth2's own parse errors
		{name: "a DPoP type without a proof", target: Target{Resource: "r"}, answer: map[string]any{"access_token": "x", "token_type": "DPoP"}, want: ErrInvalidResponse, asks: true},
		{name: "subject token refused", target: Target{Resource: "r"}, answer: map[string]any{"error": "invalid_grant"}, want: ErrReauthRequired, asks: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			c := p.client(nil)
			p.tokenReply = func(url.Values) reply {
				status := http.StatusOK
				if tc.answer["error"] != nil {
					status = http.StatusBadRequest
				}
				return jsonReply(status, tc.answer)
			}
			_, err := c.Exchange(t.Context(), testAccess, tc.granted, tc.target)
			if !errors.Is(err, tc.want) {
				t.Errorf("Exchange: %v, want %v", err, tc.want)
			}
			if asked := len(p.tokenRequests()) > 0; asked != tc.asks {
				t.Errorf("asked the provider: %v, want %v", asked, tc.asks)
			}
			assertNoLeak(t, err, p.secrets())
		})
	}
}

func TestClientCredentials(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	p.tokenReply = func(url.Values) reply {
		return jsonReply(http.StatusOK, map[string]any{"access_token": "client-at", "token_type": "Bearer", "expires_in": 300, "scope": "reports"})
	}
	tok, err := c.ClientCredentials(t.Context(), Target{Resource: "https://reports.example", Scopes: []string{"reports"}})
	if err != nil {
		t.Fatalf("ClientCredentials: %v", err)
	}
	if tok.AccessToken != "client-at" || tok.DPoPKey != "" || !tok.Expiry.Equal(testNow.Add(5*time.Minute)) {
		t.Errorf("tokens %+v", tok)
	}
	r := p.tokenRequests()[0]
	if r.form.Get("grant_type") != "client_credentials" || r.form.Get("resource") != "https://reports.example" ||
		r.form.Get("scope") != "reports" || !r.basic || r.user != testClientID || r.pass != testSecret {
		t.Errorf("request form %v, basic %v", r.form, r.basic)
	}
	if strings.Contains(r.form.Encode(), "subject_token") {
		t.Error("a client-credentials request carries a subject token")
	}
}

// TestExchangeNA: RFC 8693 lets an exchange answer token_type N_A; with an
// issued access token it is used as a bearer token (a refresh token type
// with it is refused in TestExchange). A code exchange or refresh never
// takes N_A.
func TestExchangeNA(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	p.tokenReply = func(url.Values) reply {
		return jsonReply(http.StatusOK, map[string]any{"access_token": "x", "token_type": "N_A", "issued_token_type": TokenTypeAccess, "expires_in": 60})
	}
	if tok, err := c.Exchange(t.Context(), testAccess, "", Target{Resource: "r"}); err != nil || tok.DPoPKey != "" {
		t.Errorf("Exchange answered N_A: %v", err)
	}
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("Refresh answered N_A: %v, want ErrInvalidResponse", err)
	}
}
