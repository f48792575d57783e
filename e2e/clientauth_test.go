package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keygenJWK runs `bff keygen -jwk alg` and returns the one private key it
// printed, as an operator would make it.
func keygenJWK(t *testing.T, alg string) jose.JSONWebKey {
	t.Helper()
	out, err := exec.Command(bffBinary(t), "keygen", "-jwk", alg).Output()
	if err != nil {
		t.Fatalf("bff keygen -jwk %s: %v", alg, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(out, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].IsPublic() {
		t.Fatalf("bff keygen -jwk %s printed no private key: %v", alg, err)
	}
	return set.Keys[0]
}

// writeClientKeys writes the key set file oidc.client_key_file names.
func writeClientKeys(t *testing.T, path string, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// hupAndWait sends the BFF SIGHUP and waits (5 s at most) until its log
// says line once more than before.
func hupAndWait(t *testing.T, bff *BFF, line string) {
	t.Helper()
	n := strings.Count(bff.Logs(), line)
	if err := bff.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(bff.Logs(), line) == n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after SIGHUP; logs:\n%s", line, tail(bff.Logs(), 4<<10))
		}
	}
}

// TestPrivateKeyJWT runs the BFF as a client that has no secret at the
// provider at all (oidc-provider with token_endpoint_auth_method
// private_key_jwt and the BFF's jwks.json as the client's jwks_uri): the
// push, the code exchange, every refresh and the logout's revocation are
// authenticated with client assertions, which the provider verifies (the
// control: an assertion signed by another key under the same kid is
// invalid_client). Keys rotate by SIGHUP without ending the session: the
// next key is published first, then signs, then the old one leaves.
func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	oldKey, newKey := keygenJWK(t, "ES256"), keygenJWK(t, "EdDSA")
	keyFile := filepath.Join(t.TempDir(), "client-keys.json")
	writeClientKeys(t, keyFile, oldKey, newKey) // the next key published, not yet signing

	idp := startIDP(t, IDPOptions{
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		TokenAuthMethod:        "private_key_jwt",
		ClientJWKSURI:          public + "/auth/jwks.json",
		ClientKey:              &oldKey,
		AccessTTL:              4 * time.Second,
	})
	up := startUpstream(t, idp.Issuer(), DefaultAudience)
	bff := startBFF(t, BFFOptions{
		Port: port, Issuer: idp.Issuer(), ClientID: idp.ClientID(), Upstream: up.URL(),
		ExtraEnv: []string{"BFF_OIDC_AUTH_METHOD=private_key_jwt", "BFF_OIDC_CLIENT_KEY_FILE=" + keyFile},
	})

	b := newBrowser(t)
	final := b.FinishLogin(t, b.StartLogin(t, bff.URL(), "/"), bff.URL(), "alice", "pw")
	if final.Path != "/" || final.Query().Get("login_error") != "" {
		t.Fatalf("sign-in landed on %s", final)
	}
	csrf := map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}
	if r := b.Get(t, bff.URL()+"/auth/user", csrf); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"sub":"alice"`) {
		t.Fatalf("/auth/user after sign-in: %d %s", r.Status, r.Body)
	}
	st := idp.Stats(t)
	if st.ClientAssertions[oldKey.KeyID] < 2 || st.ClientAssertions[newKey.KeyID] != 0 {
		t.Fatalf("assertions by kid %v after sign-in: want the push and the code exchange by %s only", st.ClientAssertions, oldKey.KeyID)
	}

	published := func() []string {
		t.Helper()
		r := b.Get(t, bff.URL()+"/auth/jwks.json", nil)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(r.Body, &set); r.Status != http.StatusOK || err != nil {
			t.Fatalf("GET /auth/jwks.json: %d %v", r.Status, err)
		}
		var kids []string
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Errorf("jwks.json publishes the private part of %s", k.KeyID)
			}
			kids = append(kids, k.KeyID)
		}
		return kids
	}
	if got := published(); !slices.Equal(got, []string{oldKey.KeyID, newKey.KeyID}) {
		t.Errorf("jwks.json lists %v, want the key file's two kids in order", got)
	}

	// The control: the provider checks the assertion's signature. Client
	// authentication comes before the grant, so a good assertion with a bad
	// refresh token is invalid_grant, a forged one invalid_client.
	forged := keygenJWK(t, "ES256")
	forged.KeyID = oldKey.KeyID
	bogus := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-refresh-token"}}
	for _, tc := range []struct {
		key  *jose.JSONWebKey
		want string
	}{{&forged, "invalid_client"}, {&oldKey, "invalid_grant"}} {
		_, body, err := idp.AssertionPost(idp.Issuer()+"/token", url.Values(bogus), tc.key)
		if err != nil || !strings.Contains(string(body), `"error":"`+tc.want+`"`) {
			t.Errorf("token request with an assertion by %s key: %v %s, want %s", map[bool]string{true: "a forged", false: "the real"}[tc.key == &forged], err, body, tc.want)
		}
	}

	refreshed := func(step string) {
		t.Helper()
		before := idp.Stats(t).RefreshSuccess
		time.Sleep(2500 * time.Millisecond) // past the 4 s token's 2 s refresh margin
		if r := b.Get(t, bff.URL()+"/api/x", csrf); r.Status != http.StatusOK {
			t.Fatalf("%s: /api/x: %d %s", step, r.Status, r.Body)
		}
		if after := idp.Stats(t).RefreshSuccess; after != before+1 {
			t.Fatalf("%s: %d refreshes, want 1", step, after-before)
		}
	}
	reload := func(keys ...jose.JSONWebKey) {
		t.Helper()
		writeClientKeys(t, keyFile, keys...)
		hupAndWait(t, bff, "client keys reloaded")
	}

	refreshed("before rotation")
	reload(newKey, oldKey) // the new key signs
	refreshed("new key signing")
	if n := idp.Stats(t).ClientAssertions[newKey.KeyID]; n != 1 {
		t.Errorf("%d assertions by the new key after one refresh, want 1", n)
	}
	reload(newKey) // the old key leaves
	refreshed("old key removed")
	if got := published(); !slices.Equal(got, []string{newKey.KeyID}) {
		t.Errorf("jwks.json lists %v after the old key left, want only %s", got, newKey.KeyID)
	}

	before := idp.Stats(t)
	if r := b.Post(t, bff.URL()+"/auth/logout", csrf, ""); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	after := idp.Stats(t)
	if after.Revocations <= before.Revocations || after.ClientAssertions[newKey.KeyID] <= before.ClientAssertions[newKey.KeyID] {
		t.Errorf("logout: revocations %d -> %d, assertions %v -> %v: want the refresh token revoked with an assertion",
			before.Revocations, after.Revocations, before.ClientAssertions, after.ClientAssertions)
	}
	for _, k := range []jose.JSONWebKey{oldKey, newKey} {
		priv, _ := json.Marshal(k)
		var m map[string]string
		json.Unmarshal(priv, &m)
		if strings.Contains(bff.Logs(), m["d"]) {
			t.Errorf("the BFF's logs carry the private part of %s", k.KeyID)
		}
	}
}
