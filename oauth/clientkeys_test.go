package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwk is a private JWK for the tests; alg and use may be empty.
func jwk(t *testing.T, key any, kid, alg, use string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use})
	if err != nil {
		t.Fatalf("marshal JWK: %v", err)
	}
	return b
}

func jwkSet(keys ...json.RawMessage) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustClientKeys parses a set of the given private keys.
func mustClientKeys(t *testing.T, keys ...json.RawMessage) *ClientKeys {
	t.Helper()
	ck, err := ParseClientKeys(jwkSet(keys...))
	if err != nil {
		t.Fatalf("ParseClientKeys: %v", err)
	}
	return ck
}

func TestParseClientKeys(t *testing.T) {
	rsaKey, _ := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, p384, p521, ed := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), ecKey(t, elliptic.P521()), edKey(t)
	many := make([]json.RawMessage, MaxClientKeys+1)
	for i := range many {
		many[i] = jwk(t, p256, "k"+strings.Repeat("x", i), "", "")
	}
	tests := []struct {
		name     string
		data     []byte
		wantKid  string
		wantAlg  string
		wantErr  string
		wantKids []string
	}{
		{name: "EC P-256, alg from the key", data: jwkSet(jwk(t, p256, "a", "", "")), wantKid: "a", wantAlg: "ES256"},
		{name: "EC P-384", data: jwkSet(jwk(t, p384, "a", "", "sig")), wantKid: "a", wantAlg: "ES384"},
		{name: "EC P-521", data: jwkSet(jwk(t, p521, "a", "", "")), wantKid: "a", wantAlg: "ES512"},
		{name: "Ed25519", data: jwkSet(jwk(t, ed, "a", "", "")), wantKid: "a", wantAlg: "EdDSA"},
		{name: "RSA, alg from the key", data: jwkSet(jwk(t, rsaKey, "a", "", "")), wantKid: "a", wantAlg: "RS256"},
		{name: "RSA PS256", data: jwkSet(jwk(t, rsaKey, "a", "PS256", "")), wantKid: "a", wantAlg: "PS256"},
		{name: "the first key signs, all are published", data: jwkSet(jwk(t, ed, "new", "", ""), jwk(t, p256, "old", "", "")),
			wantKid: "new", wantAlg: "EdDSA", wantKids: []string{"new", "old"}},
		{name: "at most MaxClientKeys", data: jwkSet(many[:MaxClientKeys]...), wantKid: "k", wantAlg: "ES256"},

		{name: "not JSON", data: []byte("-----BEGIN PRIVATE KEY-----"), wantErr: "not a JWK set"},
		{name: "a single JWK, not a set", data: jwk(t, p256, "a", "", ""), wantErr: "no keys"},
		{name: "no keys", data: []byte(`{"keys":[]}`), wantErr: "no keys"},
		{name: "too many keys", data: jwkSet(many...), wantErr: "at most 16"},
		{name: "a public key", data: jwkSet(jwk(t, &p256.PublicKey, "a", "", "")), wantErr: "public key"},
		{name: "no kid", data: jwkSet(jwk(t, p256, "", "", "")), wantErr: "no kid"},
		{name: "kid too long", data: jwkSet(jwk(t, p256, strings.Repeat("k", 129), "", "")), wantErr: "longer than 128"},
		{name: "kid used twice", data: jwkSet(jwk(t, p256, "a", "", ""), jwk(t, ed, "a", "", "")), wantErr: `kid "a" is used twice`},
		{name: "an encryption key", data: jwkSet(jwk(t, p256, "a", "", "enc")), wantErr: `use is "enc"`},
		{name: "HS256 is never a client key", data: jwkSet(jwk(t, []byte(strings.Repeat("s", 32)), "a", "HS256", "")), wantErr: "cannot sign"},
		{name: "alg none", data: jwkSet(jwk(t, p256, "a", "none", "")), wantErr: `alg "none" is not allowed`},
		{name: "alg for another key type", data: jwkSet(jwk(t, rsaKey, "a", "ES256", "")), wantErr: "ES256 needs a P-256 key, this is RSA"},
		{name: "alg for another curve", data: jwkSet(jwk(t, p384, "a", "ES256", "")), wantErr: "ES256 needs a P-256 key, this is P-384"},
		{name: "RSA under 2048 bits", data: jwkSet(jwk(t, small, "a", "", "")), wantErr: "1024 bits"},
		{name: "a bad second key", data: jwkSet(jwk(t, p256, "a", "", ""), []byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}`)), wantErr: "key 1: not a valid JWK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ck, err := ParseClientKeys(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				for _, d := range []string{p256.D.Text(16), base64.RawURLEncoding.EncodeToString(p256.D.Bytes()), base64.RawURLEncoding.EncodeToString(ed.Seed())} {
					if strings.Contains(err.Error(), d) {
						t.Error("the error carries private key material")
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClientKeys: %v", err)
			}
			kid, alg := ck.Signing()
			if kid != tc.wantKid || alg != tc.wantAlg {
				t.Errorf("Signing() = %q %q, want %q %q", kid, alg, tc.wantKid, tc.wantAlg)
			}
			var pub jose.JSONWebKeySet
			if err := json.Unmarshal(ck.Public(), &pub); err != nil {
				t.Fatalf("Public() is not a JWK set: %v", err)
			}
			if tc.wantKids != nil {
				var kids []string
				for _, k := range pub.Keys {
					kids = append(kids, k.KeyID)
				}
				if strings.Join(kids, ",") != strings.Join(tc.wantKids, ",") {
					t.Errorf("published kids %v, want %v", kids, tc.wantKids)
				}
			}
			for _, k := range pub.Keys {
				if !k.IsPublic() || k.Use != "sig" || k.Algorithm == "" {
					t.Errorf("published key %q: public %v use %q alg %q", k.KeyID, k.IsPublic(), k.Use, k.Algorithm)
				}
			}
			for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`} {
				if strings.Contains(string(ck.Public()), private) {
					t.Errorf("Public() has the private member %s", private)
				}
			}
		})
	}
}

