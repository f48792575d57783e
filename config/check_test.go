package config

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/bff-project/bff/demo"
)

// check is `bff check -config path [-online]` after the command line: Load,
// then Check with the process's environment. It returns what Check wrote.
func check(path string, getenv func(string) string, online bool) (string, error) {
	c, err := Load(path, getenv)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = c.Check(context.Background(), &out, os.Environ(), online)
	return out.String(), err
}

// TestCheckReportsProvider: `bff check` runs discovery and says what the
// provider offers, the RFC 9207 iss parameter among it, and how the mix-up
// defense works without it. An issuer that the provider does not confirm is
// a configuration error; a provider that cannot be reached is not.
func TestCheckReportsProvider(t *testing.T) {
	idp, err := demo.StartProvider(t.Context(), demo.ProviderConfig{
		Addr: "127.0.0.1:0", ClientID: "bff", ClientSecret: "s3cret-check",
		RedirectURIs: []string{"http://localhost:18080/auth/callback"},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	// A provider whose discovery names another issuer (a mix-up, or a
	// typo in oidc.issuer).
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"https://evil.example","authorization_endpoint":"https://evil.example/a","token_endpoint":"https://evil.example/t","jwks_uri":"https://evil.example/k"}`))
	}))
	t.Cleanup(liar.Close)
	// A provider that sends RFC 9207 iss (oidc-provider does).
	var issURL string
	withIss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%[1]s/auth","token_endpoint":"%[1]s/token","jwks_uri":"%[1]s/jwks","authorization_response_iss_parameter_supported":true,"token_endpoint_auth_methods_supported":["client_secret_post"]}`, issURL)
	}))
	t.Cleanup(withIss.Close)
	issURL = withIss.URL
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	checkWith := func(issuer string, online bool) (string, error) {
		path := writeConfig(t, t.TempDir(), func(m map[string]any) { oidcOf(m)["issuer"] = issuer })
		return check(path, env(map[string]string{"BFF_KEYS_SECRETS": secretTwo}), online)
	}
	out, err := checkWith(idp.Issuer(), false)
	if err != nil {
		t.Fatalf("check against the demo provider: %v\n%s", err, out)
	}
	for _, want := range []string{"discovery ok", "client authentication: client_secret_basic", "RFC 9207 iss parameter: ", "end_session_endpoint): offered", "RFC 7009): offered"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "not advertised: the mix-up defense rests on the pinned issuer") && !strings.Contains(out, "iss parameter: advertised") {
		t.Errorf("check output does not say how mix-up is defended:\n%s", out)
	}

	out, err = checkWith(withIss.URL, false)
	if err != nil {
		t.Fatalf("check against a provider with iss: %v\n%s", err, out)
	}
	for _, want := range []string{"iss parameter: advertised", "client authentication: client_secret_post", "end_session_endpoint): not offered", "RFC 7009): not offered"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	if out, err := checkWith(liar.URL, false); err == nil || !strings.Contains(err.Error(), "oidc.issuer") {
		t.Errorf("check accepted a provider that names another issuer: err %v\n%s", err, out)
	}
	out, err = checkWith(down.URL, false)
	if err != nil {
		t.Fatalf("an unreachable provider failed check: %v", err)
	}
	if !strings.Contains(out, "not reachable from here now") {
		t.Errorf("check output does not say the provider is unreachable:\n%s", out)
	}

	// -online: the unreachable provider fails; the demo provider's keys are
	// fetched and counted; a provider whose jwks_uri holds no key fails.
	if out, err := checkWith(down.URL, true); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("check -online accepted an unreachable provider: %v\n%s", err, out)
	}
	out, err = checkWith(idp.Issuer(), true)
	if err != nil || !strings.Contains(out, "ID-token signing keys (jwks_uri): 1 usable") {
		t.Errorf("check -online against the demo provider: %v\n%s", err, out)
	}
	if out, err := checkWith(withIss.URL, true); err == nil || !strings.Contains(err.Error(), "signing keys") {
		t.Errorf("check -online accepted a provider whose jwks_uri holds no key: %v\n%s", err, out)
	}
}

func TestCheckPrintsNoSecrets(t *testing.T) {
	t.Setenv("BFF_OIDC_CLIENT_SECERT", "typo-secret-value")
	const adminToken = "admin-token-for-the-check-test-0123456789"
	s, err := check("testdata/valid.yaml", env(map[string]string{
		"BFF_KEYS_SECRETS": secretTwo,
		"BFF_ADMIN_LISTEN": "127.0.0.1:19091",
		"BFF_ADMIN_TOKEN":  adminToken,
	}), false)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, want := range []string{"warning: BFF_OIDC_CLIENT_SECERT names no config field", "config ok", "admin API: on 127.0.0.1:19091", "127.0.0.1:18080", "https://idp.example.com", "/api/", "http://127.0.0.1:9000", "/public/", "https://public.example.com/base", "__Host-Http-app"} {
		if !strings.Contains(s, want) {
			t.Errorf("check output lacks %q:\n%s", want, s)
		}
	}
	for _, secret := range []string{"file-client-secret-XYZ", secretOne, secretTwo, string(decode(t, secretTwo)), adminToken, "typo-secret-value"} {
		if strings.Contains(s, secret) {
			t.Errorf("check output shows a secret:\n%s", s)
		}
	}
}
