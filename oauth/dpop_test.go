package oauth

import (
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func mustDPoPKeys(t *testing.T, keys ...json.RawMessage) *DPoPKeys {
	t.Helper()
	dk, err := ParseDPoPKeys(jwkSet(keys...))
	if err != nil {
		t.Fatalf("ParseDPoPKeys: %v", err)
	}
	return dk
}

// thumbprint is the RFC 7638 jkt of key's public half.
func thumbprint(t *testing.T, key any) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// checkedProof is a DPoP proof verified as RFC 9449 section 4.3 asks of a
// server: typ, an allowed asymmetric alg, the public key in the header and
// the signature by it.
type checkedProof struct {
	jkt    string // thumbprint of the header's key
	claims proofClaims
}

func checkProof(t *testing.T, proof string) checkedProof {
	t.Helper()
	tok, err := jwt.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil {
		t.Fatalf("proof: %v", err)
	}
	h := tok.Headers[0]
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || h.KeyID != "" {
		t.Fatalf("proof header typ %v jwk %v kid %q: want dpop+jwt and the public key alone", h.ExtraHeaders["typ"], h.JSONWebKey, h.KeyID)
	}
	var c proofClaims
	if err := tok.Claims(h.JSONWebKey.Key, &c); err != nil {
		t.Fatalf("proof signature: %v", err)
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	return checkedProof{jkt: base64.RawURLEncoding.EncodeToString(tp), claims: c}
}

func TestDPoPProof(t *testing.T) {
	k1, k2 := ecKey(t, elliptic.P256()), edKey(t)
	dk := mustDPoPKeys(t, jwk(t, k1, "new", "", ""), jwk(t, k2, "old", "", ""))
	if dk.Binding() != thumbprint(t, &k1.PublicKey) {
		t.Errorf("Binding() = %q, want the first key's thumbprint", dk.Binding())
	}
	oldJKT := thumbprint(t, k2.Public())
	if !dk.Has(oldJKT) || dk.Has("not-a-thumbprint") {
		t.Error("Has: want the second key in, an unknown one out")
	}
	target, _ := url.Parse("https://api.example.com:8443/v1/orders?id=7#frag")
	seen := map[string]bool{}
	for _, tc := range []struct {
		name, jkt, at, nonce string
	}{
		{"binding key, token, nonce", dk.Binding(), "access-token-1", "n-1"},
		{"old key, no nonce", oldJKT, "access-token-1", ""},
		{"token endpoint: no ath", dk.Binding(), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := dk.Proof(tc.jkt, "POST", target, tc.at, tc.nonce, testNow)
			if err != nil {
				t.Fatalf("Proof: %v", err)
			}
			cp := checkProof(t, p)
			if cp.jkt != tc.jkt {
				t.Errorf("signed by %s, want %s", cp.jkt, tc.jkt)
			}
			c := cp.claims
			if c.HTM != "POST" || c.HTU != "https://api.example.com:8443/v1/orders" || c.IAT != testNow.Unix() || c.Nonce != tc.nonce {
				t.Errorf("claims %+v", c)
			}
			wantATH := ""
			if tc.at != "" {
				sum := sha256.Sum256([]byte(tc.at))
				wantATH = base64.RawURLEncoding.EncodeToString(sum[:])
			}
			if c.ATH != wantATH {
				t.Errorf("ath %q, want %q", c.ATH, wantATH)
			}
			if len(c.JTI) < 22 || seen[c.JTI] {
				t.Errorf("jti %q: short or repeated", c.JTI)
			}
			seen[c.JTI] = true
		})
	}
	if _, err := dk.Proof("gone", "GET", target, "at", "", testNow); !errors.Is(err, ErrDPoPKeyGone) {
		t.Errorf("Proof by a key not in the set: %v, want ErrDPoPKeyGone", err)
	}
	dk.Replace(mustDPoPKeys(t, jwk(t, k2, "old", "", "")))
	if dk.Binding() != oldJKT || dk.Has(thumbprint(t, &k1.PublicKey)) {
		t.Error("Replace did not swap the set")
	}
}

// TestDPoPTokenRequests: with DPoP keys every token request carries a
// proof by the binding key (POST, the token URL, no ath); a use_dpop_nonce
// answer is retried once with the nonce, which later requests reuse until
// the provider sends another; a DPoP token is recorded as bound to the key.
func TestDPoPTokenRequests(t *testing.T) {
	p := newFakeProvider(t)
	p.meta["token_endpoint_auth_methods_supported"] = []string{AuthMethodPrivateKeyJWT}
	dk := mustDPoPKeys(t, jwk(t, edKey(t), "d1", "", ""))
	c := p.client(func(c *Config) {
		c.DPoP = dk
		c.AuthMethod, c.ClientKeys = AuthMethodPrivateKeyJWT, mustClientKeys(t, jwk(t, ecKey(t, elliptic.P256()), "c1", "", ""))
	})
	var answers []func(form url.Values) reply
	nonceAnswer := func(n string) func(url.Values) reply {
		return func(url.Values) reply {
			r := jsonReply(http.StatusBadRequest, map[string]string{"error": "use_dpop_nonce", "error_description": "nonce required"})
			r.header = http.Header{"Dpop-Nonce": {n}}
			return r
		}
	}
	ok := func(typ, nextNonce string) func(url.Values) reply {
		return func(url.Values) reply {
			r := jsonReply(http.StatusOK, map[string]any{"access_token": testAccess + "-2", "token_type": typ, "expires_in": 300})
			if nextNonce != "" {
				r.header = http.Header{"Dpop-Nonce": {nextNonce}}
			}
			return r
		}
	}
	p.tokenReply = func(form url.Values) reply {
		a := answers[0]
		answers = answers[1:]
		return a(form)
	}

	answers = append(answers, nonceAnswer("n-1"), ok("DPoP", ""))
	tok, err := c.Refresh(t.Context(), testRefresh, testSubject)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.DPoPKey != dk.Binding() {
		t.Errorf("DPoPKey %q, want the binding key's %q", tok.DPoPKey, dk.Binding())
	}
	answers = append(answers, ok("DPoP", "n-2"))
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); err != nil {
		t.Fatalf("second Refresh: %v", err)
	}
	answers = append(answers, ok("Bearer", ""))
	if tok, err := c.Refresh(t.Context(), testRefresh, testSubject); err != nil || tok.DPoPKey != "" {
		t.Fatalf("Refresh answered with a bearer token: %v, DPoPKey %q; want an unbound token", err, tok.DPoPKey)
	}
	answers = append(answers, nonceAnswer("n-3"), nonceAnswer("n-4"))
	_, err = c.Refresh(t.Context(), testRefresh, testSubject)
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "use_dpop_nonce" {
		t.Fatalf("Refresh after two nonce challenges: %v, want the second one's error (one retry only)", err)
	}

	reqs := p.tokenRequests()
	if len(reqs) != 6 {
		t.Fatalf("%d token requests, want 6", len(reqs))
	}
	wantNonce := []string{"", "n-1", "n-1", "n-2", "n-2", "n-3"}
	jtis, assertions := map[string]bool{}, map[string]bool{}
	for i, r := range reqs {
		if len(r.dpop) != 1 {
			t.Fatalf("request %d: %d DPoP headers", i, len(r.dpop))
		}
		cp := checkProof(t, r.dpop[0])
		if cp.jkt != dk.Binding() || cp.claims.HTM != "POST" || cp.claims.HTU != p.issuer+"/token" || cp.claims.ATH != "" {
			t.Errorf("request %d: proof %+v by %s", i, cp.claims, cp.jkt)
		}
		if cp.claims.Nonce != wantNonce[i] {
			t.Errorf("request %d: nonce %q, want %q", i, cp.claims.Nonce, wantNonce[i])
		}
		if jtis[cp.claims.JTI] || assertions[r.form.Get("client_assertion")] {
			t.Errorf("request %d reuses a proof jti or a client assertion", i)
		}
		jtis[cp.claims.JTI], assertions[r.form.Get("client_assertion")] = true, true
		if r.form.Get("grant_type") != "refresh_token" || r.form.Get("refresh_token") != testRefresh {
			t.Errorf("request %d lost its form: %v", i, r.form)
		}
	}
}

