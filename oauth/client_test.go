package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func validConfig() Config {
	return Config{
		Issuer:       "https://idp.example.test",
		ClientID:     testClientID,
		ClientSecret: testSecret,
		RedirectURL:  testRedirect,
	}
}

type newTest struct {
	name    string
	edit    func(*Config)
	wantErr bool
}

func (tc newTest) run(t *testing.T) {
	cfg := validConfig()
	if tc.edit != nil {
		tc.edit(&cfg)
	}
	c, err := New(cfg)
	if tc.wantErr {
		if err == nil {
			t.Fatal("New accepted an invalid config")
		}
		if c != nil {
			t.Error("New returned a client with an error")
		}
		assertNoLeak(t, err, []string{testSecret})
		return
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.Ready() {
		t.Error("Ready() before Discover")
	}
	if c.Issuer() != cfg.Issuer {
		t.Errorf("Issuer() = %q, want %q", c.Issuer(), cfg.Issuer)
	}
}

func TestNew(t *testing.T) {
	tests := []newTest{
		{name: "valid"},
		{name: "valid with scopes and params", edit: func(c *Config) {
			c.Scopes = []string{"openid", "email"}
			c.AuthParams = map[string]string{"audience": "api", "resource": "https://api.example.test"}
			c.AuthMethod = AuthMethodPost
		}},
		{name: "valid basic", edit: func(c *Config) { c.AuthMethod = AuthMethodBasic }},
		{name: "missing issuer", edit: func(c *Config) { c.Issuer = "" }, wantErr: true},
		{name: "relative issuer", edit: func(c *Config) { c.Issuer = "/idp" }, wantErr: true},
		{name: "issuer without scheme", edit: func(c *Config) { c.Issuer = "idp.example.test" }, wantErr: true},
		{name: "unparsable issuer", edit: func(c *Config) { c.Issuer = "https://idp\x7f.example" }, wantErr: true},
		{name: "missing client id", edit: func(c *Config) { c.ClientID = "" }, wantErr: true},
		{name: "missing client secret", edit: func(c *Config) { c.ClientSecret = "" }, wantErr: true},
		{name: "missing redirect", edit: func(c *Config) { c.RedirectURL = "" }, wantErr: true},
		{name: "relative redirect", edit: func(c *Config) { c.RedirectURL = "/auth/callback" }, wantErr: true},
		{name: "scheme-relative redirect", edit: func(c *Config) { c.RedirectURL = "//app.example.test/cb" }, wantErr: true},
		{name: "scopes without openid", edit: func(c *Config) { c.Scopes = []string{"profile", "email"} }, wantErr: true},
		{name: "unknown auth method", edit: func(c *Config) { c.AuthMethod = "private_key_jwt" }, wantErr: true},
		{name: "auth method wrong case", edit: func(c *Config) { c.AuthMethod = "Client_Secret_Basic" }, wantErr: true},
	}
	for _, k := range []string{
		"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
		"code_challenge", "code_challenge_method", "response_mode", "request", "request_uri",
	} {
		tests = append(tests, newTest{
			name:    "AuthParams override " + k,
			edit:    func(c *Config) { c.AuthParams = map[string]string{"audience": "api", k: "x"} },
			wantErr: true,
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if c.httpClient == nil || c.httpClient.Timeout == 0 {
		t.Error("nil HTTPClient should become a client with a timeout")
	}
	if c.now == nil {
		t.Error("nil Now should become time.Now")
	}
}

type discoverTest struct {
	name    string
	meta    func(p *fakeProvider, m map[string]any)
	reply   *reply // replaces the discovery document
	down    bool   // the provider is gone
	wantErr error
	notErr  []error
	check   func(t *testing.T, c *Client)
}

func (tc discoverTest) run(t *testing.T) {
	p := newFakeProvider(t)
	if tc.meta != nil {
		tc.meta(p, p.meta)
	}
	p.metaReply = tc.reply
	c, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	if tc.down {
		p.srv.Close()
	}
	err = c.Discover(t.Context())
	checkErr(t, err, tc.wantErr, tc.notErr...)
	assertNoLeak(t, err, p.secrets())
	if got, want := c.Ready(), tc.wantErr == nil; got != want {
		t.Errorf("Ready() = %v, want %v", got, want)
	}
	if tc.check != nil && err == nil {
		tc.check(t, c)
	}
}

func TestDiscover(t *testing.T) {
	tests := []discoverTest{
		{name: "ok"},
		{name: "provider down", down: true, wantErr: ErrProvider},
		{name: "server error", reply: &reply{status: http.StatusInternalServerError, body: "boom"}, wantErr: ErrProvider},
		{name: "not found", reply: &reply{status: http.StatusNotFound}, wantErr: ErrProvider},
		{name: "not JSON", reply: &reply{status: http.StatusOK, contentType: "application/json", body: "<html>"}, wantErr: errAny},
		{
			name:    "issuer mismatch",
			meta:    func(p *fakeProvider, m map[string]any) { m["issuer"] = "https://evil.example.test" },
			wantErr: errAny,
			notErr:  []error{ErrProvider},
		},
		{
			name:    "issuer with trailing slash",
			meta:    func(p *fakeProvider, m map[string]any) { m["issuer"] = p.issuer + "/" },
			wantErr: errAny,
			notErr:  []error{ErrProvider},
		},
		{
			name:    "no S256",
			meta:    func(p *fakeProvider, m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} },
			wantErr: errAny,
		},
		{
			// Many providers omit the field; PKCE is sent regardless.
			name: "PKCE methods not listed",
			meta: func(p *fakeProvider, m map[string]any) { delete(m, "code_challenge_methods_supported") },
		},
		{
			name: "S256 among others",
			meta: func(p *fakeProvider, m map[string]any) {
				m["code_challenge_methods_supported"] = []string{"plain", "S256"}
			},
		},
		{
			name: "only HS256 ID tokens",
			meta: func(p *fakeProvider, m map[string]any) {
				m["id_token_signing_alg_values_supported"] = []string{"HS256"}
			},
			wantErr: errAny,
		},
		{
			name: "only none ID tokens",
			meta: func(p *fakeProvider, m map[string]any) {
				m["id_token_signing_alg_values_supported"] = []string{"none"}
			},
			wantErr: errAny,
		},
		{
			name: "HS256 and RS256",
			meta: func(p *fakeProvider, m map[string]any) {
				m["id_token_signing_alg_values_supported"] = []string{"HS256", "RS256"}
			},
		},
		{
			name: "malformed metadata field",
			meta: func(p *fakeProvider, m map[string]any) {
				m["authorization_response_iss_parameter_supported"] = "yes"
			},
			wantErr: ErrInvalidResponse,
		},
		{
			name: "no optional endpoints",
			meta: func(p *fakeProvider, m map[string]any) {
				delete(m, "revocation_endpoint")
				delete(m, "end_session_endpoint")
			},
			check: func(t *testing.T, c *Client) {
				if err := c.Revoke(t.Context(), "x", ""); !errors.Is(err, ErrUnsupported) {
					t.Errorf("Revoke: %v, want ErrUnsupported", err)
				}
				if _, err := c.EndSessionURL("x"); !errors.Is(err, ErrUnsupported) {
					t.Errorf("EndSessionURL: %v, want ErrUnsupported", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// A failed Discover after a good one keeps the good metadata.
func TestDiscoverAgain(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	p.srv.Close()
	if err := c.Discover(t.Context()); !errors.Is(err, ErrProvider) {
		t.Fatalf("Discover with the provider down: %v, want ErrProvider", err)
	}
	if !c.Ready() {
		t.Error("a failed rediscovery dropped the metadata")
	}
}

func TestNotReady(t *testing.T) {
	p := newFakeProvider(t)
	c, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	f := NewFlow()
	calls := []struct {
		name string
		call func() error
	}{
		{"AuthURL", func() error { _, err := c.AuthURL(context.Background(), f); return err }},
		{"Callback", func() error {
			_, err := c.Callback(t.Context(), f, url.Values{"state": {f.State}, "code": {testCode}})
			return err
		}},
		{"Refresh", func() error { _, err := c.Refresh(t.Context(), testRefresh, testSubject); return err }},
		{"Revoke", func() error { return c.Revoke(t.Context(), testRefresh, "refresh_token") }},
		{"EndSessionURL", func() error { _, err := c.EndSessionURL("id-token"); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrNotReady) {
				t.Errorf("got %v, want ErrNotReady", err)
			}
		})
	}
	if n := len(p.tokenRequests()) + len(p.revokeRequests()); n != 0 {
		t.Errorf("%d requests reached the provider before Discover", n)
	}
}

// Discover may run while requests use the client (run with -race).
func TestDiscoverConcurrent(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := c.Discover(t.Context()); err != nil {
				t.Errorf("Discover: %v", err)
			}
		})
		wg.Go(func() {
			if _, err := c.AuthURL(context.Background(), NewFlow()); err != nil {
				t.Errorf("AuthURL: %v", err)
			}
		})
	}
	wg.Wait()
}

// TestCapabilities: what discovery found, endpoint by endpoint, and
// ErrNotReady before it ran.
func TestCapabilities(t *testing.T) {
	p := newFakeProvider(t)
	c, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capabilities(); !errors.Is(err, ErrNotReady) {
		t.Errorf("Capabilities before Discover: %v, want ErrNotReady", err)
	}
	full := p.client(nil)
	got, err := full.Capabilities()
	want := Capabilities{TokenAuthMethod: AuthMethodBasic, IssParameter: true, EndSession: true, Revocation: true, UserInfo: true}
	if err != nil || got != want {
		t.Errorf("Capabilities = %+v, %v; want %+v", got, err, want)
	}
	bare := newFakeProvider(t)
	for _, k := range []string{"end_session_endpoint", "revocation_endpoint", "userinfo_endpoint", "authorization_response_iss_parameter_supported"} {
		delete(bare.meta, k)
	}
	bare.meta["backchannel_logout_supported"] = true
	bare.meta["token_endpoint_auth_methods_supported"] = []string{AuthMethodPost}
	got, err = bare.client(nil).Capabilities()
	want = Capabilities{TokenAuthMethod: AuthMethodPost, BackchannelLogout: true}
	if err != nil || got != want {
		t.Errorf("Capabilities of a bare provider = %+v, %v; want %+v", got, err, want)
	}
}

// TestSigningKeys: bff check -online counts the provider's keys that can
// verify an ID token; a JWKS without one, or none at all, is an error.
func TestSigningKeys(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	n, algs, err := c.SigningKeys(t.Context())
	if err != nil || n != 1 || len(algs) != 1 || algs[0] != "RS256" {
		t.Fatalf("SigningKeys = %d %v %v, want the one RS256 key", n, algs, err)
	}
	key, _ := testKeys()
	for name, tc := range map[string]struct {
		status int
		body   string
		want   error
	}{
		"encryption keys only": {200, mustJSONString(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "e", Use: "enc"}}}), ErrInvalidResponse},
		"a key of HS256":       {200, mustJSONString(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "h", Algorithm: "HS256"}}}), ErrInvalidResponse},
		"not JSON":             {200, "<html>", ErrInvalidResponse},
		"gone":                 {404, "", ErrProvider},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			p := newFakeProvider(t)
			p.meta["jwks_uri"] = srv.URL
			if _, _, err := p.client(nil).SigningKeys(t.Context()); !errors.Is(err, tc.want) {
				t.Errorf("SigningKeys: %v, want %v", err, tc.want)
			}
		})
	}
}

func mustJSONString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
