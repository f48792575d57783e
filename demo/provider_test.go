package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bff-project/bff/internal/testsupport"
)

const (
	testClientID     = "bff"
	testClientSecret = "demo-client-secret"
	testRedirectURI  = "http://localhost:8080/auth/callback"
	testPostLogout   = "http://localhost:8080/"
	testUsername     = "alice"
	testPassword     = "correct-horse-battery"
)

// syncBuffer collects output that several goroutines write.
type syncBuffer = testsupport.Buffer

// testEnv is a provider and an API on free loopback ports.
type testEnv struct {
	provider  *Provider
	api       *API
	discovery *gooidc.Provider
	endpoints struct {
		Revocation string `json:"revocation_endpoint"`
		EndSession string `json:"end_session_endpoint"`
	}
	logs *syncBuffer
}

func startEnv(t *testing.T) *testEnv {
	t.Helper()
	return startEnvTTL(t, 0)
}

// startEnvTTL is startEnv with the provider's access-token lifetime (zero:
// the default).
func startEnvTTL(t *testing.T, accessTTL time.Duration) *testEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &testEnv{logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.provider, err = StartProvider(ctx, ProviderConfig{
		Addr:                   "127.0.0.1:0",
		ClientID:               testClientID,
		ClientSecret:           testClientSecret,
		RedirectURIs:           []string{testRedirectURI},
		PostLogoutRedirectURIs: []string{testPostLogout},
		Username:               testUsername,
		Password:               testPassword,
		AccessTokenTTL:         accessTTL,
		Logger:                 logger,
	})
	if err != nil {
		t.Fatalf("StartProvider: %v", err)
	}
	t.Cleanup(func() { _ = e.provider.Close() })
	e.api, err = StartAPI(ctx, APIConfig{Addr: "127.0.0.1:0", Issuer: e.provider.Issuer(), Audience: testClientID, Logger: logger})
	if err != nil {
		t.Fatalf("StartAPI: %v", err)
	}
	t.Cleanup(func() { _ = e.api.Close() })
	e.discovery, err = gooidc.NewProvider(ctx, e.provider.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if err := e.discovery.Claims(&e.endpoints); err != nil {
		t.Fatalf("discovery claims: %v", err)
	}
	if e.endpoints.Revocation == "" || e.endpoints.EndSession == "" {
		t.Fatalf("discovery lacks revocation or end-session endpoint: %+v", e.endpoints)
	}
	return e
}

func (e *testEnv) oauth2Config(style oauth2.AuthStyle) *oauth2.Config {
	ep := e.discovery.Endpoint()
	ep.AuthStyle = style
	return &oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Endpoint:     ep,
		RedirectURL:  testRedirectURI,
		Scopes:       []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess},
	}
}

// newBrowser returns a client with a cookie jar that stops at the redirect URI,
// as a browser would hand the code to the BFF there.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), testRedirectURI) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

var (
	formActionRE = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	hiddenIDRE   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]*)">`)
)

// loginForm is the provider's login page as a browser sees it.
type loginFormPage struct {
	action *url.URL
	id     string
	body   string
}

func getLoginForm(t *testing.T, browser *http.Client, authURL string) loginFormPage {
	t.Helper()
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	return parseLoginForm(t, resp)
}

func parseLoginForm(t *testing.T, resp *http.Response) loginFormPage {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("login page: status %d, type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	action, id := formActionRE.FindStringSubmatch(body), hiddenIDRE.FindStringSubmatch(body)
	if action == nil || id == nil {
		t.Fatalf("login page has no form with an id field: %s", body)
	}
	u, err := resp.Request.URL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatalf("form action: %v", err)
	}
	return loginFormPage{action: u, id: html.UnescapeString(id[1]), body: body}
}

