package oauth

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzDPoPChallenge: whatever a resource server or token endpoint answers,
// a nonce is taken only from a challenge of the right status and error and
// only when it is safe to echo (ValidNonce); a token endpoint's body is
// always handed back whole.
func FuzzDPoPChallenge(f *testing.F) {
	f.Add(401, `DPoP error="use_dpop_nonce"`, "n1", `{}`)
	f.Add(401, `DPoP algs="ES256 EdDSA", error=use_dpop_nonce`, "eyJ7S_zG.eyJH0-Z.HX4w-7v", ``)
	f.Add(400, ``, "n1", `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
	f.Add(400, ``, "n1\r\nX: y", `{"error":"use_dpop_nonce"}`)
	f.Add(400, ``, "n1", `{"error":"invalid_dpop_proof"}`)
	f.Add(401, `Bearer, DPoP error="use_dpop_nonce"`, "n\"1", `not json`)
	f.Fuzz(func(t *testing.T, status int, www, nonce, body string) {
		h := http.Header{}
		h.Set("WWW-Authenticate", www)
		h.Set("DPoP-Nonce", nonce)
		if n, ok := ResourceNonceChallenge(&http.Response{StatusCode: status, Header: h}); ok {
			if status != http.StatusUnauthorized || n != nonce || !ValidNonce(n) {
				t.Fatalf("resource challenge %d %q -> nonce %q", status, www, n)
			}
		}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
		n, ok := tokenNonceChallenge(resp)
		if ok && (status != http.StatusBadRequest || n != nonce || !ValidNonce(n) || !strings.Contains(body, "use_dpop_nonce")) {
			t.Fatalf("token challenge %d %q -> nonce %q", status, body, n)
		}
		if rest, _ := io.ReadAll(resp.Body); len(body) <= 64<<10 && string(rest) != body {
			t.Fatalf("the answer's body changed: %q -> %q", body, rest)
		}
	})
}
