package oauth

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzParseClientKeys: any file either fails with an error (as a client key
// file and as a DPoP key file alike) or gives a set
// whose signing key is an allowed asymmetric one and whose published set is
// public keys only, each with a kid, "sig" and an alg, and whose DPoP proofs
// verify with go-jose.
func FuzzParseClientKeys(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"a","alg":"HS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"ES256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := ParseClientKeys(data)
		dk, derr := ParseDPoPKeys(data)
		if (err == nil) != (derr == nil) {
			t.Fatalf("client keys: %v; DPoP keys: %v: the two files follow one rule", err, derr)
		}
		if err != nil {
			if ck != nil || dk != nil {
				t.Fatal("keys and an error")
			}
			return
		}
		proof, err := dk.Proof(dk.Binding(), "GET", &url.URL{Scheme: "https", Host: "a", Path: "/p"}, "at", "", testNow)
		if err != nil {
			t.Fatalf("Proof: %v", err)
		}
		tok, err := jwt.ParseSigned(proof, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(dk.Alg())})
		if err != nil {
			t.Fatalf("proof does not parse: %v", err)
		}
		var c proofClaims
		if h := tok.Headers[0]; h.JSONWebKey == nil || tok.Claims(h.JSONWebKey.Key, &c) != nil || c.HTU != "https://a/p" {
			t.Fatalf("proof does not verify with its embedded key")
		}
		if _, alg := ck.Signing(); clientKeyAlgs[jose.SignatureAlgorithm(alg)] == "" {
			t.Fatalf("signing alg %q accepted", alg)
		}
		var pub jose.JSONWebKeySet
		if err := json.Unmarshal(ck.Public(), &pub); err != nil || len(pub.Keys) == 0 {
			t.Fatalf("published set %s: %v", ck.Public(), err)
		}
		for _, k := range pub.Keys {
			if !k.IsPublic() || k.KeyID == "" || k.Use != "sig" || k.Algorithm == "" {
				t.Fatalf("published key %+v", k)
			}
		}
		if _, err := ck.assertion("c", "https://issuer.example", testNow); err != nil {
			t.Fatalf("assertion: %v", err)
		}
	})
}