func postLogin(t *testing.T, browser *http.Client, f loginFormPage, username, password string) *http.Response {
	t.Helper()
	resp, err := browser.PostForm(f.action.String(), url.Values{"id": {f.id}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatalf("POST login: %v", err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// authorize runs the browser part of the code flow and returns the code.
func authorize(t *testing.T, conf *oauth2.Config, state, nonce, verifier string) string {
	t.Helper()
	browser := newBrowser(t)
	f := getLoginForm(t, browser, conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	resp := postLogin(t, browser, f, testUsername, testPassword)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after login: status %d, want 302 to the redirect URI; body %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirectURI {
		t.Fatalf("redirected to %q, want %q", got, testRedirectURI)
	}
	q := loc.Query()
	if q.Get("state") != state {
		t.Fatalf("state not echoed")
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in redirect: error=%q %q", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code")
}

func randomString() string { return rand.Text() }

func TestCodeFlow(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()

	tests := []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := e.oauth2Config(tc.style)
			state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
			code := authorize(t, conf, state, nonce, verifier)

			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}

			// ID token: signature, iss, aud, exp, nonce and the user's claims.
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := e.discovery.Verifier(&gooidc.Config{ClientID: testClientID}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("verify ID token: %v", err)
			}
			if idt.Nonce != nonce {
				t.Errorf("ID token nonce = %q, want the one sent", idt.Nonce)
			}
			var claims struct {
				Sub               string `json:"sub"`
				Name              string `json:"name"`
				Email             string `json:"email"`
				PreferredUsername string `json:"preferred_username"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.Sub == "" || claims.Name != "Demo User" || claims.Email != testUsername+"@example.com" || claims.PreferredUsername != testUsername {
				t.Errorf("ID token claims = %+v", claims)
			}

			// Access token: a JWT the API accepts.
			if strings.Count(tok.AccessToken, ".") != 2 {
				t.Fatalf("access token is not a compact JWT")
			}
			if tok.RefreshToken == "" {
				t.Fatalf("no refresh token")
			}
			status, body, _ := callAPI(t, e.api.URL()+"/api/whoami", tok.AccessToken)
			if status != http.StatusOK {
				t.Fatalf("whoami: %d %s", status, body)
			}
			if !strings.Contains(body, `"sub":"`+claims.Sub+`"`) || !strings.Contains(body, `"aud":["`+testClientID+`"`) {
				t.Errorf("whoami body = %s, want sub %q and aud %q", body, claims.Sub, testClientID)
			}

			// The code works once.
			if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !isInvalidGrant(err) {
				t.Errorf("second exchange of the code: err = %v, want invalid_grant", err)
			}

			// Refresh rotates: a new refresh token, and the old one stops working.
			tok2, err := refresh(ctx, conf, tok.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
				t.Fatalf("refresh did not rotate the refresh token")
			}
			if tok2.AccessToken == tok.AccessToken {
				t.Errorf("refresh returned the same access token")
			}
			if status, body, _ := callAPI(t, e.api.URL()+"/api/whoami", tok2.AccessToken); status != http.StatusOK {
				t.Errorf("whoami with the refreshed access token: %d %s", status, body)
			}
			if _, err := refresh(ctx, conf, tok.RefreshToken); !isInvalidGrant(err) {
				t.Errorf("reusing the rotated refresh token: err = %v, want invalid_grant", err)
			}

			// RFC 7009 revocation makes the current refresh token unusable.
			revoke(t, e.endpoints.Revocation, tc.style, tok2.RefreshToken)
			if _, err := refresh(ctx, conf, tok2.RefreshToken); !isInvalidGrant(err) {
				t.Errorf("refresh after revocation: err = %v, want invalid_grant", err)
			}

			// RP-initiated logout redirects back to the registered URI.
			endSessionRedirects(t, e.endpoints.EndSession, rawID)

			for _, secret := range []string{testPassword, tok.AccessToken, tok.RefreshToken, tok2.RefreshToken, rawID, code, nonce, testClientSecret} {
				if strings.Contains(e.logs.String(), secret) {
					t.Errorf("a secret value appears in the logs")
				}
			}
		})
	}
}

func refresh(ctx context.Context, conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

func revoke(t *testing.T, endpoint string, style oauth2.AuthStyle, token string) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}
	if style == oauth2.AuthStyleInParams {
		form.Set("client_id", testClientID)
		form.Set("client_secret", testClientSecret)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if style == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(testClientID), url.QueryEscape(testClientSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
}

func endSessionRedirects(t *testing.T, endpoint, idToken string) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = url.Values{
		"id_token_hint":            {idToken},
		"post_logout_redirect_uri": {testPostLogout},
		"state":                    {"after-logout"},
	}.Encode()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(u.String())
	if err != nil {
		t.Fatalf("end session: %v", err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("end session: %d %s", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Location"), testPostLogout+"?state=after-logout"; got != want {
		t.Errorf("end session redirects to %q, want %q", got, want)
	}
}

func TestEndSessionRevokesRefreshTokens(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	conf := e.oauth2Config(oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(ctx, authorize(t, conf, "s", "n", verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	endSessionRedirects(t, e.endpoints.EndSession, tok.Extra("id_token").(string))
	if _, err := refresh(ctx, conf, tok.RefreshToken); !isInvalidGrant(err) {
		t.Errorf("refresh after end session: err = %v, want invalid_grant", err)
	}
}

func TestLoginForm(t *testing.T) {
	e := startEnv(t)
	conf := e.oauth2Config(oauth2.AuthStyleInHeader)
	authURL := conf.AuthCodeURL("state", gooidc.Nonce("nonce"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	t.Run("wrong password shows the form again", func(t *testing.T) {
		browser := newBrowser(t)
		f := getLoginForm(t, browser, authURL)
		for _, tc := range []struct{ name, user, pass string }{
			{"wrong password", testUsername, "not-the-password"},
			{"wrong user", "someone", testPassword},
			{"empty", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				again := parseLoginForm(t, postLogin(t, browser, f, tc.user, tc.pass))
				if !strings.Contains(again.body, "Wrong username or password.") {
					t.Errorf("no error message on the form: %s", again.body)
				}
				if again.id != f.id {
					t.Errorf("the form lost its auth request id")
				}
			})
		}
		// The right password still works on the same request.
		resp := postLogin(t, browser, f, testUsername, testPassword)
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), testRedirectURI+"?") {
			t.Errorf("login after a failure: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("unknown request", func(t *testing.T) {
		resp, err := http.Get(e.provider.Issuer() + loginPath + "?authRequestID=nope")
		if err != nil {
			t.Fatal(err)
		}
		if readBody(t, resp); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})

	t.Run("callback before login is refused", func(t *testing.T) {
		browser := newBrowser(t)
		f := getLoginForm(t, browser, authURL)
		resp, err := browser.Get(e.provider.Issuer() + "/authorize/callback?id=" + url.QueryEscape(f.id))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") {
			t.Errorf("a code was issued without a login: %q", loc)
		}
	})
}

func TestPKCE(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	conf := e.oauth2Config(oauth2.AuthStyleInHeader)

	t.Run("required", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts []oauth2.AuthCodeOption
		}{
			{"missing", nil},
			{"plain", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", "abcdefghijabcdefghijabcdefghijabcdefghijabc"), oauth2.SetAuthURLParam("code_challenge_method", "plain")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := newBrowser(t).Get(conf.AuthCodeURL("state", tc.opts...))
				if err != nil {
					t.Fatal(err)
				}
				readBody(t, resp)
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
					t.Errorf("status %d, location %q; want a redirect with error=invalid_request", resp.StatusCode, resp.Header.Get("Location"))
				}
			})
		}
	})

	t.Run("wrong verifier", func(t *testing.T) {
		code := authorize(t, conf, "state", "nonce", oauth2.GenerateVerifier())
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Errorf("exchange with the wrong verifier succeeded")
		}
	})
}

func TestStartProviderConfig(t *testing.T) {
	ok := ProviderConfig{Addr: "127.0.0.1:0", ClientID: "c", ClientSecret: "s", RedirectURIs: []string{testRedirectURI}}
	tests := []struct {
		name   string
		modify func(*ProviderConfig)
		want   error
	}{
		{"no client id", func(c *ProviderConfig) { c.ClientID = "" }, ErrInvalidConfig},
		{"no client secret", func(c *ProviderConfig) { c.ClientSecret = "" }, ErrInvalidConfig},
		{"no redirect URI", func(c *ProviderConfig) { c.RedirectURIs = nil }, ErrInvalidConfig},
		{"port 0 with a fixed issuer", func(c *ProviderConfig) { c.Issuer = "http://127.0.0.1:8081" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.modify(&cfg)
			p, err := StartProvider(context.Background(), cfg)
			if err == nil {
				_ = p.Close()
				t.Fatalf("StartProvider succeeded, want an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("derived issuer", func(t *testing.T) {
		p, err := StartProvider(context.Background(), ok)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") || strings.HasSuffix(p.Issuer(), ":0") {
			t.Errorf("Issuer() = %q", p.Issuer())
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("stops when ctx is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := StartProvider(ctx, ok)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
			if err != nil {
				return
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatal("provider still serving after ctx was cancelled")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestProviderConfigDefaults(t *testing.T) {
	got, err := ProviderConfig{ClientID: "c", ClientSecret: "s", RedirectURIs: []string{testRedirectURI}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != DefaultProviderAddr || got.AccessTokenTTL != DefaultAccessTokenTTL ||
		got.Username != DefaultUsername || got.Password != DefaultPassword || got.Logger == nil {
		t.Errorf("withDefaults() = %+v", got)
	}
}