// verifyAssertion checks form's client assertion against pub as a
// provider would and returns its claims.
func verifyAssertion(t *testing.T, form url.Values, pub crypto.PublicKey, kid, alg, issuer string) jwt.Claims {
	t.Helper()
	if form.Get("client_assertion_type") != ClientAssertionType || form.Get("client_id") != testClientID {
		t.Fatalf("client_assertion_type %q client_id %q", form.Get("client_assertion_type"), form.Get("client_id"))
	}
	if form.Has("client_secret") {
		t.Error("a client_secret travels with the assertion")
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if h := tok.Headers[0]; h.KeyID != kid || h.Algorithm != alg {
		t.Errorf("assertion header kid %q alg %q, want %q %q", h.KeyID, h.Algorithm, kid, alg)
	}
	var c jwt.Claims
	if err := tok.Claims(pub, &c); err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: testClientID, Subject: testClientID,
		AnyAudience: jwt.Audience{issuer}, Time: testNow}, 0); err != nil {
		t.Errorf("assertion claims: %v", err)
	}
	if len(c.Audience) != 1 || c.IssuedAt == nil || c.Expiry == nil ||
		c.Expiry.Time().Sub(c.IssuedAt.Time()) != time.Minute || !c.IssuedAt.Time().Equal(testNow) {
		t.Errorf("assertion aud %v iat %v exp %v: want the issuer alone, iat now, exp a minute later", c.Audience, c.IssuedAt, c.Expiry)
	}
	if len(c.ID) < 32 {
		t.Errorf("jti %q: want 32+ random characters", c.ID)
	}
	return c
}

