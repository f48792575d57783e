package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// directClient is a plain OAuth client of the test provider, without BFF.
type directClient struct {
	idp      *IDP
	conf     *oauth2.Config
	redirect *url.URL
}

func newDirectClient(t *testing.T, idp *IDP, redirect string) *directClient {
	t.Helper()
	style := oauth2.AuthStyleInHeader
	if idp.opts.TokenAuthMethod == "client_secret_post" {
		style = oauth2.AuthStyleInParams
	}
	ru, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	return &directClient{
		idp:      idp,
		redirect: ru,
		conf: &oauth2.Config{
			ClientID:     idp.ClientID(),
			ClientSecret: idp.ClientSecret(),
			Endpoint: oauth2.Endpoint{
				AuthURL:   idp.AuthURL(),
				TokenURL:  idp.TokenURL(),
				AuthStyle: style,
			},
			RedirectURL: redirect,
			Scopes:      []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
		},
	}
}

// authorizeURL returns an authorization request URL and its PKCE verifier.
func (c *directClient) authorizeURL(state string) (string, string) {
	verifier := oauth2.GenerateVerifier()
	return c.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-"+state)), verifier
}

// isRedirect reports whether u is the client's redirect URI.
func (c *directClient) isRedirect(u *url.URL) bool {
	return u.Scheme == c.redirect.Scheme && u.Host == c.redirect.Host && u.Path == c.redirect.Path
}

// login runs a code+PKCE flow with the browser and exchanges the code.
func (c *directClient) login(t *testing.T, b *Browser, user string) *oauth2.Token {
	t.Helper()
	state := fmt.Sprintf("st-%d", time.Now().UnixNano())
	authURL, verifier := c.authorizeURL(state)
	cb := b.Authorize(t, authURL, user, "any-password", c.isRedirect)
	return c.exchange(t, cb, state, verifier)
}

func (c *directClient) exchange(t *testing.T, cb *url.URL, state, verifier string) *oauth2.Token {
	t.Helper()
	q := cb.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %q: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state mismatch")
	}
	if q.Get("iss") != c.idp.Issuer() {
		t.Fatalf("iss = %q, want %q (RFC 9207)", q.Get("iss"), c.idp.Issuer())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := c.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tok
}

// refresh runs one refresh_token grant through x/oauth2.
func (c *directClient) refresh(t *testing.T, rt string) *oauth2.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := c.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

