package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jkt is the RFC 7638 thumbprint of key's public half.
func jkt(t *testing.T, key jose.JSONWebKey) string {
	t.Helper()
	pub := key.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// makeProof is a DPoP proof by key for method and htu, bound to the access
// token at, as an attacker holding key would make it.
func makeProof(t *testing.T, key jose.JSONWebKey, method, htu, at string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key.Key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	sum := sha256.Sum256([]byte(at))
	p, err := jwt.Signed(signer).Claims(map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": htu, "iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFAPI2DPoP runs the whole flow against oidc-provider in its FAPI 2.0
// profile: PAR required, private_key_jwt, DPoP-bound tokens with provider
// nonces (dpop_bound_access_tokens: a token request without a proof is
// refused). Each upstream request carries a fresh proof that an RFC 9449
// resource server verifies (key = the token's cnf.jkt, htm, htu, ath, iat,
// unique jti); the access token taken from the upstream, as a thief would
// from its logs, is refused without a proof, with the thief's own key, with
// a proof for another URL or method, or with a replayed proof (the
// control: a fresh proof by the BFF's key is accepted). In Chromium the
// sample page signs in through the same flow, calls the API and reads no
// token. Nonce challenges of the provider and of the upstream are each
// answered once. A bearer_only
// route sends the token to a legacy API. DPoP keys rotate by SIGHUP
// without ending the session.
func TestFAPI2DPoP(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	dir := t.TempDir()
	clientKey := keygenJWK(t, "ES256")
	clientFile := filepath.Join(dir, "client-keys.json")
	writeClientKeys(t, clientFile, clientKey)
	oldD, newD := keygenJWK(t, "ES256"), keygenJWK(t, "EdDSA")
	dpopFile := filepath.Join(dir, "dpop-keys.json")
	writeClientKeys(t, dpopFile, oldD)

	idp := startIDP(t, IDPOptions{
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		TokenAuthMethod:        "private_key_jwt",
		ClientJWKSURI:          public + "/auth/jwks.json",
		ClientKey:              &clientKey,
		FAPI:                   "2.0",
		AccessTTL:              4 * time.Second,
	})
	up := startUpstream(t, idp.Issuer(), DefaultAudience)
	legacy := startLegacyUpstream(t, idp.Issuer(), DefaultAudience)
	bff := startBFF(t, BFFOptions{
		Port: port, Issuer: idp.Issuer(), ClientID: idp.ClientID(), Upstream: up.URL(),
		ExtraEnv: []string{"BFF_OIDC_AUTH_METHOD=private_key_jwt", "BFF_OIDC_CLIENT_KEY_FILE=" + clientFile,
			"BFF_OIDC_DPOP_KEY_FILE=" + dpopFile, "BFF_OIDC_PAR=required"},
		ExtraRoutes: fmt.Sprintf("  - path: \"/legacy/\"\n    upstream: %q\n    token: \"user\"\n    bearer_only: true\n", legacy.URL()),
		StaticDir:   appPageDir(t),
	})
	if r := newBrowser(t).Get(t, plainAuthorizationURL(idp, public), nil); servesLogin(r) {
		t.Fatal("the FAPI 2.0 provider serves a plain authorization request: the profile is not on")
	}

	b := newBrowser(t)
	authURL := b.StartLogin(t, bff.URL(), "/")
	if q := authURL.Query(); q.Get("request_uri") == "" || q.Has("code_challenge") {
		t.Fatalf("authorization URL %s: want a pushed request", authURL)
	}
	if final := b.FinishLogin(t, authURL, bff.URL(), "alice", "pw"); final.Path != "/" || final.Query().Get("login_error") != "" {
		t.Fatalf("sign-in landed on %s", final)
	}
	st := idp.Stats(t)
	if st.TokenCalls["authorization_code"] != 2 || st.TokenErrors["authorization_code"] != 1 {
		t.Errorf("code exchange: %d calls, %d refused; want the nonce challenge answered once (2, 1)",
			st.TokenCalls["authorization_code"], st.TokenErrors["authorization_code"])
	}
	csrf := map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}
	call := func(step, path string) UpstreamRequest {
		t.Helper()
		if r := b.Get(t, bff.URL()+path, csrf); r.Status != http.StatusOK {
			t.Fatalf("%s: GET %s: %d %s", step, path, r.Status, r.Body)
		}
		target := up
		if strings.HasPrefix(path, "/legacy/") {
			target = legacy
		}
		last, _ := target.Last()
		return last
	}
	if got := call("signed in", "/api/x"); !got.DPoP || got.JKT != jkt(t, oldD) {
		t.Fatalf("upstream saw DPoP %v with cnf.jkt %q (%s); want a verified proof for a token bound to the BFF's key", got.DPoP, got.JKT, got.AuthError)
	}

	// The thief's view: the token as the upstream received it.
	stolen := up.SeenTokens()[0]
	target := up.URL() + "/api/x"
	thief := keygenJWK(t, "ES256")
	direct := func(method, auth, proof string) int {
		t.Helper()
		req, _ := http.NewRequest(method, target, nil)
		req.Header.Set("Authorization", auth)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := makeProof(t, oldD, http.MethodGet, target, stolen)
	for _, tc := range []struct {
		name, method, auth, proof string
		want                      int
	}{
		{"as a bearer token", http.MethodGet, "Bearer " + stolen, "", 401},
		{"without a proof", http.MethodGet, "DPoP " + stolen, "", 401},
		{"with the thief's own key", http.MethodGet, "DPoP " + stolen, makeProof(t, thief, http.MethodGet, target, stolen), 401},
		{"with a proof for another URL", http.MethodGet, "DPoP " + stolen, makeProof(t, oldD, http.MethodGet, up.URL()+"/api/other", stolen), 401},
		{"with a proof for another method", http.MethodGet, "DPoP " + stolen, makeProof(t, oldD, http.MethodDelete, target, stolen), 401},
		{"control: a fresh proof by the BFF's key", http.MethodGet, "DPoP " + stolen, good, 200},
		{"with that proof replayed", http.MethodGet, "DPoP " + stolen, good, 401},
	} {
		if got := direct(tc.method, tc.auth, tc.proof); got != tc.want {
			t.Errorf("stolen token %s: %d, want %d", tc.name, got, tc.want)
		}
	}

	// What a person sees, in Chromium: the sample page signs in through the
	// whole FAPI 2.0 flow, shows the user, calls the API through the proxy
	// (a DPoP proof the upstream verified), and page script reads no token.
	tab := startChromium(t)
	tab.SignIn(t, bff.URL(), "carol")
	if got := tab.Text(t, "#user"); !strings.HasPrefix(got, "Signed in as Test User carol") {
		t.Errorf("#user = %q after a FAPI 2.0 sign-in in Chromium", got)
	}
	whoami := tab.Fetch(t, http.MethodGet, "/api/whoami", map[string]string{"X-CSRF": "1"})
	if last, _ := up.Last(); whoami.Status != http.StatusOK || !last.DPoP || last.Sub != "carol" {
		t.Errorf("page fetch /api/whoami: %d; upstream DPoP %v for %q (%s)", whoami.Status, last.DPoP, last.Sub, last.AuthError)
	}
	for what, v := range map[string]string{
		"document.cookie": Eval[string](t, tab, `document.cookie`), "/api/whoami body": whoami.Body,
		"/auth/user body": tab.Fetch(t, http.MethodGet, "/auth/user", nil).Body,
	} {
		if strings.Contains(v, "eyJ") {
			t.Errorf("page script reads a JWT-looking string in %s", what)
		}
	}

	up.RequireNonce("upstream-nonce-1")
	call("upstream nonce", "/api/x")
	call("upstream nonce remembered", "/api/y")
	if n := up.Challenges(); n != 1 {
		t.Errorf("%d use_dpop_nonce answers for two requests, want 1 (answered once, then remembered)", n)
	}

	if got := call("bearer_only route", "/legacy/x"); !got.AuthOK || got.JKT != jkt(t, oldD) {
		t.Errorf("legacy upstream: AuthOK %v, cnf.jkt %q (%s); want the bound token taken as a bearer token", got.AuthOK, got.JKT, got.AuthError)
	}

	refreshed := func(step string, wantKey jose.JSONWebKey) {
		t.Helper()
		before := idp.Stats(t).RefreshSuccess
		time.Sleep(2500 * time.Millisecond) // past the 4 s token's 2 s refresh margin
		got := call(step, "/api/x")
		if after := idp.Stats(t).RefreshSuccess; after != before+1 {
			t.Fatalf("%s: %d refreshes, want 1", step, after-before)
		}
		if !got.DPoP || got.JKT != jkt(t, wantKey) {
			t.Fatalf("%s: DPoP %v, cnf.jkt %q; want a token bound to %s", step, got.DPoP, got.JKT, jkt(t, wantKey))
		}
	}
	reload := func(keys ...jose.JSONWebKey) {
		t.Helper()
		writeClientKeys(t, dpopFile, keys...)
		hupAndWait(t, bff, "DPoP keys reloaded")
	}
	refreshed("refresh with DPoP", oldD)
	reload(newD, oldD)
	if got := call("rotated: the bound token still proves with its key", "/api/x"); got.JKT != jkt(t, oldD) {
		t.Errorf("right after the rotation the token is bound to %q, want the old key's", got.JKT)
	}
	refreshed("rotated: the next token binds to the new key", newD)
	reload(newD)
	call("old key removed", "/api/x")

	if r := b.Post(t, bff.URL()+"/auth/logout", csrf, ""); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := b.Get(t, bff.URL()+"/api/x", csrf); r.Status != http.StatusUnauthorized {
		t.Errorf("/api/x after logout: %d, want 401", r.Status)
	}
}