// TestPrivateKeyJWT: the code exchange, a refresh, a push and a revocation
// each carry a fresh assertion signed with the first key, and nothing else
// that authenticates; Replace switches the key the next request signs with.
func TestPrivateKeyJWT(t *testing.T) {
	p := newFakeProvider(t)
	p.meta["token_endpoint_auth_methods_supported"] = []string{AuthMethodPrivateKeyJWT}
	p.meta["pushed_authorization_request_endpoint"] = p.issuer + "/par"
	k1, k2 := ecKey(t, elliptic.P256()), edKey(t)
	keys := mustClientKeys(t, jwk(t, k1, "k1", "", ""), jwk(t, k2, "k2", "", ""))
	c := p.client(func(c *Config) {
		c.AuthMethod = AuthMethodPrivateKeyJWT
		c.ClientKeys = keys // the old secret stays configured, as in a migration: it must not travel
	})
	if caps, _ := c.Capabilities(); caps.TokenAuthMethod != AuthMethodPrivateKeyJWT {
		t.Errorf("Capabilities().TokenAuthMethod = %q", caps.TokenAuthMethod)
	}
	f := NewFlow()
	p.tokenReply = func(form url.Values) reply {
		claims := p.idClaims(f.Nonce)
		claims["at_hash"] = atHash(testAccess)
		return jsonReply(http.StatusOK, map[string]any{"access_token": testAccess, "token_type": "Bearer",
			"expires_in": 300, "refresh_token": testRefresh, "id_token": signGood(t, claims)})
	}
	if _, err := c.AuthURL(t.Context(), f); err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	if _, err := c.Callback(t.Context(), f, url.Values{"state": {f.State}, "code": {testCode}, "iss": {p.issuer}}); err != nil {
		t.Fatalf("Callback: %v", err)
	}
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := c.Revoke(t.Context(), testRefresh, "refresh_token"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	keys.Replace(mustClientKeys(t, jwk(t, k2, "k2", "", ""), jwk(t, k1, "k1", "", "")))
	if _, err := c.Refresh(t.Context(), testRefresh, testSubject); err != nil {
		t.Fatalf("Refresh after Replace: %v", err)
	}

	type sent struct {
		what string
		req  request
	}
	tokens, revokes := p.tokenRequests(), p.revokeRequests()
	if len(tokens) != 3 || len(p.parReqs) != 1 || len(revokes) != 1 {
		t.Fatalf("%d token, %d PAR, %d revocation requests; want 3, 1, 1", len(tokens), len(p.parReqs), len(revokes))
	}
	all := []sent{{"push", p.parReqs[0]}, {"code exchange", tokens[0]}, {"refresh", tokens[1]}, {"revocation", revokes[0]}}
	jtis := map[string]string{}
	for _, s := range all {
		if s.req.authHeader != "" {
			t.Errorf("%s: Authorization header %q next to the assertion", s.what, s.req.authHeader)
		}
		c := verifyAssertion(t, s.req.form, &k1.PublicKey, "k1", "ES256", p.issuer)
		if prev, ok := jtis[c.ID]; ok {
			t.Errorf("%s reuses the jti of the %s", s.what, prev)
		}
		jtis[c.ID] = s.what
	}
	if g := tokens[0].form.Get("grant_type"); g != "authorization_code" || tokens[0].form.Get("code") != testCode {
		t.Errorf("code exchange form lost its grant: grant_type %q", g)
	}
	if tokens[1].form.Get("refresh_token") != testRefresh {
		t.Error("refresh form lost its refresh_token")
	}
	c2 := verifyAssertion(t, tokens[2].form, k2.Public(), "k2", "EdDSA", p.issuer)
	if _, ok := jtis[c2.ID]; ok {
		t.Error("the assertion after Replace reuses a jti")
	}
}

// TestPrivateKeyJWTDiscovery: a provider that lists its client
// authentication methods or assertion algorithms without ours fails
// discovery with an error that says so; one that lists nothing is taken.
func TestPrivateKeyJWTDiscovery(t *testing.T) {
	tests := []struct {
		name    string
		meta    func(m map[string]any)
		wantErr string
	}{
		{name: "listed", meta: func(m map[string]any) {
			m["token_endpoint_auth_methods_supported"] = []string{AuthMethodBasic, AuthMethodPrivateKeyJWT}
			m["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "ES256"}
		}},
		{name: "nothing listed", meta: func(m map[string]any) {
			delete(m, "token_endpoint_auth_methods_supported")
		}},
		{name: "method not offered", meta: func(m map[string]any) {}, wantErr: "does not offer private_key_jwt"},
		{name: "algorithm not offered", meta: func(m map[string]any) {
			m["token_endpoint_auth_methods_supported"] = []string{AuthMethodPrivateKeyJWT}
			m["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "PS256"}
		}, wantErr: "signed with RS256, PS256, not ES256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			tc.meta(p.meta)
			cfg := p.config()
			cfg.AuthMethod, cfg.ClientSecret = AuthMethodPrivateKeyJWT, ""
			cfg.ClientKeys = mustClientKeys(t, jwk(t, ecKey(t, elliptic.P256()), "k1", "", ""))
			c, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = c.Discover(t.Context())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Discover: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrProvider) {
				t.Fatalf("Discover = %v, want a configuration error containing %q", err, tc.wantErr)
			}
			if c.Ready() {
				t.Error("ready after a refused discovery")
			}
		})
	}
}

// TestNewPrivateKeyJWT: private_key_jwt needs keys and no secret; the
// secret methods still need theirs.
func TestNewPrivateKeyJWT(t *testing.T) {
	keys := mustClientKeys(t, jwk(t, edKey(t), "k1", "", ""))
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{name: "keys, no secret", edit: func(c *Config) { c.AuthMethod, c.ClientSecret, c.ClientKeys = AuthMethodPrivateKeyJWT, "", keys }},
		{name: "no keys", edit: func(c *Config) { c.AuthMethod = AuthMethodPrivateKeyJWT }, wantErr: "needs the client's keys"},
		{name: "keys do not replace a secret", edit: func(c *Config) { c.ClientSecret, c.ClientKeys = "", keys }, wantErr: "client secret is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.edit(&cfg)
			_, err := New(cfg)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("New = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