// TestIDPDirectFlow is the harness self-test: the provider, the browser
// client and the upstream, with no BFF in between.
func TestIDPDirectFlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		authMethod string
	}{
		{name: "client_secret_basic", authMethod: "client_secret_basic"},
		{name: "client_secret_post", authMethod: "client_secret_post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			redirect := fmt.Sprintf("http://localhost:%d/cb", freePort(t))
			idp := startIDP(t, IDPOptions{TokenAuthMethod: tt.authMethod, RedirectURIs: []string{redirect}, AccessTTL: 30 * time.Second})
			up := startUpstream(t, idp.Issuer(), DefaultAudience)
			c := newDirectClient(t, idp, redirect)
			b := newBrowser(t)
			ctx := context.Background()

			// Code + PKCE.
			tok1 := c.login(t, b, "alice")
			if !strings.HasPrefix(tok1.AccessToken, "eyJ") {
				t.Fatalf("access token is not a JWT")
			}
			if tok1.RefreshToken == "" {
				t.Fatalf("no refresh token issued")
			}
			if ttl := time.Until(tok1.Expiry); ttl > 31*time.Second || ttl < 20*time.Second {
				t.Errorf("access token expires in %s, want about 30s", ttl)
			}
			if got := b.Codes(); len(got) != 1 {
				t.Errorf("browser saw %d codes, want 1", len(got))
			}
			if rej := b.RejectedCookies(); len(rej) > 0 {
				t.Errorf("jar refused cookies: %v", rej)
			}

			// ID token: verified, with profile and email claims in it.
			rawID, _ := tok1.Extra("id_token").(string)
			prov, err := oidc.NewProvider(ctx, idp.Issuer())
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			if got := prov.Endpoint().TokenURL; got != idp.TokenURL() {
				t.Errorf("discovered token URL %q, want %q", got, idp.TokenURL())
			}
			idt, err := prov.Verifier(&oidc.Config{ClientID: idp.ClientID()}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("id token: %v", err)
			}
			var idc struct {
				Name, Email, Nonce string
			}
			if err := idt.Claims(&idc); err != nil {
				t.Fatal(err)
			}
			if idt.Subject != "alice" || idc.Name != "Test User alice" || idc.Email != "alice@example.test" {
				t.Errorf("id token sub=%q name=%q email=%q", idt.Subject, idc.Name, idc.Email)
			}
			if !strings.HasPrefix(idc.Nonce, "n-st-") {
				t.Errorf("id token nonce %q not echoed", idc.Nonce)
			}

			// The access token is accepted by the upstream (JWKS, iss, aud, exp).
			sub, aud, _, err := up.Verify(ctx, tok1.AccessToken)
			if err != nil || sub != "alice" || len(aud) != 1 || aud[0] != DefaultAudience {
				t.Fatalf("upstream verify: sub=%q aud=%v err=%v", sub, aud, err)
			}
			callUpstream(t, up, tok1.AccessToken, http.StatusOK)
			callUpstream(t, up, "evil", http.StatusUnauthorized)
			if last, _ := up.Last(); last.AuthOK || last.AuthError == "" {
				t.Errorf("upstream accepted a bad token: %+v", last)
			}

			// Refresh rotates; the rotated-out token is dead.
			idp.Reset(t)
			if !idp.Introspect(t, tok1.RefreshToken) {
				t.Fatalf("fresh refresh token inactive")
			}
			tok2 := c.refresh(t, tok1.RefreshToken)
			if tok2.RefreshToken == "" || tok2.RefreshToken == tok1.RefreshToken {
				t.Fatalf("refresh did not rotate the refresh token")
			}
			if !strings.HasPrefix(tok2.AccessToken, "eyJ") {
				t.Fatalf("refreshed access token is not a JWT")
			}
			callUpstream(t, up, tok2.AccessToken, http.StatusOK)
			if idp.Introspect(t, tok1.RefreshToken) {
				t.Errorf("rotated-out refresh token still active")
			}
			if !idp.Introspect(t, tok2.RefreshToken) {
				t.Fatalf("new refresh token inactive")
			}

			// RFC 7009 revocation kills the current refresh token.
			idp.Revoke(t, tok2.RefreshToken)
			if idp.Introspect(t, tok2.RefreshToken) {
				t.Errorf("revoked refresh token still active")
			}
			var te *TokenError
			if err := idp.RefreshDirect(t, tok2.RefreshToken); !errors.As(err, &te) || te.Code != "invalid_grant" {
				t.Errorf("refresh with a revoked token: %v, want invalid_grant", err)
			}

			st := idp.Stats(t)
			want := IDPStats{
				TokenCalls:           map[string]int{"refresh_token": 2},
				TokenErrors:          map[string]int{"refresh_token": 1},
				RefreshSuccess:       1,
				Revocations:          1,
				RevocationCalls:      1,
				Introspections:       4,
				IntrospectionsActive: 2,
			}
			if st.TokenCalls["refresh_token"] != want.TokenCalls["refresh_token"] ||
				st.TokenErrors["refresh_token"] != want.TokenErrors["refresh_token"] ||
				st.RefreshSuccess != want.RefreshSuccess ||
				st.Revocations != want.Revocations ||
				st.RevocationCalls != want.RevocationCalls ||
				st.Introspections != want.Introspections ||
				st.IntrospectionsActive != want.IntrospectionsActive ||
				st.GrantsRevoked < 1 {
				t.Errorf("stats = %+v, want %+v and grants_revoked >= 1", st, want)
			}
			if st.TokenCalls["authorization_code"] != 0 {
				t.Errorf("stats not reset: %+v", st)
			}
		})
	}

	t.Run("reuse_detection", func(t *testing.T) {
		t.Parallel()
		redirect := fmt.Sprintf("http://localhost:%d/cb", freePort(t))
		idp := startIDP(t, IDPOptions{RedirectURIs: []string{redirect}})
		c := newDirectClient(t, idp, redirect)
		tok1 := c.login(t, newBrowser(t), "bob")
		tok2 := c.refresh(t, tok1.RefreshToken)
		// Replaying the rotated-out token is refused and revokes the grant,
		// so the newest refresh token dies too.
		var te *TokenError
		if err := idp.RefreshDirect(t, tok1.RefreshToken); !errors.As(err, &te) || te.Code != "invalid_grant" {
			t.Fatalf("replayed refresh token: %v, want invalid_grant", err)
		}
		if idp.Introspect(t, tok2.RefreshToken) {
			t.Errorf("reuse of a rotated token did not revoke the grant")
		}
		if st := idp.Stats(t); st.TokenCalls["authorization_code"] != 1 || st.RefreshSuccess != 1 || st.GrantsRevoked < 1 {
			t.Errorf("stats = %+v", st)
		}
	})

	t.Run("parallel_tabs_one_jar", func(t *testing.T) {
		t.Parallel()
		redirect := fmt.Sprintf("http://localhost:%d/cb", freePort(t))
		idp := startIDP(t, IDPOptions{RedirectURIs: []string{redirect}})
		c := newDirectClient(t, idp, redirect)
		b := newBrowser(t)
		urlA, verA := c.authorizeURL("tab-a")
		urlB, verB := c.authorizeURL("tab-b")
		// Tab A reaches the login form, then tab B does the whole flow,
		// then tab A finishes.
		firstA := b.Authorize(t, urlA, "carol", "pw", func(u *url.URL) bool { return strings.HasPrefix(u.Path, "/interaction/") })
		cbB := b.Authorize(t, urlB, "carol", "pw", c.isRedirect)
		cbA := b.Authorize(t, firstA.String(), "carol", "pw", c.isRedirect)
		tokB := c.exchange(t, cbB, "tab-b", verB)
		tokA := c.exchange(t, cbA, "tab-a", verA)
		if tokA.RefreshToken == "" || tokB.RefreshToken == "" || tokA.RefreshToken == tokB.RefreshToken {
			t.Errorf("two tabs did not get two refresh tokens")
		}
	})
}

// callUpstream calls the upstream directly with a bearer token.
func callUpstream(t *testing.T, up *Upstream, token string, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, up.URL()+"/api/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("upstream status %d, want %d", resp.StatusCode, want)
	}
	if want == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("upstream 401 without WWW-Authenticate invalid_token")
	}
}
