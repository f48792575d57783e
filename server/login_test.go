package server_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
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
	// Run logs the discovery once it succeeded (just after Ready turns
	// true, so wait for the line), and no failure.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(e.logs.String(), `"msg":"identity provider ready"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ready, but no \"identity provider ready\" in the log:\n%s", e.logs)
		}
	}
	if strings.Contains(e.logs.String(), "discovery failed") {
		t.Errorf("a successful discovery logged a failure:\n%s", e.logs)
	}
}

// TestLoginOptionsPassedOn: allowed sign-in options reach the provider's
// authorization request, as given (max_age in canonical form), and nothing
// else does.
func TestLoginOptionsPassedOn(t *testing.T) {
	e := newEnv(t, envOptions{})
	custom := newEnv(t, envOptions{config: func(c *server.Config) { c.LoginParams = []string{"ui_locales", "prompt"} }})
	tests := []struct {
		name  string
		env   *env
		query url.Values
		want  map[string]string // in the authorization request, once
	}{
		{name: "none", env: e, query: url.Values{}, want: map[string]string{}},
		{name: "prompt login", env: e, query: url.Values{"prompt": {"login"}}, want: map[string]string{"prompt": "login"}},
		{name: "prompt combined", env: e, query: url.Values{"prompt": {"login consent"}}, want: map[string]string{"prompt": "login consent"}},
		{name: "prompt select_account", env: e, query: url.Values{"prompt": {"select_account"}}, want: map[string]string{"prompt": "select_account"}},
		{name: "prompt none", env: e, query: url.Values{"prompt": {"none"}}, want: map[string]string{"prompt": "none"}},
		{name: "max_age", env: e, query: url.Values{"max_age": {"3600"}}, want: map[string]string{"max_age": "3600"}},
		{name: "max_age zero", env: e, query: url.Values{"max_age": {"0"}}, want: map[string]string{"max_age": "0"}},
		{name: "max_age leading zeros", env: e, query: url.Values{"max_age": {"0060"}}, want: map[string]string{"max_age": "60"}},
		{name: "max_age ten years", env: e, query: url.Values{"max_age": {"315360000"}}, want: map[string]string{"max_age": "315360000"}},
		{name: "max_age every digit but 0", env: e, query: url.Values{"max_age": {"123456789"}}, want: map[string]string{"max_age": "123456789"}},
		{name: "login_hint", env: e, query: url.Values{"login_hint": {"alice@example.com"}}, want: map[string]string{"login_hint": "alice@example.com"}},
		{name: "login_hint edge characters", env: e, query: url.Values{"login_hint": {"a b~"}}, want: map[string]string{"login_hint": "a b~"}},
		{name: "acr_values edge characters", env: e, query: url.Values{"acr_values": {"!~ a"}}, want: map[string]string{"acr_values": "!~ a"}},
		{name: "login_hint 256", env: e, query: url.Values{"login_hint": {strings.Repeat("h", 256)}}, want: map[string]string{"login_hint": strings.Repeat("h", 256)}},
		{
			name: "acr_values", env: e, query: url.Values{"acr_values": {"urn:mace:incommon:iap:silver phr"}},
			want: map[string]string{"acr_values": "urn:mace:incommon:iap:silver phr"},
		},
		{
			name: "all four", env: e,
			query: url.Values{"prompt": {"login"}, "max_age": {"60"}, "login_hint": {"bob"}, "acr_values": {"mfa"}},
			want:  map[string]string{"prompt": "login", "max_age": "60", "login_hint": "bob", "acr_values": "mfa"},
		},
		{name: "configured name", env: custom, query: url.Values{"ui_locales": {"de-CH fr"}}, want: map[string]string{"ui_locales": "de-CH fr"}},
	}
	options := []string{"prompt", "max_age", "login_hint", "acr_values", "ui_locales"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"returnTo": {"/app"}}
			for k, v := range tc.query {
				q[k] = v
			}
			r := tc.env.browser().get("/auth/login?" + q.Encode())
			if r.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302; body %s", r.StatusCode, r.body)
			}
			got := mustParse(t, r.Header.Get("Location")).Query()
			for _, k := range options {
				want, ok := tc.want[k]
				switch {
				case ok && (len(got[k]) != 1 || got[k][0] != want):
					t.Errorf("authorization request %s = %q, want [%q]", k, got[k], want)
				case !ok && got.Has(k):
					t.Errorf("authorization request carries %s = %q, not asked for", k, got[k])
				}
			}
			if got.Has("returnTo") || len(got["state"]) != 1 || len(got["nonce"]) != 1 {
				t.Errorf("authorization request %v: returnTo leaked or protocol parameters changed", got)
			}
		})
	}
}

