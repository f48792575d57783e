package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// newFuzzProvider serves the discovery document and JWKS of the fake
// provider in provider_test.go (same issuer layout, same signing key), for a
// fuzz target that has no *testing.T to build a fakeProvider with.
func newFuzzProvider(f *testing.F) (*Client, string) {
	f.Helper()
	key, _ := testKeys()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)
	meta := map[string]any{
		"issuer":                                srv.URL,
		"authorization_endpoint":                srv.URL + "/authorize",
		"token_endpoint":                        srv.URL + "/token",
		"jwks_uri":                              srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(http.StatusOK, meta).write(w)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &key.PublicKey, KeyID: testKID, Algorithm: string(jose.RS256), Use: "sig",
		}}}).write(w)
	})
	c, err := New(Config{
		Issuer: srv.URL, ClientID: testClientID, ClientSecret: testSecret, RedirectURL: testRedirect,
		HTTPClient: srv.Client(), Now: fixedNow,
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Discover(ctx); err != nil {
		f.Fatal(err)
	}
	return c, srv.URL
}

// signedByProvider reports whether raw is a compact JWS whose signature
// verifies under the provider's published key.
func signedByProvider(raw string) bool {
	key, _ := testKeys()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	})
	if err != nil {
		return false
	}
	_, err = jws.Verify(&key.PublicKey)
	return err == nil
}

// FuzzLogoutToken feeds arbitrary strings to VerifyLogoutToken of a
// discovered client. It must never panic, and whatever it accepts must have
// been signed by the provider's key and carry a jti and a sub or sid.
//
// The checked-in seeds (testdata/fuzz/FuzzLogoutToken) cannot hold a token
// signed by the provider: its key is generated per run. The valid tokens are
// added here at run time, signed with that key at the fixed clock.
func FuzzLogoutToken(f *testing.F) {
	c, issuer := newFuzzProvider(f)
	key, other := testKeys()
	enc := base64.RawURLEncoding.EncodeToString
	claims := func(edit func(map[string]any)) map[string]any {
		m := map[string]any{
			"iss": issuer, "aud": testClientID, "iat": testNow.Unix(), "jti": "jti-fuzz",
			"sub": testSubject, "sid": testSID,
			"events": map[string]any{backchannelEvent: map[string]any{}},
		}
		if edit != nil {
			edit(m)
		}
		return m
	}
	signWith := func(alg jose.SignatureAlgorithm, k any, kid, typ string, m map[string]any) string {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(alg)}}, opts)
		if err != nil {
			f.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		obj, err := s.Sign(b)
		if err != nil {
			f.Fatal(err)
		}
		out, err := obj.CompactSerialize()
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	good := signWith(jose.RS256, key, testKID, "logout+jwt", claims(nil))
	if _, err := c.VerifyLogoutToken(context.Background(), good); err != nil {
		f.Fatalf("the provider-signed seed is refused, the target would prove nothing: %v", err)
	}
	f.Add(good)
	f.Add(signWith(jose.RS256, key, testKID, "JWT", claims(func(m map[string]any) { delete(m, "sid") })))
	f.Add(signWith(jose.RS256, key, testKID, "JWT", claims(func(m map[string]any) { m["nonce"] = "n" })))
	f.Add(signWith(jose.RS256, key, testKID, "at+jwt", claims(nil)))
	f.Add(signWith(jose.RS256, key, "", "logout+jwt", claims(nil)))
	f.Add(signWith(jose.PS256, key, testKID, "logout+jwt", claims(nil)))
	f.Add(signWith(jose.RS256, other, testKID, "logout+jwt", claims(nil)))
	f.Add(signWith(jose.HS256, []byte(testSecret), testKID, "logout+jwt", claims(nil)))
	f.Add(enc([]byte(`{"alg":"none"}`)) + "." + good[len(good)/3:len(good)/2])

	f.Fuzz(func(t *testing.T, raw string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lt, err := c.VerifyLogoutToken(ctx, raw)
		if err != nil {
			if lt != nil {
				t.Fatalf("VerifyLogoutToken returned a token and an error")
			}
			return
		}
		if !signedByProvider(raw) {
			t.Fatalf("VerifyLogoutToken accepted a token the provider's key did not sign: %q", raw)
		}
		if lt.JTI == "" || (lt.Subject == "" && lt.SessionID == "") {
			t.Fatalf("VerifyLogoutToken accepted a token without jti or without sub and sid: %+v", lt)
		}
	})
}
