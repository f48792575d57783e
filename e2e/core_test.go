package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	sessionCookie     = "__Host-Http-bff.0"      // first session chunk
	sessionPrefix     = "__Host-Http-bff"        // every BFF cookie
	loginCookiePrefix = "__Host-Http-bff-login." // per-flow login cookies
	bffHost           = "localhost"              // host name of public_url
)

var csrf = map[string]string{"X-CSRF": "1"}

// TestCoreFlow drives the BFF contract end to end: login through the real
// provider, the user endpoint, the proxy with bearer injection, CSRF
// refusals, transparent refresh, logout with server-side invalidation, two
// tabs, and what the logs must never contain.
func TestCoreFlow(t *testing.T) {
	t.Parallel()

	t.Run("session", func(t *testing.T) {
		t.Parallel()
		st := startStack(t, StackOptions{})
		bff, up, idp := st.BFF, st.Upstream, st.IDP
		b := newBrowser(t)
		browsers := []*Browser{b}

		mustRun(t, "login_lands_on_returnTo", func(t *testing.T) {
			const returnTo = "/app/page?x=1"
			final := b.Login(t, bff.URL(), returnTo, "alice", "pw")
			u, err := url.Parse(final)
			if err != nil {
				t.Fatal(err)
			}
			if u.Hostname() != bffHost || u.RequestURI() != returnTo {
				t.Errorf("callback redirected to %q, want %q on the BFF", final, returnTo)
			}
			names := b.CookieNames(bffHost)
			if !slices.Contains(names, sessionCookie) {
				t.Errorf("cookies %v: no session chunk %s", names, sessionCookie)
			}
			for _, n := range names {
				if strings.HasPrefix(n, loginCookiePrefix) {
					t.Errorf("login cookie %s not deleted at the callback", n)
				}
			}
			if rej := b.RejectedCookies(); len(rej) > 0 {
				t.Errorf("a browser would refuse these cookies: %v", rej)
			}
		})

		t.Run("user_endpoint_has_claims_and_no_token", func(t *testing.T) {
			r := b.Get(t, bff.URL()+"/auth/user", nil)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var u struct {
				Sub    string `json:"sub"`
				Claims struct {
					Name  string `json:"name"`
					Email string `json:"email"`
				} `json:"claims"`
				ExpiresAt string `json:"expires_at"`
			}
			if err := json.Unmarshal(r.Body, &u); err != nil {
				t.Fatalf("body: %v", err)
			}
			if u.Sub != "alice" || u.Claims.Name != "Test User alice" || u.Claims.Email != "alice@example.test" {
				t.Errorf("user = %+v", u)
			}
			exp, err := time.Parse(time.RFC3339, u.ExpiresAt)
			if err != nil {
				t.Errorf("expires_at %q: %v", u.ExpiresAt, err)
			} else if d := time.Until(exp); d <= 0 || d > time.Hour+time.Minute {
				t.Errorf("expires_at in %s, want within the 1h session lifetime", d)
			}
			assertNoTokens(t, r.Body)
		})

		t.Run("proxy_injects_bearer_and_strips_cookies", func(t *testing.T) {
			h := map[string]string{"X-CSRF": "1", "Authorization": "Bearer evil"}
			r := b.Get(t, bff.URL()+"/api/whoami", h)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var who struct {
				Sub string   `json:"sub"`
				Aud []string `json:"aud"`
				Exp int64    `json:"exp"`
			}
			if err := json.Unmarshal(r.Body, &who); err != nil {
				t.Fatalf("body: %v", err)
			}
			if who.Sub != "alice" || !slices.Contains(who.Aud, DefaultAudience) {
				t.Errorf("whoami = %+v", who)
			}
			last, ok := up.Last()
			if !ok || last.Path != "/api/whoami" {
				t.Fatalf("upstream did not see the call: %+v", last)
			}
			if !last.HasAuthorization || !last.AuthOK || last.AuthHeaders != 1 || last.Sub != "alice" {
				t.Errorf("upstream authorization: %+v (inbound Authorization must be replaced, not kept)", last)
			}
			for _, c := range last.CookieNames {
				if strings.HasPrefix(c, sessionPrefix) {
					t.Errorf("upstream received BFF cookie %s", c)
				}
			}

			r = b.Post(t, bff.URL()+"/api/echo", csrf, `{"hello":"world"}`)
			if r.Status != http.StatusOK {
				t.Fatalf("echo status %d: %s", r.Status, r.Body)
			}
			var echo struct {
				Cookies          []string `json:"cookies"`
				HasAuthorization bool     `json:"has_authorization"`
				AuthOK           bool     `json:"auth_ok"`
			}
			if err := json.Unmarshal(r.Body, &echo); err != nil {
				t.Fatalf("echo body: %v", err)
			}
			if !echo.HasAuthorization || !echo.AuthOK {
				t.Errorf("echo: %+v", echo)
			}
			for _, c := range echo.Cookies {
				if strings.HasPrefix(c, sessionPrefix) {
					t.Errorf("upstream received BFF cookie %s", c)
				}
			}
		})

		t.Run("csrf_refusals", func(t *testing.T) {
			tests := []struct {
				name    string
				method  string
				path    string
				headers map[string]string
			}{
				{name: "no_X-CSRF", method: http.MethodPost, path: "/api/echo", headers: nil},
				{name: "GET_without_fetch_metadata", method: http.MethodGet, path: "/api/whoami",
					headers: map[string]string{"Sec-Fetch-Site": "", "Sec-Fetch-Mode": "", "Sec-Fetch-Dest": ""}},
				{name: "cross_site_fetch", method: http.MethodGet, path: "/api/whoami",
					headers: map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}},
				{name: "foreign_origin", method: http.MethodPost, path: "/api/echo",
					headers: map[string]string{"X-CSRF": "1", "Origin": "http://evil.example", "Sec-Fetch-Site": ""}},
				{name: "logout_without_X-CSRF", method: http.MethodPost, path: "/auth/logout", headers: nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := len(up.Requests())
					r := b.Do(t, tt.method, bff.URL()+tt.path, tt.headers, "")
					assertJSONError(t, r, http.StatusForbidden)
					if after := len(up.Requests()); after != before {
						t.Errorf("upstream was called %d time(s) for a refused request", after-before)
					}
				})
			}
			// The session survived the refused logout.
			if r := b.Get(t, bff.URL()+"/auth/user", nil); r.Status != http.StatusOK {
				t.Errorf("after refused requests /auth/user = %d", r.Status)
			}
		})

		t.Run("no_session_is_401_json", func(t *testing.T) {
			anon := newBrowser(t)
			for _, path := range []string{"/api/whoami", "/auth/user"} {
				r := anon.Get(t, bff.URL()+path, csrf)
				assertJSONError(t, r, http.StatusUnauthorized)
			}
		})

		t.Run("two_tabs_one_jar", func(t *testing.T) {
			tb := newBrowser(t)
			browsers = append(browsers, tb)
			idpA := tb.StartLogin(t, bff.URL(), "/tab-a")
			idpB := tb.StartLogin(t, bff.URL(), "/tab-b")
			logins := 0
			for _, n := range tb.CookieNames(bffHost) {
				if strings.HasPrefix(n, loginCookiePrefix) {
					logins++
				}
			}
			if logins != 2 {
				t.Errorf("%d login cookies for two tabs, want 2", logins)
			}
			finalB := tb.FinishLogin(t, idpB, bff.URL(), "dave", "pw")
			finalA := tb.FinishLogin(t, idpA, bff.URL(), "dave", "pw")
			if finalA.RequestURI() != "/tab-a" || finalB.RequestURI() != "/tab-b" {
				t.Errorf("tabs landed on %q and %q", finalA.RequestURI(), finalB.RequestURI())
			}
			for _, n := range tb.CookieNames(bffHost) {
				if strings.HasPrefix(n, loginCookiePrefix) {
					t.Errorf("login cookie %s left after both tabs finished", n)
				}
			}
			r := tb.Get(t, bff.URL()+"/auth/user", nil)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"dave"`) {
				t.Errorf("/auth/user after two tabs: %d %s", r.Status, r.Body)
			}
		})

		t.Run("logout_invalidates_server_side", func(t *testing.T) {
			snap := b.Snapshot()
			idp.Reset(t)
			r := b.Post(t, bff.URL()+"/auth/logout", csrf, "")
			if r.Status != http.StatusOK {
				t.Fatalf("logout status %d: %s", r.Status, r.Body)
			}
			var out struct {
				LogoutURL string `json:"logout_url"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Fatalf("logout body: %v", err)
			}
			// What page script reads holds no token: a URL of the BFF's
			// own, whose navigation the BFF redirects to the provider.
			if !strings.HasPrefix(out.LogoutURL, bff.URL()+"/auth/end-session?t=") {
				t.Fatalf("logout_url %q, want the BFF's %s/auth/end-session?t=...", out.LogoutURL, bff.URL())
			}
			nav := b.Get(t, out.LogoutURL, nil)
			lu, ok := nav.Location()
			if nav.Status != http.StatusFound || !ok {
				t.Fatalf("GET logout_url: %d, Location %q", nav.Status, nav.Header.Get("Location"))
			}
			if got := lu.Scheme + "://" + lu.Host + lu.Path; got != idp.EndSessionURL() {
				t.Errorf("logout_url goes to %q, want the end-session endpoint %q", got, idp.EndSessionURL())
			}
			q := lu.Query()
			if got := q.Get("post_logout_redirect_uri"); got != bff.URL()+"/" {
				t.Errorf("post_logout_redirect_uri = %q, want %q", got, bff.URL()+"/")
			}
			if q.Get("id_token_hint") == "" || q.Get("client_id") == "" {
				t.Errorf("the end-session redirect lacks id_token_hint or client_id")
			}
			for _, n := range b.CookieNames(bffHost) {
				if strings.HasPrefix(n, sessionPrefix) {
					t.Errorf("cookie %s survived logout", n)
				}
			}
			// Revocation should be done before the answer; allow a moment in
			// case the BFF does it in the background.
			s := idp.Stats(t)
			for deadline := time.Now().Add(2 * time.Second); s.Revocations == 0 && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
				s = idp.Stats(t)
			}
			if s.Revocations != 1 {
				t.Errorf("provider revoked %d token(s) at logout, want 1 (the refresh token); stats %+v", s.Revocations, s)
			}

			// A cookie copied before logout is dead everywhere.
			thief := newBrowser(t)
			thief.Restore(snap)
			before := len(up.Requests())
			assertJSONError(t, thief.Get(t, bff.URL()+"/auth/user", nil), http.StatusUnauthorized)
			assertJSONError(t, thief.Get(t, bff.URL()+"/api/whoami", csrf), http.StatusUnauthorized)
			if after := len(up.Requests()); after != before {
				t.Errorf("a revoked session reached the upstream")
			}
			if s := idp.Stats(t); s.RefreshSuccess != 0 {
				t.Errorf("replayed cookie made the BFF refresh: %+v", s)
			}
		})

		t.Run("logs_hold_no_secrets", func(t *testing.T) {
			assertCleanLogs(t, bff, idp, browsers...)
		})
	})

	t.Run("transparent_refresh", func(t *testing.T) {
		t.Parallel()
		const ttl = 4 * time.Second
		st := startStack(t, StackOptions{AccessTTL: ttl, RefreshMargin: 2 * time.Second})
		bff, up, idp := st.BFF, st.Upstream, st.IDP
		b := newBrowser(t)

		mustRun(t, "login", func(t *testing.T) {
			b.Login(t, bff.URL(), "/", "erin", "pw")
		})
		loggedIn := time.Now()

		t.Run("refresh_once_after_expiry", func(t *testing.T) {
			idp.Reset(t)
			old, _ := b.CookieValue(bffHost, sessionCookie)
			time.Sleep(time.Until(loggedIn.Add(ttl + 500*time.Millisecond)))
			r := b.Get(t, bff.URL()+"/api/whoami", csrf)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d after expiry: %s", r.Status, r.Body)
			}
			if last, _ := up.Last(); !last.AuthOK || last.Sub != "erin" {
				t.Errorf("upstream got %+v, want a valid fresh token", last)
			}
			s := idp.Stats(t)
			if s.RefreshSuccess != 1 || s.TokenCalls["refresh_token"] != 1 {
				t.Errorf("provider saw %d refresh call(s), %d successful; want exactly 1", s.TokenCalls["refresh_token"], s.RefreshSuccess)
			}
			c, ok := r.SetCookie(sessionCookie)
			if !ok {
				t.Fatalf("no new %s on the response that refreshed", sessionCookie)
			}
			if c.Value == old || c.Value == "" {
				t.Errorf("session cookie not replaced after refresh")
			}
			// The new token is fresh: an immediate call does not refresh again.
			if r := b.Get(t, bff.URL()+"/api/whoami", csrf); r.Status != http.StatusOK {
				t.Errorf("second call: %d", r.Status)
			}
			if s := idp.Stats(t); s.RefreshSuccess != 1 {
				t.Errorf("fresh token refreshed again: %d refreshes", s.RefreshSuccess)
			}
		})

		t.Run("concurrent_calls_share_one_refresh", func(t *testing.T) {
			idp.Reset(t)
			time.Sleep(ttl + 500*time.Millisecond)
			const n = 5
			var wg sync.WaitGroup
			statuses := make([]int, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := b.send(http.MethodGet, bff.URL()+"/api/whoami", fetchHeaders(http.MethodGet, "", csrf), nil)
					if err != nil {
						statuses[i] = -1
						return
					}
					statuses[i] = r.Status
				}()
			}
			wg.Wait()
			for i, s := range statuses {
				if s != http.StatusOK {
					t.Errorf("call %d: status %d", i, s)
				}
			}
			if s := idp.Stats(t); s.RefreshSuccess != 1 || s.TokenErrors["refresh_token"] != 0 {
				t.Errorf("%d concurrent calls made %d refreshes (%d failed), want 1 (single flight)", n, s.RefreshSuccess, s.TokenErrors["refresh_token"])
			}
			if r := b.Get(t, bff.URL()+"/auth/user", nil); r.Status != http.StatusOK {
				t.Errorf("session lost after concurrent refresh: %d", r.Status)
			}
		})

		t.Run("logs_hold_no_secrets", func(t *testing.T) {
			assertCleanLogs(t, bff, idp, b)
		})
	})
}

