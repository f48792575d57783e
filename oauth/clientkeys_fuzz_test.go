package oauth

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzParseClientKeys: any file either fails with an error or gives a set
// whose signing key is an allowed asymmetric one and whose published set is
// public keys only, each with a kid, "sig" and an alg.
func FuzzParseClientKeys(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"a","alg":"HS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"ES256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := ParseClientKeys(data)
		if err != nil {
			if ck != nil {
				t.Fatal("keys and an error")
			}
			return
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