// TestLoginOptionsRefused: a parameter that is not allowed, repeated or
// invalid is a JSON 400 that does not quote it, and starts nothing.
func TestLoginOptionsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	none := newEnv(t, envOptions{config: func(c *server.Config) { c.LoginParams = []string{} }})
	custom := newEnv(t, envOptions{config: func(c *server.Config) { c.LoginParams = []string{"ui_locales"} }})
	const marker = "Zq7marker"
	long := strings.Repeat("x", 257)
	tests := []struct {
		name  string
		env   *env
		query string // raw, after returnTo=/
	}{
		{"unknown", e, "foo=" + marker},
		{"unknown name is not echoed", e, marker + "=1"},
		{"state", e, "state=" + marker},
		{"nonce", e, "nonce=" + marker},
		{"redirect_uri", e, "redirect_uri=https%3A%2F%2Fevil.example%2F" + marker},
		{"code_challenge", e, "code_challenge=" + marker},
		{"client_id", e, "client_id=" + marker},
		{"scope", e, "scope=openid+" + marker},
		{"request_uri", e, "request_uri=urn%3A" + marker},
		{"default option when configured away", none, "prompt=login"},
		{"default option not in a custom list", custom, "login_hint=" + marker},
		{"repeated", e, "prompt=login&prompt=consent"},
		{"prompt unknown", e, "prompt=" + marker},
		{"prompt none with another", e, "prompt=none+login"},
		{"prompt twice the same", e, "prompt=login+login"},
		{"prompt double space", e, "prompt=login++consent"},
		{"prompt leading space", e, "prompt=+login"},
		{"prompt upper case", e, "prompt=LOGIN"},
		{"prompt empty", e, "prompt="},
		{"max_age negative", e, "max_age=-1"},
		{"max_age signed", e, "max_age=%2B5"},
		{"max_age exponent", e, "max_age=1e3"},
		{"max_age fraction", e, "max_age=1.5"},
		{"max_age over ten years", e, "max_age=315360001"},
		{"max_age overflow", e, "max_age=99999999999999999999999"},
		{"max_age empty", e, "max_age="},
		{"login_hint too long", e, "login_hint=" + long},
		{"login_hint newline", e, "login_hint=a%0Ab" + marker},
		{"login_hint not ASCII", e, "login_hint=j%C3%B6rg" + marker},
		{"login_hint empty", e, "login_hint="},
		{"login_hint unit separator", e, "login_hint=a%1F" + marker},
		{"login_hint DEL", e, "login_hint=a%7F" + marker},
		{"acr_values too long", e, "acr_values=" + long},
		{"acr_values double space", e, "acr_values=a++b" + marker},
		{"acr_values quote", e, "acr_values=a%22" + marker},
		{"acr_values tab", e, "acr_values=a%09" + marker},
		{"acr_values backslash", e, "acr_values=a%5C" + marker},
		{"acr_values DEL", e, "acr_values=a%7F" + marker},
		{"configured name too long", custom, "ui_locales=" + long},
		{"configured name control character", custom, "ui_locales=de%00" + marker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.env.browser().get("/auth/login?returnTo=%2F&" + tc.query)
			checkJSONError(t, r, http.StatusBadRequest, "invalid_request")
			if strings.Contains(r.body, marker) || strings.Contains(r.body, "xxxxxxxx") {
				t.Errorf("error quotes the request: %s", r.body)
			}
			if len(r.Cookies()) != 0 || r.Header.Get("Location") != "" {
				t.Errorf("refused login set cookies %v or redirects to %q", r.Header.Values("Set-Cookie"), r.Header.Get("Location"))
			}
		})
	}
	// Positive control: the same environments start a sign-in without them.
	for _, env := range []*env{e, none, custom} {
		if r := env.browser().get("/auth/login?returnTo=%2F"); r.StatusCode != http.StatusFound {
			t.Errorf("plain login: status %d", r.StatusCode)
		}
	}
}

// TestLoginParamsConfig: the allow-list may not name the protocol's own
// parameters (nor returnTo), and the error path must be same-origin.
func TestLoginParamsConfig(t *testing.T) {
	type loginConfig struct {
		name      string
		params    []string
		errorPath string
		ok        bool
	}
	tests := []loginConfig{
		{name: "default", ok: true},
		{name: "custom", params: []string{"prompt", "ui_locales", "display", "claims_locales"}, ok: true},
		{name: "none", params: []string{}, ok: true},
		{name: "error path", errorPath: "/signed-out?why=1#top", ok: true},
	}
	for _, p := range []string{"state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "client_id",
		"response_type", "response_mode", "scope", "request", "request_uri", "client_secret", "returnTo"} {
		tests = append(tests, loginConfig{name: "refuses " + p, params: []string{"prompt", p}})
	}
	// The ends of each allowed range, and the longest name, are names.
	for _, good := range []string{"a", "z", "A", "Z", "0", "9", "_", "-", ".", strings.Repeat("n", 64)} {
		tests = append(tests, loginConfig{name: "accepts name " + strconv.Quote(good), params: []string{good}, ok: true})
	}
	// The characters just outside each range are not.
	for _, bad := range []string{"", "a b", "a=b", "a&b", strings.Repeat("n", 65), "`", "{", "@", "[", "/", ":"} {
		tests = append(tests, loginConfig{name: "refuses name " + strconv.Quote(bad), params: []string{bad}})
	}
	for _, bad := range []string{"//evil.example", "https://evil.example/", "/\\evil", "signed-out", "/a b"} {
		tests = append(tests, loginConfig{name: "refuses error path " + strconv.Quote(bad), errorPath: bad})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := server.New(server.Config{
				PublicURL:      "https://app.example.test",
				OIDC:           oauthConfig("https://idp.example.test", "https://app.example.test"),
				Secrets:        [][]byte{testMaster},
				Logger:         slog.New(slog.DiscardHandler),
				LoginParams:    tc.params,
				LoginErrorPath: tc.errorPath,
			})
			if srv != nil {
				t.Cleanup(func() { srv.Close() })
			}
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("New accepted login_params %q, login_error_path %q", tc.params, tc.errorPath)
			}
		})
	}
}
