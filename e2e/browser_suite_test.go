package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
)

// browserSuiteBudget is the wall time the whole browser suite must stay
// under on a 2-core machine.
const browserSuiteBudget = 3 * time.Minute

// TestBrowser proves the main flows in a real browser: Debian's Chromium,
// headless, driving the sample page (demo/page) served by the BFF binary,
// against the real oidc-provider. Each case has its own provider, upstream,
// BFF and browser, so one runs alone with e.g.
//
//	go test ./e2e/ -run 'TestBrowser/sign_out' -v
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromiumPath(t) // fail at once, with what to do, when it is missing
	start := time.Now()
	t.Cleanup(func() {
		elapsed := time.Since(start)
		t.Logf("browser suite wall time: %s (budget %s)", elapsed.Round(100*time.Millisecond), browserSuiteBudget)
		if elapsed > browserSuiteBudget {
			t.Errorf("browser suite took %s, over its %s budget", elapsed.Round(time.Second), browserSuiteBudget)
		}
	})
	page := appPageDir(t)

	// stack starts a provider, an upstream and a BFF serving the sample
	// page; when the case ends, the BFF's logs are checked for secrets.
	// Every case signs somebody in.
	stack := func(t *testing.T, opts StackOptions) *Stack {
		t.Helper()
		opts.StaticDir = page
		st := startStack(t, opts)
		t.Cleanup(func() { assertBrowserRunLogsClean(t, st, true) })
		return st
	}

	t.Run("sign_in_shows_user_name", func(t *testing.T) {
		t.Parallel()
		st := stack(t, StackOptions{})
		tab := startChromium(t)
		tab.SignIn(t, st.BFF.URL(), "alice")

		if got, want := tab.Text(t, "#user"), "Signed in as Test User alice"; !strings.HasPrefix(got, want) {
			t.Errorf("#user = %q, want it to start with %q", got, want)
		}
		if loc := tab.Location(t); loc != st.BFF.URL()+"/" {
			t.Errorf("landed on %q, want the app's %q", redactURL(loc), st.BFF.URL()+"/")
		}
		if s := st.IDP.Stats(t); s.TokenCalls["authorization_code"] != 1 || s.TokenErrors["authorization_code"] != 0 {
			t.Errorf("provider token endpoint: %+v, want one successful code exchange", s)
		}
		dir, err := os.MkdirTemp("", "bff-e2e-screenshots-")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the signed-in page: %s", tab.Screenshot(t, dir, "signed-in.png"))
	})

	t.Run("page_script_sees_no_token", func(t *testing.T) {
		t.Parallel()
		st := stack(t, StackOptions{})
		tab := startChromium(t)
		app := st.BFF.URL()
		tab.SignIn(t, app, "bob")

		// Some API traffic, so the upstream has seen the real access token.
		tab.Click(t, "#call-echo")
		echoShown := waitText(t, tab, "#echo-result", "HTTP ")

		docCookie := Eval[string](t, tab, `document.cookie`)
		user := tab.Fetch(t, http.MethodGet, "/auth/user", map[string]string{"Accept": "application/json"})
		echo := tab.Fetch(t, http.MethodPost, "/api/echo", map[string]string{"X-CSRF": "1", "Accept": "application/json"})
		whoami := tab.Fetch(t, http.MethodGet, "/api/whoami", map[string]string{"X-CSRF": "1", "Accept": "application/json"})
		html := Eval[string](t, tab, `document.documentElement.outerHTML`)
		storage := Eval[string](t, tab, `JSON.stringify({local: {...localStorage}, session: {...sessionStorage}})`)

		for name, r := range map[string]fetchResult{"/auth/user": user, "/api/echo": echo, "/api/whoami": whoami} {
			if r.Status != http.StatusOK {
				t.Errorf("fetch %s from the page: status %d: %.200s", name, r.Status, r.Body)
			}
		}
		readable := map[string]string{
			"document.cookie":       docCookie,
			"GET /auth/user body":   user.Body,
			"POST /api/echo body":   echo.Body,
			"GET /api/whoami body":  whoami.Body,
			"#echo-result text":     echoShown,
			"the page's HTML":       html,
			"local/session storage": storage,
		}
		for what, s := range readable {
			if strings.Contains(s, "eyJ") {
				t.Errorf("%s holds an eyJ (JWT/JWE-looking) string", what)
			}
		}

		// The real tokens: what the upstream verified and what the
		// provider's token endpoint issued (access, refresh, ID token).
		real := map[string]string{}
		for i, tok := range st.Upstream.SeenTokens() {
			real["access token seen by the upstream #"+strconv.Itoa(i)] = tok
		}
		for i, set := range st.IDP.Issued(t) {
			real["issued access token #"+strconv.Itoa(i)] = set.AccessToken
			real["issued refresh token #"+strconv.Itoa(i)] = set.RefreshToken
			real["issued ID token #"+strconv.Itoa(i)] = set.IDToken
		}
		if len(st.Upstream.SeenTokens()) == 0 || len(st.IDP.Issued(t)) == 0 {
			t.Fatalf("no real token to compare with (upstream saw %d, provider issued %d)", len(st.Upstream.SeenTokens()), len(st.IDP.Issued(t)))
		}
		for tokName, tok := range real {
			if tok == "" {
				continue
			}
			for what, s := range readable {
				if strings.Contains(s, tok) || containsTokenPart(s, tok) {
					t.Errorf("%s contains the %s", what, tokName)
				}
			}
		}

		// The BFF's cookies exist, are HttpOnly, and none is in document.cookie.
		var bffCookies []string
		for _, c := range tab.Cookies(t, app+"/") {
			if !strings.HasPrefix(c.Name, sessionPrefix) {
				continue
			}
			bffCookies = append(bffCookies, c.Name)
			if !c.HTTPOnly || !c.Secure {
				t.Errorf("cookie %s: HttpOnly=%v Secure=%v, want both", c.Name, c.HTTPOnly, c.Secure)
			}
			if strings.Contains(docCookie, c.Name) || (c.Value != "" && strings.Contains(docCookie, c.Value)) {
				t.Errorf("document.cookie holds the BFF cookie %s", c.Name)
			}
		}
		if len(bffCookies) == 0 {
			t.Errorf("the browser holds no BFF cookie: the check would be empty")
		}
		if shown := tab.Text(t, "#cookies"); shown != `document.cookie = ""` {
			t.Errorf("#cookies shows %q, want an empty document.cookie", shown)
		}
	})

	t.Run("page_calls_api_through_proxy", func(t *testing.T) {
		t.Parallel()
		st := stack(t, StackOptions{})
		tab := startChromium(t)
		tab.SignIn(t, st.BFF.URL(), "carol")

		before := len(st.Upstream.Requests())
		tab.Click(t, "#call-api")
		shown := waitText(t, tab, "#api-result", "HTTP ")
		status, body, _ := strings.Cut(shown, "\n")
		if status != "HTTP 200" {
			t.Fatalf("#api-result = %q, want HTTP 200", shown)
		}
		var who struct {
			Sub string   `json:"sub"`
			Aud []string `json:"aud"`
		}
		if err := json.Unmarshal([]byte(body), &who); err != nil {
			t.Fatalf("#api-result body: %v", err)
		}
		if who.Sub != "carol" {
			t.Errorf("#api-result shows sub %q, want carol", who.Sub)
		}
		reqs := st.Upstream.Requests()[before:]
		if len(reqs) != 1 {
			t.Fatalf("upstream saw %d requests for one click, want 1", len(reqs))
		}
		r := reqs[0]
		if r.Path != "/api/whoami" || !r.AuthOK || r.Sub != "carol" || r.AuthHeaders != 1 {
			t.Errorf("upstream saw %s %s auth_ok=%v sub=%q auth_headers=%d (%s); want one valid bearer for carol",
				r.Method, r.Path, r.AuthOK, r.Sub, r.AuthHeaders, r.AuthError)
		}
		for _, c := range r.CookieNames {
			if strings.HasPrefix(c, sessionPrefix) {
				t.Errorf("upstream received the BFF cookie %s", c)
			}
		}
		if len(r.CookieNames) != 0 {
			t.Logf("note: upstream received cookies %v", r.CookieNames)
		}
	})

	t.Run("parallel_fetches_share_one_refresh", func(t *testing.T) {
		t.Parallel()
		const ttl = 5 * time.Second
		st := stack(t, StackOptions{AccessTTL: ttl, RefreshMargin: 2 * time.Second})
		tab := startChromium(t)
		tab.SignIn(t, st.BFF.URL(), "dave")
		signedIn := time.Now() // the access token was issued before this

		st.IDP.Reset(t)
		time.Sleep(time.Until(signedIn.Add(ttl + 500*time.Millisecond))) // expired, not only in the margin
		const n = 20
		results := Eval[[]fetchResult](t, tab, `Promise.all(Array.from({length: 20}, () =>
  fetch('/api/whoami', {credentials: 'same-origin', headers: {'X-CSRF': '1', Accept: 'application/json'}})
    .then(async (r) => ({status: r.status, body: await r.text()}))))`)
		if len(results) != n {
			t.Fatalf("got %d results, want %d", len(results), n)
		}
		for i, r := range results {
			if r.Status != http.StatusOK || !strings.Contains(r.Body, `"sub":"dave"`) {
				t.Errorf("fetch %d: status %d: %.200s", i, r.Status, r.Body)
			}
		}
		s := st.IDP.Stats(t)
		if s.TokenCalls["refresh_token"] != 1 || s.RefreshSuccess != 1 || s.TokenErrors["refresh_token"] != 0 {
			t.Errorf("provider token endpoint saw %d refresh call(s), %d successful, %d failed; want exactly 1 successful",
				s.TokenCalls["refresh_token"], s.RefreshSuccess, s.TokenErrors["refresh_token"])
		}
		if r := tab.Fetch(t, http.MethodGet, "/auth/user", nil); r.Status != http.StatusOK {
			t.Errorf("session lost after the refresh: /auth/user %d", r.Status)
		}
	})

	t.Run("sign_out_kills_session_everywhere", func(t *testing.T) {
		t.Parallel()
		st := stack(t, StackOptions{})
		tab := startChromium(t)
		app := st.BFF.URL()
		tab.SignIn(t, app, "erin")

		// What a thief would copy before the user signs out.
		stolen := cookieHeader(tab.Cookies(t, app+"/"))
		if !strings.Contains(stolen, sessionCookie+"=") {
			t.Fatalf("no session cookie %s in the browser", sessionCookie)
		}
		thief := newBrowser(t)
		replay := func(path string) int {
			return thief.Get(t, app+path, map[string]string{"Cookie": stolen, "X-CSRF": "1"}).Status
		}
		if got := replay("/auth/user"); got != http.StatusOK {
			t.Fatalf("copied cookies before logout: /auth/user %d, want 200 (replay is not meaningful)", got)
		}
		rt := lastRefreshToken(t, st.IDP)
		if !st.IDP.Introspect(t, rt) {
			t.Fatalf("the refresh token is not active before logout")
		}
		st.IDP.Reset(t)

		tab.Click(t, "#logout")
		tab.WaitState(t, app, stateIDPLogout)
		loc, err := url.Parse(tab.Location(t))
		if err != nil {
			t.Fatal(err)
		}
		if loc.Scheme+"://"+loc.Host != st.IDP.Issuer() || !strings.HasPrefix(loc.Path, "/session/end") {
			t.Errorf("sign-out confirmation at %s, want the provider's end-session page", redactURL(loc.String()))
		}
		tab.Click(t, `button[name="logout"]`)
		tab.WaitState(t, app, stateSignedOut)
		if got := tab.Location(t); got != app+"/" {
			t.Errorf("after sign-out the browser is at %s, want the app %s", redactURL(got), app+"/")
		}
		if r := tab.Fetch(t, http.MethodGet, "/auth/user", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("page's /auth/user after sign-out: %d, want 401", r.Status)
		}
		for _, c := range tab.Cookies(t, app+"/") {
			if strings.HasPrefix(c.Name, sessionPrefix) {
				t.Errorf("cookie %s still in the browser after sign-out", c.Name)
			}
		}

		s := st.IDP.Stats(t)
		for deadline := time.Now().Add(2 * time.Second); s.Revocations == 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			s = st.IDP.Stats(t)
		}
		if s.EndSessions != 1 {
			t.Errorf("provider completed %d end-session(s), want 1", s.EndSessions)
		}
		if s.Revocations < 1 {
			t.Errorf("provider revoked no token at sign-out; stats %+v", s)
		}
		if st.IDP.Introspect(t, rt) {
			t.Errorf("the refresh token is still active at the provider after sign-out")
		}

		before := len(st.Upstream.Requests())
		if got := replay("/auth/user"); got != http.StatusUnauthorized {
			t.Errorf("pre-logout cookies replayed: /auth/user %d, want 401", got)
		}
		if got := replay("/api/whoami"); got != http.StatusUnauthorized {
			t.Errorf("pre-logout cookies replayed: /api/whoami %d, want 401", got)
		}
		if len(st.Upstream.Requests()) != before {
			t.Errorf("a replayed, signed-out session reached the upstream")
		}
	})

	t.Run("backchannel_logout_ends_session", func(t *testing.T) {
		t.Parallel()
		st := stack(t, StackOptions{})
		tab := startChromium(t)
		app := st.BFF.URL()
		tab.SignIn(t, app, "frank")
		st.IDP.Reset(t)

		// End the session at the provider itself, not through the app.
		tab.Navigate(t, st.IDP.EndSessionURL())
		tab.WaitState(t, app, stateIDPLogout)
		tab.Click(t, `button[name="logout"]`)
		tab.WaitState(t, app, stateIDPLoggedOut)

		s := st.IDP.Stats(t)
		for deadline := time.Now().Add(5 * time.Second); s.BackchannelSuccess+s.BackchannelError == 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			s = st.IDP.Stats(t)
		}
		if s.BackchannelSuccess != 1 || s.BackchannelError != 0 {
			t.Errorf("provider delivered %d logout token(s), %d failed; want 1 delivered to %s/auth/backchannel-logout",
				s.BackchannelSuccess, s.BackchannelError, app)
		}

		// The next request of the page finds the session dead.
		tab.Navigate(t, app+"/")
		if got := tab.WaitState(t, app, stateSignedOut, stateSignedIn); got != stateSignedOut {
			t.Errorf("the app still shows the user after the provider ended the session")
		}
		if r := tab.Fetch(t, http.MethodGet, "/auth/user", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("page's /auth/user after back-channel logout: %d, want 401", r.Status)
		}
	})

	t.Run("two_tabs_sign_in_at_once", func(t *testing.T) {
		t.Parallel()
		st := stack(t, StackOptions{})
		app := st.BFF.URL()
		tab1 := startChromium(t)
		tab2 := tab1.NewTab(t)

		// Both tabs are at the provider's login form before either submits.
		tab1.StartSignIn(t, app)
		tab2.StartSignIn(t, app)
		loginCookies := 0
		for _, c := range tab1.Cookies(t, app+"/") {
			if strings.HasPrefix(c.Name, loginCookiePrefix) {
				loginCookies++
			}
		}
		if loginCookies != 2 {
			t.Errorf("%d login cookies while two sign-ins are pending, want 2 (one per flow)", loginCookies)
		}

		// Interleave the two flows at the provider and finish them in the
		// reverse order they started: tab 1 signs in at the provider, then
		// tab 2 does, then tab 2 reaches the app first, then tab 1. Each
		// callback must find its own login cookie. (The steps are not sent
		// in the same millisecond: the provider rotates its own session id
		// at every login, so two logins racing in one browser can make the
		// provider itself answer "interaction session and authentication
		// session mismatch", which says nothing about the BFF.)
		for i, tab := range []*Tab{tab1, tab2} {
			if err := tab.fillLogin("grace"); err != nil {
				t.Fatalf("tab %d: %v", i+1, err)
			}
			tab.WaitState(t, app, stateIDPConsent, stateSignedIn)
		}
		for i, tab := range []*Tab{tab2, tab1} {
			if err := tab.finishLogin(app, "grace"); err != nil {
				t.Fatalf("tab %d: %v", 2-i, err)
			}
		}
		for i, tab := range []*Tab{tab1, tab2} {
			if got := tab.Text(t, "#user"); !strings.HasPrefix(got, "Signed in as Test User grace") {
				t.Errorf("tab %d: #user = %q", i+1, got)
			}
			if r := tab.Fetch(t, http.MethodGet, "/auth/user", nil); r.Status != http.StatusOK {
				t.Errorf("tab %d: /auth/user %d, want 200", i+1, r.Status)
			}
		}
		for _, c := range tab1.Cookies(t, app+"/") {
			if strings.HasPrefix(c.Name, loginCookiePrefix) {
				t.Errorf("login cookie %s left after both callbacks", c.Name)
			}
		}
		if s := st.IDP.Stats(t); s.TokenCalls["authorization_code"] != 2 || s.TokenErrors["authorization_code"] != 0 {
			t.Errorf("provider token endpoint: %+v, want two successful code exchanges", s)
		}
	})
}