// mustRun runs a subtest and stops the parent when it fails: later steps
// depend on it.
func mustRun(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

// assertJSONError checks the BFF's error shape: status, JSON body with a
// non-empty "error", Cache-Control: no-store, and never a redirect.
func assertJSONError(t *testing.T, r *Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d (body %.200s)", r.URL.Path, r.Status, status, r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "" {
		t.Errorf("%s: error answered with a redirect", r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", r.URL.Path, ct)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s: Cache-Control %q, want no-store", r.URL.Path, cc)
	}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: body %.200s is not {\"error\":...}", r.URL.Path, r.Body)
	}
}

// assertNoTokens fails when a JSON body carries something token-like: a
// JWT/JWE-looking "eyJ" string, or a key naming a token with a value.
func assertNoTokens(t *testing.T, body []byte) {
	t.Helper()
	if strings.Contains(string(body), "eyJ") {
		t.Errorf("body holds a JWT-looking string")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if strings.Contains(strings.ToLower(k), "token") && val != nil && val != "" && val != false {
					t.Errorf("body has %s.%s with a value", path, k)
				}
				walk(path+"."+k, val)
			}
		case []any:
			for _, val := range x {
				walk(path+"[]", val)
			}
		}
	}
	walk("$", v)
}

// assertCleanLogs checks that the BFF's logs hold none of the tokens the
// provider issued, none of the secrets, none of the authorization codes or
// state/nonce values the browsers carried, and no JWT- or JWE-looking
// string; and that they are the logs of a sign-in (see
// assertBrowserRunLogsClean), so that the search cannot pass on nothing.
func assertCleanLogs(t *testing.T, bff *BFF, idp *IDP, browsers ...*Browser) {
	t.Helper()
	// Every token the provider issued (raw access, refresh and ID tokens),
	// the client and key secrets and anything JWT-looking, with the positive
	// controls (request and sign-in lines, a non-empty token list): the
	// browser suites' check. These flows sign somebody in.
	assertBrowserRunLogsClean(t, &Stack{IDP: idp, BFF: bff}, true)
	logs := bff.Logs()
	secrets := map[string]string{}
	codes, states := 0, 0
	for _, b := range browsers {
		for _, c := range b.Codes() {
			secrets["authorization code #"+strconv.Itoa(codes)] = c
			codes++
		}
		for _, s := range b.States() {
			secrets["state/nonce #"+strconv.Itoa(states)] = s
			states++
		}
	}
	if codes == 0 {
		t.Errorf("no authorization code was captured: the check would be empty")
	}
	for what, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("BFF logs contain the %s", what)
		}
	}
}
