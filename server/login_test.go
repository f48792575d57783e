package server_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

var loginNameRE = regexp.MustCompile(`^__Host-Http-bff-login\.[0-9a-f]{16}$`)

func TestLoginRedirectsToProvider(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	r := b.get("/auth/login?returnTo=" + "%2Fdocs%3Fx%3D1")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302; body %s", r.StatusCode, r.body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, e.idp.Issuer()+"/") {
		t.Fatalf("Location %q is not at the provider %s", loc, e.idp.Issuer())
	}
	u := mustParse(t, loc)
	q := u.Query()
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(p)) < 32 {
			t.Errorf("authorize URL %s = %q, want a random value of 32+ characters", p, q.Get(p))
		}
	}
	want := map[string]string{
		"code_challenge_method": "S256",
		"response_type":         "code",
		"client_id":             testClientID,
		"redirect_uri":          e.cfg.PublicURL + "/auth/callback",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorize URL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		t.Errorf("scope %q lacks openid", q.Get("scope"))
	}
	if strings.Contains(loc, "returnTo") || strings.Contains(loc, "docs") {
		t.Errorf("returnTo leaked into the authorize URL: %s", loc)
	}

	cookies := r.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want exactly 1: %v", len(cookies), r.Header.Values("Set-Cookie"))
	}
	c := cookies[0]
	if !loginNameRE.MatchString(c.Name) {
		t.Errorf("login cookie name %q, want %s<16 hex>", c.Name, loginCookie)
	}
	if !c.HttpOnly || !c.Secure || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 600 {
		t.Errorf("login cookie attributes: HttpOnly=%v Secure=%v Path=%q Domain=%q SameSite=%v MaxAge=%d; want HttpOnly Secure Path=/ no Domain Lax 600",
			c.HttpOnly, c.Secure, c.Path, c.Domain, c.SameSite, c.MaxAge)
	}
	if strings.Contains(c.Value, q.Get("state")) || strings.Contains(c.Value, q.Get("nonce")) {
		t.Error("login cookie carries the state or nonce in clear")
	}
	if len(b.jar.rejected) > 0 {
		t.Errorf("a browser would refuse: %v", b.jar.rejected)
	}
}

func TestLoginBadReturnTo(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, rt := range []string{"//evil.com", "https://evil.com", "/\\evil.com", "/%2F%2Fevil.com", "javascript:alert(1)", "a", "/x y"} {
		t.Run(rt, func(t *testing.T) {
			r := e.browser().get("/auth/login?returnTo=" + urlQueryEscape(rt))
			checkJSONError(t, r, http.StatusBadRequest, "invalid_request")
			if len(r.Cookies()) != 0 {
				t.Errorf("refused login set cookies: %v", r.Header.Values("Set-Cookie"))
			}
			if r.Header.Get("Location") != "" {
				t.Errorf("refused login redirects to %q", r.Header.Get("Location"))
			}
		})
	}
}

func TestLoginFloodKeepsFewCookies(t *testing.T) {
	// A clock that moves one second per login, so "oldest" is well defined.
	var tick atomic.Int64
	start := time.Now()
	now := func() time.Time { return start.Add(time.Duration(tick.Load()) * time.Second) }
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Now = now }})
	b := e.browser()
	var order []string // login cookie names, oldest first
	for i := range 20 {
		tick.Add(1)
		r := b.get("/auth/login?returnTo=/")
		if r.StatusCode != http.StatusFound {
			t.Fatalf("login %d: status %d", i, r.StatusCode)
		}
		var set string
		var deleted []string
		for _, c := range r.Cookies() {
			switch {
			case c.MaxAge < 0:
				deleted = append(deleted, c.Name)
			case strings.HasPrefix(c.Name, loginCookie):
				set = c.Name
			}
		}
		if set == "" {
			t.Fatalf("login %d set no login cookie", i)
		}
		if i >= 4 {
			// The oldest alive flow (started 4 logins ago) must go.
			if want := order[i-4]; !slices.Equal(deleted, []string{want}) {
				t.Errorf("login %d deleted %v, want exactly the oldest %s", i, deleted, want)
			}
		} else if len(deleted) != 0 {
			t.Errorf("login %d deleted %v with only %d flows alive", i, deleted, i)
		}
		order = append(order, set)
		if alive := b.jar.names("localhost", loginCookie); len(alive) > 4 {
			t.Fatalf("after login %d: %d login cookies alive, want at most 4", i, len(alive))
		}
	}
	alive := b.jar.names("localhost", loginCookie)
	slices.Sort(alive)
	want := slices.Clone(order[16:])
	slices.Sort(want)
	if !slices.Equal(alive, want) {
		t.Errorf("alive login cookies %v, want the 4 newest %v", alive, want)
	}
}

func TestLoginDropsUnreadableLoginCookies(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.jar.put("localhost", loginCookie+"00000000deadbeef", "not-a-jwe")
	r := b.get("/auth/login")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("status %d", r.StatusCode)
	}
	if !slices.Contains(r.deleted(), loginCookie+"00000000deadbeef") {
		t.Errorf("unreadable login cookie not deleted; deleted %v", r.deleted())
	}
}

func TestLoginProviderNotReady(t *testing.T) {
	e := newEnv(t, envOptions{noRun: true})
	b := e.browser()
	r := b.get("/auth/login?returnTo=/")
	checkJSONError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	if len(r.Cookies()) != 0 {
		t.Errorf("login set cookies while the provider is not ready: %v", r.Header.Values("Set-Cookie"))
	}
	ready := b.get("/readyz")
	if ready.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz status %d, want 503", ready.StatusCode)
	}
	if h := b.get("/healthz"); h.StatusCode != http.StatusOK {
		t.Errorf("/healthz status %d, want 200", h.StatusCode)
	}
	// A callback before discovery is refused too, without a session.
	cb := b.get("/auth/callback?state=x&code=y")
	if cb.StatusCode < 400 || cb.sessionSet() {
		t.Errorf("callback before discovery: status %d, session set %v", cb.StatusCode, cb.sessionSet())
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.browser().get("/readyz")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("/readyz status %d, want 200", r.StatusCode)
	}
}
