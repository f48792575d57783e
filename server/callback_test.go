package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
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

// TestCallbackStateBound: a state of up to 512 bytes is looked up, and its
// login cookie consumed (deleted, whatever it holds); a longer one is refused
// before any cookie is touched.
func TestCallbackStateBound(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		n        int
		lookedUp bool
	}{{512, true}, {513, false}} {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			state := strings.Repeat("s", tc.n)
			h := sha256.Sum256([]byte(state))
			name := loginCookie + hex.EncodeToString(h[:8])
			b := e.browser()
			b.jar.put("localhost", name, "not-a-jwe")
			r := b.get("/auth/callback?code=x&state=" + state)
			checkJSONError(t, r, http.StatusBadRequest, "invalid_state")
			if got := slices.Contains(r.deleted(), name); got != tc.lookedUp {
				t.Errorf("state of %d bytes: its login cookie deleted %v, want %v (deleted %v)", tc.n, got, tc.lookedUp, r.deleted())
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

// navigation headers of each kind of request a browser sends.
var (
	navigate     = http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}, "Sec-Fetch-Site": {"cross-site"}, "Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}
	documentOnly = http.Header{"Sec-Fetch-Dest": {"document"}}
	htmlAccept   = http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	fetchCall    = http.Header{"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Dest": {"empty"}, "Accept": {"text/html"}}
	htmlRefused  = http.Header{"Accept": {"text/html;q=0, application/json"}}
)

// refusals counts the "request refused" log lines of path and reason.
func refusals(logs string, path, reason string) int {
	n := 0
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"msg":"request refused"`) && strings.Contains(line, `"path":"`+path+`"`) && strings.Contains(line, `"reason":"`+reason+`"`) {
			n++
		}
	}
	return n
}

// refusedMetric reads bff_refused_total{reason} from the metrics.
func refusedMetric(t *testing.T, e *env, reason string) float64 {
	t.Helper()
	return metricValue(t, e.srv, `bff_refused_total{reason="`+reason+`"}`)
}

// metricValue reads one series (name{labels}) from srv's metrics; 0 when
// it has not been written yet.
func metricValue(t *testing.T, srv *server.Server, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestCallbackErrorNavigation: a sign-in that fails or is cancelled sends a
// navigation back to the app with ?login_error=CODE (one of classify's fixed
// codes, never the provider's text), still clearing the login cookie and
// recording the refusal once; a fetch keeps the JSON error.
func TestCallbackErrorNavigation(t *testing.T) {
	e := newEnv(t, envOptions{})
	errPath := newEnv(t, envOptions{config: func(c *server.Config) { c.LoginErrorPath = "/signin-problem?from=bff" }})
	type failure struct {
		name     string
		env      *env
		code     string
		location string // for a navigation
		// req returns the browser, the callback URI and the login cookie
		// that must be deleted ("" when there is none).
		req func(t *testing.T, e *env) (*browser, string, string)
	}
	denied := func(returnTo string, extra url.Values) func(t *testing.T, e *env) (*browser, string, string) {
		return func(t *testing.T, e *env) (*browser, string, string) {
			b := e.browser()
			f := b.startLogin(returnTo)
			q := url.Values{"state": {f.callback.Query().Get("state")}, "iss": {e.idp.Issuer()}}
			for k, v := range extra {
				q[k] = v
			}
			return b, "/auth/callback?" + q.Encode(), f.login.Cookies()[0].Name
		}
	}
	tests := []failure{
		{
			name: "cancelled", env: e, code: "access_denied", location: "/docs?page=2&login_error=access_denied#top",
			req: denied("/docs?page=2#top", url.Values{"error": {"access_denied"}, "error_description": {"User cancelled <b>Zq7</b>"}}),
		},
		{
			name: "free text never passed on", env: e, code: "authorization_error", location: "/?login_error=authorization_error",
			req: denied("/", url.Values{"error": {"<script>Zq7</script>"}, "error_description": {"Zq7"}}),
		},
		{
			name: "an old login_error replaced", env: e, code: "access_denied", location: "/x?a=1&b=x%20y&login_error=access_denied",
			req: denied("/x?login_error=old&a=1&login%5Ferror=older&b=x%20y", url.Values{"error": {"access_denied"}}),
		},
		{
			name: "error path configured", env: errPath, code: "access_denied", location: "/signin-problem?from=bff&login_error=access_denied",
			req: denied("/docs", url.Values{"error": {"access_denied"}}),
		},
		{
			name: "unknown state", env: e, code: "invalid_state", location: "/?login_error=invalid_state",
			req: func(t *testing.T, e *env) (*browser, string, string) {
				return e.browser(), "/auth/callback?state=Zq7&code=Zq7", ""
			},
		},
		{
			name: "unknown state with an error path", env: errPath, code: "invalid_state", location: "/signin-problem?from=bff&login_error=invalid_state",
			req: func(t *testing.T, e *env) (*browser, string, string) {
				return e.browser(), "/auth/callback?state=Zq7&code=Zq7", ""
			},
		},
		{
			name: "code exchange refused", env: e, code: "login_failed", location: "/app?login_error=login_failed",
			req: func(t *testing.T, e *env) (*browser, string, string) {
				b := e.browser()
				f := b.startLogin("/app")
				q := f.callback.Query()
				q.Set("code", "Zq7-not-a-code")
				return b, "/auth/callback?" + q.Encode(), f.login.Cookies()[0].Name
			},
		},
	}
	kinds := []struct {
		name       string
		h          http.Header
		navigation bool
	}{
		{"navigation", navigate, true},
		{"document without mode", documentOnly, true},
		{"accept html without fetch metadata", htmlAccept, true},
		{"fetch", fetchCall, false},
		{"html refused", htmlRefused, false},
		{"no headers", nil, false},
	}
	for _, tc := range tests {
		for _, k := range kinds {
			t.Run(tc.name+"/"+k.name, func(t *testing.T) {
				b, uri, login := tc.req(t, tc.env)
				before := refusedMetric(t, tc.env, tc.code)
				r := b.do(http.MethodGet, uri, k.h)
				if k.navigation {
					if r.StatusCode != http.StatusFound || r.Header.Get("Location") != tc.location {
						t.Fatalf("status %d Location %q, want 302 to %q; body %s", r.StatusCode, r.Header.Get("Location"), tc.location, r.body)
					}
					if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
						t.Errorf("Cache-Control %q, want no-store", cc)
					}
				} else {
					checkJSONError(t, r, http.StatusBadRequest, tc.code)
				}
				if strings.Contains(r.Header.Get("Location"), "Zq7") || strings.Contains(r.body, "Zq7") {
					t.Errorf("the answer quotes the request: %q %s", r.Header.Get("Location"), r.body)
				}
				if login != "" && !slices.Contains(r.deleted(), login) {
					t.Errorf("login cookie %s not deleted; deleted %v", login, r.deleted())
				}
				if r.sessionSet() {
					t.Error("a failed sign-in set a session")
				}
				if got := refusedMetric(t, tc.env, tc.code) - before; got != 1 {
					t.Errorf("bff_refused_total{reason=%q} grew by %v, want 1", tc.code, got)
				}
				if n := refusals(tc.env.logs.String(), "/auth/callback", tc.code); n == 0 {
					t.Errorf("no refusal logged for %s", tc.code)
				}
			})
		}
	}
}

// TestCallbackSilentLoginRequired: prompt=none without a session at the
// provider comes back as error=login_required, which the app gets as
// ?login_error=login_required on its returnTo.
func TestCallbackSilentLoginRequired(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	r := b.get("/auth/login?returnTo=%2Fapp%3Ftab%3D2&prompt=none")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d; body %s", r.StatusCode, r.body)
	}
	back := b.send(b.idp, mustRequest(t, http.MethodGet, r.Header.Get("Location"), nil))
	cb := mustParse(t, back.Header.Get("Location"))
	if cb.Path != "/auth/callback" || cb.Query().Get("error") != "login_required" {
		t.Fatalf("provider answered %d to %q, want the callback with error=login_required", back.StatusCode, cb)
	}
	res := b.do(http.MethodGet, cb.RequestURI(), navigate)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/app?tab=2&login_error=login_required" {
		t.Fatalf("callback: %d to %q, want 302 to /app?tab=2&login_error=login_required; body %s", res.StatusCode, res.Header.Get("Location"), res.body)
	}
	if n := len(b.jar.names("localhost", loginCookie)); n != 0 {
		t.Errorf("%d login cookies left", n)
	}
}

// TestCallbackMaxAge: with max_age asked for, the sign-in fails when the
// provider's auth_time is older than max_age allows (2 min of skew), by the
// BFF's clock.
func TestCallbackMaxAge(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.Now = now }})
	tests := []struct {
		name   string
		maxAge string // "" for none
		later  time.Duration
		ok     bool
	}{
		{name: "fresh", maxAge: "60", ok: true},
		{name: "within skew", maxAge: "60", later: 150 * time.Second, ok: true},
		{name: "zero, fresh", maxAge: "0", ok: true},
		{name: "not asked, long after", later: 5 * time.Minute, ok: true},
		{name: "too old", maxAge: "60", later: 200 * time.Second},
		{name: "zero, later", maxAge: "0", later: 3 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			offset.Store(0)
			b := e.browser()
			q := url.Values{"returnTo": {"/app"}}
			if tc.maxAge != "" {
				q.Set("max_age", tc.maxAge)
			}
			f := b.startLoginQuery(q)
			offset.Store(int64(tc.later))
			r := b.do(http.MethodGet, f.callback.RequestURI(), nil)
			if tc.ok {
				if r.StatusCode != http.StatusFound || !r.sessionSet() {
					t.Fatalf("callback: %d, session %v; body %s", r.StatusCode, r.sessionSet(), r.body)
				}
				return
			}
			checkJSONError(t, r, http.StatusBadRequest, "login_failed")
			if r.sessionSet() {
				t.Error("a sign-in past max_age set a session")
			}
			if u := b.get("/auth/user"); u.StatusCode != http.StatusUnauthorized {
				t.Errorf("/auth/user after the refusal: %d", u.StatusCode)
			}
		})
	}
}

// TestUserAuthenticationFields: /auth/user shows the ID token's auth_time
// (a number) and amr at the top level; the demo provider sets no acr.
func TestUserAuthenticationFields(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	start := time.Now().Unix()
	b.signIn("/")
	u := b.get("/auth/user")
	if u.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user: %d %s", u.StatusCode, u.body)
	}
	var user struct {
		AuthTime json.Number    `json:"auth_time"`
		AMR      []string       `json:"amr"`
		ACR      *string        `json:"acr"`
		Claims   map[string]any `json:"claims"`
	}
	u.json(t, &user)
	at, err := user.AuthTime.Int64()
	if err != nil || at < start-1 || at > time.Now().Unix()+1 {
		t.Errorf("auth_time %q, want the sign-in's time as an integer; body %s", user.AuthTime, u.body)
	}
	if !slices.Equal(user.AMR, []string{"pwd"}) || user.ACR != nil {
		t.Errorf("amr %q acr %v, want [pwd] and none; body %s", user.AMR, user.ACR, u.body)
	}
	if _, ok := user.Claims["auth_time"]; ok {
		t.Errorf("claims hold auth_time: %s", u.body)
	}
}

// userInfoRewrite stands between the BFF and the demo provider's userinfo
// endpoint and changes its answer.
type userInfoRewrite struct {
	edit   func(c map[string]any)
	status int // answer this instead when set
	calls  atomic.Int32
}

func (u *userInfoRewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/userinfo" {
		return http.DefaultTransport.RoundTrip(r)
	}
	u.calls.Add(1)
	if u.status != 0 {
		return &http.Response{StatusCode: u.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || u.edit == nil {
		return resp, err
	}
	defer resp.Body.Close()
	var c map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return nil, err
	}
	u.edit(c)
	b, _ := json.Marshal(c)
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// TestCallbackUserInfo: with oidc.userinfo the user's userinfo claims reach
// /auth/user (winning over the ID token's), a userinfo answer about another
// subject fails the sign-in, and an unavailable endpoint does not.
func TestCallbackUserInfo(t *testing.T) {
	const secretValue = "Zq7-department"
	addClaims := func(c map[string]any) {
		c["department"] = secretValue
		c["name"] = "Name From Userinfo"
		c["address"] = map[string]any{"country": "NL"}
	}
	tests := []struct {
		name     string
		off      bool
		rewrite  *userInfoRewrite
		signedIn bool
		check    func(t *testing.T, e *env, claims map[string]any)
	}{
		{
			name: "claims merged", rewrite: &userInfoRewrite{edit: addClaims}, signedIn: true,
			check: func(t *testing.T, e *env, claims map[string]any) {
				if claims["department"] != secretValue || claims["name"] != "Name From Userinfo" || claims["email"] != "demo@example.com" {
					t.Errorf("claims %v, want userinfo's department and name with the ID token's email", claims)
				}
				if _, ok := claims["address"]; ok {
					t.Errorf("claims hold an object: %v", claims)
				}
				// Nothing was dropped, so no trimming warning ("trimmed to
				// the budget" below is its positive control).
				if strings.Contains(e.logs.String(), "userinfo claims trimmed") {
					t.Error("trimming logged though every claim fit")
				}
			},
		},
		{
			name: "off", off: true, rewrite: &userInfoRewrite{edit: addClaims}, signedIn: true,
			check: func(t *testing.T, e *env, claims map[string]any) {
				if _, ok := claims["department"]; ok || claims["name"] != "Demo User" {
					t.Errorf("claims %v with userinfo off, want the ID token's only", claims)
				}
			},
		},
		{
			name: "unavailable", rewrite: &userInfoRewrite{status: http.StatusServiceUnavailable}, signedIn: true,
			check: func(t *testing.T, e *env, claims map[string]any) {
				if claims["name"] != "Demo User" {
					t.Errorf("claims %v, want the ID token's", claims)
				}
				if !strings.Contains(e.logs.String(), "userinfo unavailable") {
					t.Error("no warning logged for the unavailable userinfo")
				}
			},
		},
		{
			name: "trimmed to the budget",
			rewrite: &userInfoRewrite{edit: func(c map[string]any) {
				for i := range 3 {
					c[fmt.Sprintf("big%d", i)] = strings.Repeat("Zq7", 250) + secretValue
				}
			}},
			signedIn: true,
			check: func(t *testing.T, e *env, claims map[string]any) {
				n := 0
				for i := range 3 {
					if _, ok := claims[fmt.Sprintf("big%d", i)]; ok {
						n++
					}
				}
				if n != 1 || claims["email"] != "demo@example.com" {
					t.Errorf("%d of the 3 big claims kept, want 1 and the small ones; claims %v", n, claims)
				}
				if !strings.Contains(e.logs.String(), "userinfo claims trimmed") {
					t.Error("trimming not logged")
				}
			},
		},
		{name: "another subject", rewrite: &userInfoRewrite{edit: func(c map[string]any) { c["sub"] = "someone-else" }}},
		{name: "no subject", rewrite: &userInfoRewrite{edit: func(c map[string]any) { delete(c, "sub") }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{config: func(c *server.Config) {
				c.OIDC.UserInfo = !tc.off
				c.OIDC.HTTPClient = &http.Client{Transport: tc.rewrite, Timeout: 10 * time.Second}
			}})
			b := e.browser()
			f := b.startLogin("/app")
			r := b.do(http.MethodGet, f.callback.RequestURI(), navigate)
			want := int32(1)
			if tc.off {
				want = 0
			}
			if got := tc.rewrite.calls.Load(); got != want {
				t.Errorf("userinfo called %d times, want %d", got, want)
			}
			if !tc.signedIn {
				if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/app?login_error=login_failed" || r.sessionSet() {
					t.Fatalf("callback: %d to %q, session %v; want 302 to /app?login_error=login_failed and no session",
						r.StatusCode, r.Header.Get("Location"), r.sessionSet())
				}
				if refusals(e.logs.String(), "/auth/callback", "login_failed") != 1 {
					t.Errorf("refusal not logged once:\n%s", e.logs)
				}
				return
			}
			if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/app" || !r.sessionSet() {
				t.Fatalf("callback: %d to %q, session %v; body %s\n%s", r.StatusCode, r.Header.Get("Location"), r.sessionSet(), r.body, e.logs)
			}
			var user struct {
				Claims map[string]any `json:"claims"`
			}
			u := b.get("/auth/user")
			u.json(t, &user)
			tc.check(t, e, user.Claims)
			if strings.Contains(e.logs.String(), secretValue) || strings.Contains(e.logs.String(), "Zq7Zq7") {
				t.Error("a userinfo value reached the logs")
			}
			// Positive control of the log check: the log holds the sign-in.
			if !strings.Contains(e.logs.String(), "signed in") {
				t.Error("no sign-in in the logs: the log check above saw nothing")
			}
		})
	}
}