// TestDPoPTokenType: a DPoP token type is taken only as the answer to a
// proof; without DPoP keys it is refused like any unknown type.
func TestDPoPTokenType(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	p.tokenReply = func(url.Values) reply {
		return jsonReply(http.StatusOK, map[string]any{"access_token": testAccess, "token_type": "DPoP", "expires_in": 300})
	}
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("a DPoP token without a proof: %v, want ErrInvalidResponse", err)
	}
	if r := p.tokenRequests(); len(r) != 1 || len(r[0].dpop) != 0 {
		t.Errorf("without DPoP keys the request carried a proof")
	}
}

func TestValidNonce(t *testing.T) {
	for v, want := range map[string]bool{
		"abc-._~+/=!#$%&'()*,:;<>?@[]^`{|}": true,
		strings.Repeat("n", MaxDPoPNonce):   true,
		"":                                  false,
		strings.Repeat("n", MaxDPoPNonce+1): false,
		"a b":                               false,
		`a"b`:                               false,
		`a\b`:                               false,
		"a\r\nSet-Cookie: x=y":              false,
		"caf\u00e9":                         false,
		"a\x7f":                             false,
	} {
		if got := ValidNonce(v); got != want {
			t.Errorf("ValidNonce(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestResourceNonceChallenge(t *testing.T) {
	tests := []struct {
		name   string
		status int
		www    []string
		nonce  string
		want   bool
	}{
		{"quoted", 401, []string{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`}, "n1", true},
		{"token form, case", 401, []string{`dpop algs="ES256", error=use_dpop_nonce`}, "n1", true},
		{"second challenge", 401, []string{`Bearer realm="api"`, `DPoP error="use_dpop_nonce"`}, "n1", true},
		{"not 401", 400, []string{`DPoP error="use_dpop_nonce"`}, "n1", false},
		{"no nonce header", 401, []string{`DPoP error="use_dpop_nonce"`}, "", false},
		{"bad nonce", 401, []string{`DPoP error="use_dpop_nonce"`}, "a b", false},
		{"another error", 401, []string{`DPoP error="invalid_token"`}, "n1", false},
		{"a Bearer challenge", 401, []string{`Bearer error="use_dpop_nonce"`}, "n1", false},
		{"no challenge", 401, nil, "n1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.www {
				h.Add("WWW-Authenticate", v)
			}
			if tc.nonce != "" {
				h.Set("DPoP-Nonce", tc.nonce)
			}
			n, ok := ResourceNonceChallenge(&http.Response{StatusCode: tc.status, Header: h})
			if ok != tc.want || (ok && n != tc.nonce) {
				t.Errorf("= %q %v, want %v", n, ok, tc.want)
			}
		})
	}
}

// TestParseDPoPKeysRefuses: the DPoP key file follows the client key
// file's rules, errors named for it.
func TestParseDPoPKeysRefuses(t *testing.T) {
	p256 := ecKey(t, elliptic.P256())
	for _, data := range [][]byte{[]byte("nope"), jwkSet(jwk(t, &p256.PublicKey, "a", "", "")), jwkSet(jwk(t, []byte("0123456789abcdef0123456789abcdef"), "a", "HS256", ""))} {
		if _, err := ParseDPoPKeys(data); err == nil || !strings.HasPrefix(err.Error(), "oauth: DPoP keys: ") {
			t.Errorf("ParseDPoPKeys(%.30q) = %v, want a DPoP keys error", data, err)
		}
	}
}

// TestDPoPNoRetryOnOtherErrors: a 400 that carries a DPoP-Nonce but another
// error is not a challenge: no retry, its error stands, and the nonce is
// still kept for the next request.
func TestDPoPNoRetryOnOtherErrors(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(func(c *Config) { c.DPoP = mustDPoPKeys(t, jwk(t, edKey(t), "d1", "", "")) })
	p.tokenReply = func(url.Values) reply {
		r := jsonReply(http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		r.header = http.Header{"Dpop-Nonce": {"n-9"}}
		return r
	}
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("Refresh: %v, want invalid_grant's ErrReauthRequired", err)
	}
	c.Refresh(t.Context(), testRefresh, testSubject)
	reqs := p.tokenRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d token requests for two refreshes, want 2 (no retry)", len(reqs))
	}
	if n := checkProof(t, reqs[1].dpop[0]).claims.Nonce; n != "n-9" {
		t.Errorf("the next request's nonce %q, want n-9", n)
	}
}

// TestDPoPDiscovery: a provider that lists its DPoP algorithms without the
// binding key's fails discovery, naming both; Capabilities reports DPoP
// used and offered.
func TestDPoPDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		algs    []string
		wantErr string
		offered bool
	}{
		{name: "offered", algs: []string{"ES256", "EdDSA"}, offered: true},
		{name: "not advertised", algs: nil},
		{name: "another algorithm", algs: []string{"ES256", "PS256"}, wantErr: "DPoP proofs signed with ES256, PS256, not EdDSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			if tc.algs != nil {
				p.meta["dpop_signing_alg_values_supported"] = tc.algs
			}
			cfg := p.config()
			cfg.DPoP = mustDPoPKeys(t, jwk(t, edKey(t), "d1", "", ""))
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Discover(t.Context())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || c.Ready() {
					t.Fatalf("Discover = %v (ready %v), want %q", err, c.Ready(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			caps, _ := c.Capabilities()
			if !caps.DPoP || caps.DPoPOffered != tc.offered {
				t.Errorf("Capabilities DPoP %v offered %v, want true %v", caps.DPoP, caps.DPoPOffered, tc.offered)
			}
		})
	}
}

// TestDPoPProofAlgorithms: the hand-made proofs of every allowed key type
// and algorithm verify with go-jose (header typ and embedded public key,
// signature, claims), including a URL whose path needs JSON escaping.
func TestDPoPProofAlgorithms(t *testing.T) {
	rsaKey, _ := testKeys()
	for _, tc := range []struct {
		alg string
		key any
	}{
		{"ES256", ecKey(t, elliptic.P256())}, {"ES384", ecKey(t, elliptic.P384())}, {"ES512", ecKey(t, elliptic.P521())},
		{"EdDSA", edKey(t)}, {"RS256", rsaKey}, {"RS384", rsaKey}, {"RS512", rsaKey}, {"PS256", rsaKey}, {"PS384", rsaKey}, {"PS512", rsaKey},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			dk := mustDPoPKeys(t, jwk(t, tc.key, "k", tc.alg, ""))
			target := &url.URL{Scheme: "https", Host: "api.example", Path: `/a"b\c/d`}
			p, err := dk.Proof(dk.Binding(), "GET", target, "at", "n<1>&", testNow)
			if err != nil {
				t.Fatalf("Proof: %v", err)
			}
			tok, err := jwt.ParseSigned(p, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.alg)})
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			h := tok.Headers[0]
			if h.Algorithm != tc.alg || h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
				t.Fatalf("header alg %q typ %v jwk %v", h.Algorithm, h.ExtraHeaders["typ"], h.JSONWebKey)
			}
			var c proofClaims
			if err := tok.Claims(h.JSONWebKey.Key, &c); err != nil {
				t.Fatalf("signature: %v", err)
			}
			if c.HTU != target.String() || c.Nonce != "n<1>&" || c.HTM != "GET" {
				t.Errorf("claims %+v", c)
			}
			if tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(tp) != dk.Binding() {
				t.Error("the embedded key is not the binding key")
			}
		})
	}
}