// assertBrowserRunLogsClean checks that the BFF's logs of a browser case
// hold no token the provider issued (raw access, refresh and ID tokens, or a
// long piece of one), no client or key secret, and nothing JWT- or
// JWE-looking (the session and login cookie values are compact JWEs, so this
// covers them too).
//
// Positive controls, so that the search cannot pass on nothing: the log holds
// the BFF's request lines (it is not empty, and it is the log the search
// reads); and when signedIn (the case signed somebody in through this BFF),
// it holds the sign-in line, and the provider's list of issued tokens, which
// the search looks for, holds access and refresh tokens.
func assertBrowserRunLogsClean(t *testing.T, st *Stack, signedIn bool) {
	t.Helper()
	logs := st.BFF.Logs()
	issued := st.IDP.Issued(t)
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Errorf("the logs of the BFF at %s hold no request line (%d bytes): the secret search would pass vacuously", st.BFF.URL(), len(logs))
	}
	if signedIn {
		if !strings.Contains(logs, `"msg":"signed in"`) {
			t.Errorf("the BFF at %s signed somebody in but its logs hold no sign-in line: the secret search would not see that step", st.BFF.URL())
		}
		var access, refresh int
		for _, set := range issued {
			if set.AccessToken != "" {
				access++
			}
			if set.RefreshToken != "" {
				refresh++
			}
		}
		if access == 0 || refresh == 0 {
			t.Errorf("the provider lists %d token set(s), %d with an access token and %d with a refresh token, after a sign-in: the secret search would look for nothing",
				len(issued), access, refresh)
		}
	}
	if strings.Contains(logs, "eyJ") {
		t.Errorf("BFF logs contain an eyJ (JWT/JWE-looking) string")
	}
	secrets := map[string]string{
		"client secret": st.IDP.ClientSecret(),
		"key secret":    st.BFF.opts.KeySecret,
	}
	for i, set := range issued {
		secrets["issued access token #"+strconv.Itoa(i)] = set.AccessToken
		secrets["issued refresh token #"+strconv.Itoa(i)] = set.RefreshToken
		secrets["issued ID token #"+strconv.Itoa(i)] = set.IDToken
	}
	for what, s := range secrets {
		if s != "" && (strings.Contains(logs, s) || containsTokenPart(logs, s)) {
			t.Errorf("BFF logs contain the %s", what)
		}
	}
}

