package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCallbackSignsIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	f := b.startLogin("/docs?page=2#top")
	loginName := f.login.Cookies()[0].Name
	cb := b.finish(f)
	if cb.StatusCode != http.StatusFound {
		t.Fatalf("callback status %d; body %s", cb.StatusCode, cb.body)
	}
	if loc := cb.Header.Get("Location"); loc != "/docs?page=2#top" {
		t.Errorf("callback redirects to %q, want the returnTo", loc)
	}
	if cc := cb.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	s := cb.setCookie(sessionCookie + ".0")
	if s == nil || s.Value == "" {
		t.Fatalf("no %s.0 set; Set-Cookie %v", sessionCookie, cb.Header.Values("Set-Cookie"))
	}
	if !s.HttpOnly || !s.Secure || s.Path != "/" || s.Domain != "" || s.SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie attributes: %+v", s)
	}
	if strings.Contains(s.Value, "eyJhbGciOiJSUzI1NiI") || strings.Count(s.Value, ".") != 4 {
		t.Errorf("session cookie is not a compact JWE (5 parts)")
	}
	if !slices.Contains(cb.deleted(), loginName) {
		t.Errorf("login cookie %s not deleted; deleted %v", loginName, cb.deleted())
	}
	if got := b.jar.names("localhost", loginCookie); len(got) != 0 {
		t.Errorf("login cookies left: %v", got)
	}
	if len(b.jar.rejected) > 0 {
		t.Errorf("a browser would refuse: %v", b.jar.rejected)
	}

	u := b.get("/auth/user")
	if u.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user status %d; body %s", u.StatusCode, u.body)
	}
	var user struct {
		Sub       string         `json:"sub"`
		Claims    map[string]any `json:"claims"`
		ExpiresAt string         `json:"expires_at"`
	}
	u.json(t, &user)
	if user.Sub == "" || user.Claims == nil {
		t.Errorf("/auth/user = %s, want sub and claims", u.body)
	}
	if user.Claims["sub"] != user.Sub {
		t.Errorf("claims.sub %v, want %q", user.Claims["sub"], user.Sub)
	}
	for _, k := range []string{"nonce", "aud", "iss", "at_hash", "azp"} {
		if _, ok := user.Claims[k]; ok {
			t.Errorf("claims hold protocol claim %q", k)
		}
	}
	exp, err := time.Parse(time.RFC3339, user.ExpiresAt)
	if err != nil || exp.Before(time.Now().Add(7*time.Hour)) || exp.After(time.Now().Add(9*time.Hour)) {
		t.Errorf("expires_at %q, want about 8h from now", user.ExpiresAt)
	}
	if strings.Contains(u.body, "eyJ") {
		t.Errorf("/auth/user shows a token: %s", u.body)
	}
	if cc := u.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("/auth/user Cache-Control %q", cc)
	}

	// The API gets a bearer; the BFF's cookies never reach it.
	api := b.do(http.MethodGet, "/api/whoami", e.apiHeaders())
	if api.StatusCode != http.StatusOK {
		t.Fatalf("/api/whoami status %d; body %s", api.StatusCode, api.body)
	}
	var ans upstreamAnswer
	api.json(t, &ans)
	if !ans.JWTBearer || strings.Contains(ans.Cookie, "__Host-Http-bff") {
		t.Errorf("upstream saw %+v, want a JWT bearer and no BFF cookie", ans)
	}
}

func TestUserSignedOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	r := b.get("/auth/user")
	checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
	if r.Header.Get("Location") != "" {
		t.Errorf("signed-out /auth/user redirects")
	}
	b.jar.put("localhost", sessionCookie+".0", "garbage")
	r = b.get("/auth/user")
	checkJSONError(t, r, http.StatusUnauthorized, "unauthenticated")
	if !slices.Contains(r.deleted(), sessionCookie+".0") {
		t.Errorf("invalid session cookie not cleared; deleted %v", r.deleted())
	}
	api := e.browser().do(http.MethodGet, "/api/x", e.apiHeaders())
	checkJSONError(t, api, http.StatusUnauthorized, "unauthenticated")
}

func TestCallbackRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name   string
		status int
		// req returns the browser and the callback request URI to send.
		req func(t *testing.T) (*browser, string)
	}{
		{"missing state", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			b := e.browser()
			f := b.startLogin("/")
			q := f.callback.Query()
			q.Del("state")
			return b, "/auth/callback?" + q.Encode()
		}},
		{"unknown state without login cookie", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			return e.browser(), "/auth/callback?state=abc&code=def"
		}},
		{"flow of another browser", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			victim, attacker := e.browser(), e.browser()
			victim.startLogin("/")
			f := attacker.startLogin("/")
			return victim, f.callback.RequestURI()
		}},
		{"login cookie of another flow under this flow's name", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			victim, attacker := e.browser(), e.browser()
			mine := victim.startLogin("/")
			f := attacker.startLogin("/")
			theirs := f.login.Cookies()[0].Name
			// The victim's cookie value, renamed as the attacker's flow.
			victim.jar.put("localhost", theirs, mine.login.Cookies()[0].Value)
			return victim, f.callback.RequestURI()
		}},
		{"tampered login cookie", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			b := e.browser()
			f := b.startLogin("/")
			c := f.login.Cookies()[0]
			v := []byte(c.Value)
			i := len(v) / 2
			if v[i] == 'A' {
				v[i] = 'B'
			} else {
				v[i] = 'A'
			}
			b.jar.put("localhost", c.Name, string(v))
			return b, f.callback.RequestURI()
		}},
		{"access denied", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			b := e.browser()
			f := b.startLogin("/")
			q := url.Values{"state": {f.callback.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"user said no"}}
			return b, "/auth/callback?" + q.Encode()
		}},
		{"wrong iss", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			b := e.browser()
			f := b.startLogin("/")
			q := f.callback.Query()
			q.Set("iss", "http://evil.example")
			return b, "/auth/callback?" + q.Encode()
		}},
		{"two iss", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			b := e.browser()
			f := b.startLogin("/")
			q := f.callback.Query()
			q.Add("iss", e.idp.Issuer())
			q.Add("iss", "http://evil.example")
			return b, "/auth/callback?" + q.Encode()
		}},
		{"code of another flow", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			// Injection: the victim's state with the attacker's code (the
			// PKCE verifier and nonce do not match).
			victim, attacker := e.browser(), e.browser()
			mine := victim.startLogin("/")
			theirs := attacker.startLogin("/")
			q := mine.callback.Query()
			q.Set("code", theirs.callback.Query().Get("code"))
			return victim, "/auth/callback?" + q.Encode()
		}},
		{"no code", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			b := e.browser()
			f := b.startLogin("/")
			q := f.callback.Query()
			q.Del("code")
			return b, "/auth/callback?" + q.Encode()
		}},
		{"huge state", http.StatusBadRequest, func(t *testing.T) (*browser, string) {
			return e.browser(), "/auth/callback?code=x&state=" + strings.Repeat("s", 600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, uri := tt.req(t)
			r := b.get(uri)
			checkJSONError(t, r, tt.status, "")
			if r.sessionSet() {
				t.Errorf("refused callback set a session: %v", r.Header.Values("Set-Cookie"))
			}
			if u := b.get("/auth/user"); u.StatusCode != http.StatusUnauthorized {
				t.Errorf("after a refused callback /auth/user is %d, want 401", u.StatusCode)
			}
		})
	}
}

func TestCallbackAccessDeniedCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	f := b.startLogin("/")
	r := b.get("/auth/callback?" + url.Values{"state": {f.callback.Query().Get("state")}, "error": {"access_denied"}}.Encode())
	checkJSONError(t, r, http.StatusBadRequest, "access_denied")
	if !slices.Contains(r.deleted(), f.login.Cookies()[0].Name) {
		t.Errorf("login cookie not deleted after a refused sign-in; deleted %v", r.deleted())
	}
}

func TestCallbackReplay(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	f := b.startLogin("/")
	saved := b.jar.clone() // the login cookie, as an attacker who copied it would hold it
	cb := b.finish(f)
	if cb.StatusCode != http.StatusFound || !cb.sessionSet() {
		t.Fatalf("first callback: %d", cb.StatusCode)
	}

	t.Run("same browser", func(t *testing.T) {
		r := b.finish(f)
		checkJSONError(t, r, http.StatusBadRequest, "")
		if r.sessionSet() {
			t.Error("replayed callback set a new session")
		}
	})
	t.Run("with the login cookie kept", func(t *testing.T) {
		// The code is single use at the provider: a copy of the login
		// cookie and the callback URL do not sign anyone in twice.
		other := e.browserWithJar(saved)
		r := other.finish(f)
		checkJSONError(t, r, http.StatusBadRequest, "")
		if r.sessionSet() {
			t.Error("replayed code set a new session")
		}
		if u := other.get("/auth/user"); u.StatusCode != http.StatusUnauthorized {
			t.Errorf("/auth/user after the replay: %d, want 401", u.StatusCode)
		}
	})
	// The first session is unaffected.
	if u := b.get("/auth/user"); u.StatusCode != http.StatusOK {
		t.Errorf("/auth/user of the real session: %d", u.StatusCode)
	}
}

func TestParallelTabsSignIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	f1 := b.startLogin("/one")
	f2 := b.startLogin("/two")
	if got := len(b.jar.names("localhost", loginCookie)); got != 2 {
		t.Fatalf("%d login cookies, want 2", got)
	}
	r1 := b.finish(f1)
	if r1.StatusCode != http.StatusFound || r1.Header.Get("Location") != "/one" {
		t.Fatalf("first tab: %d %q", r1.StatusCode, r1.Header.Get("Location"))
	}
	r2 := b.finish(f2)
	if r2.StatusCode != http.StatusFound || r2.Header.Get("Location") != "/two" {
		t.Fatalf("second tab: %d %q", r2.StatusCode, r2.Header.Get("Location"))
	}
}
