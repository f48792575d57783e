package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bff-project/bff/server"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutSigner stands in for the provider's back-channel logout, which the
// demo provider does not send: the BFF's HTTP client to the provider sees
// one more key in the provider's JWKS, and the test signs logout tokens
// with it.
type logoutSigner struct {
	key *rsa.PrivateKey
	kid string
}

func newLogoutSigner(t *testing.T) *logoutSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &logoutSigner{key: k, kid: "test-logout-" + rand.Text()}
}

// RoundTrip adds the signer's public key to any JWKS the provider answers.
func (s *logoutSigner) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) == nil && doc["keys"] != nil && doc["issuer"] == nil {
		var keys []json.RawMessage
		if json.Unmarshal(doc["keys"], &keys) == nil {
			pub, _ := json.Marshal(jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"})
			doc["keys"], _ = json.Marshal(append(keys, pub))
			body, _ = json.Marshal(doc)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func (s *logoutSigner) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: s.key, KeyID: s.kid}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A back-channel logout without sid revokes every session of its subject
// that started before it, and no session that starts after.
func TestBackchannelLogoutBySubject(t *testing.T) {
	ls := newLogoutSigner(t)
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		c.OIDC.HTTPClient = &http.Client{Transport: ls, Timeout: 10 * time.Second}
	}})
	before := e.browser()
	before.signIn("/")
	if r := before.do(http.MethodGet, "/api/x", e.apiHeaders()); r.StatusCode != http.StatusOK {
		t.Fatalf("the session before the logout does not work to begin with: %d %s", r.StatusCode, r.body)
	}
	var user struct {
		Sub string `json:"sub"`
	}
	before.get("/auth/user").json(t, &user)
	if user.Sub == "" {
		t.Fatal("no sub in /auth/user")
	}

	token := ls.sign(t, map[string]any{
		"iss": e.idp.Issuer(), "aud": testClientID, "sub": user.Sub,
		"iat": time.Now().Unix(), "jti": rand.Text(),
		"events": map[string]any{backchannelEvent: map[string]any{}},
	})
	req := mustRequest(t, http.MethodPost, e.base+"/auth/backchannel-logout", strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := before.send(before.bff, req); r.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s\nlogs:\n%s", r.StatusCode, r.body, e.logs)
	}
	loggedOut := time.Now()
	if !strings.Contains(e.logs.String(), `"msg":"back-channel logout","by":"sub"`) {
		t.Errorf("the log does not say the logout was by subject:\n%s", e.logs)
	}

	if r := before.do(http.MethodGet, "/api/x", e.apiHeaders()); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a session of the subject started before the logout: %d, want 401", r.StatusCode)
	}
	// Positive control: a session of the same subject started after the
	// logout works. Session start times are whole seconds: start in the
	// next one.
	time.Sleep(time.Until(loggedOut.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	after := e.browser()
	after.signIn("/")
	var again struct {
		Sub string `json:"sub"`
	}
	if r := after.get("/auth/user"); r.StatusCode != http.StatusOK {
		t.Fatalf("a session of the subject started after the logout: /auth/user %d, want 200", r.StatusCode)
	} else if r.json(t, &again); again.Sub != user.Sub {
		t.Fatalf("signed in again as %q, want %q", again.Sub, user.Sub)
	}
	if r := after.do(http.MethodGet, "/api/x", e.apiHeaders()); r.StatusCode != http.StatusOK {
		t.Errorf("a session of the subject started after the logout: %d, want 200; %s", r.StatusCode, r.body)
	}
}