// appPageDir copies the sample page (demo/page) into a temporary directory
// for the BFF's static_dir.
func appPageDir(t *testing.T) string {
	t.Helper()
	src := filepath.Join(repoRoot, "demo", "page")
	dst := t.TempDir()
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatalf("e2e: sample page: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatalf("e2e: sample page: %v", err)
		}
	}
	return dst
}

// waitText waits until the element's text starts with prefix and returns it.
func waitText(t *testing.T, tab *Tab, css, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var s string
	for time.Now().Before(deadline) {
		if s = tab.Text(t, css); strings.HasPrefix(s, prefix) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("e2e: %s shows %q, want text starting with %q", css, s, prefix)
	return ""
}

// cookieHeader renders cookies as a Cookie request header.
func cookieHeader(cs []*network.Cookie) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// lastRefreshToken is the newest refresh token the provider issued.
func lastRefreshToken(t *testing.T, idp *IDP) string {
	t.Helper()
	issued := idp.Issued(t)
	for i := len(issued) - 1; i >= 0; i-- {
		if issued[i].RefreshToken != "" {
			return issued[i].RefreshToken
		}
	}
	t.Fatalf("the provider issued no refresh token")
	return ""
}

// containsTokenPart reports whether s holds the signature part of a JWT
// (unique to that token) or, for an opaque token, any 24-character piece
// of it.
func containsTokenPart(s, tok string) bool {
	if parts := strings.Split(tok, "."); len(parts) == 3 && len(parts[2]) >= 24 {
		return strings.Contains(s, parts[2])
	}
	for i := 0; i+24 <= len(tok); i += 12 {
		if strings.Contains(s, tok[i:i+24]) {
			return true
		}
	}
	return false
}
