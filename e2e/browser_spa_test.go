package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// spaSuiteBudget is the wall time TestBrowserSPA must stay under on a
// 2-core machine.
const spaSuiteBudget = 90 * time.Second

// machineBusy reports the 1-minute load average and whether it is over
// twice the CPU count: then the wall time measures the other work, not this
// suite (the budget is for this suite on an otherwise quiet 2-core machine).
func machineBusy() (string, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown", false
	}
	first, _, _ := strings.Cut(string(b), " ")
	load, err := strconv.ParseFloat(first, 64)
	return first, err == nil && load > 2*float64(runtime.NumCPU())
}

// spaCustomCSP is a custom static_csp that allows the page's inline style.
const spaCustomCSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

// spaIdleTimeout is session.idle_timeout of the BFF that sets it (5 s is
// the least the BFF accepts).
const spaIdleTimeout = 6 * time.Second

// spaLoginErrorPath is login_error_path of the BFF that sets it.
const spaLoginErrorPath = "/signin-problem"

// TestBrowserSPA proves, in Debian's headless Chromium against the real
// oidc-provider, what a single-page app served by the BFF from static_dir
// relies on: anti-forgery by kind of request (WebSocket and EventSource
// without a header from the app's own origin, refused from another; no
// top-level navigation to an API unless the route serves downloads), the
// history fallback and the app's CSP and caching, sign-in errors that
// return to the app, silent sign-in and re-authentication, userinfo claims,
// idle timeout and persistent cookies.
//
// One provider, one upstream and four BFFs (A: defaults; B: custom CSP,
// login_error_path, persistent cookies; C: static_csp "off", 6 s idle
// timeout; D: userinfo, against a second provider that puts the profile
// claims only in userinfo) serve every case; each case has its own browser
// context (own cookies, own provider session) in one Chromium.
//
//	go test ./e2e/ -run '^TestBrowserSPA' -v -count=1
func TestBrowserSPA(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	start := time.Now()
	t.Cleanup(func() {
		elapsed := time.Since(start)
		load, busy := machineBusy()
		t.Logf("SPA browser suite wall time: %s (budget %s; load average %s on %d CPUs)",
			elapsed.Round(100*time.Millisecond), spaSuiteBudget, load, runtime.NumCPU())
		switch {
		case elapsed <= spaSuiteBudget:
		case busy:
			t.Logf("over the %s budget, on a machine other work keeps busy: not counted", spaSuiteBudget)
		default:
			t.Errorf("SPA browser suite took %s, over its %s budget", elapsed.Round(time.Second), spaSuiteBudget)
		}
	})
	appDir := spaAppDir(t)

	portA, portB, portC, portD := freePort(t), freePort(t), freePort(t), freePort(t)
	origin := func(port int) string { return fmt.Sprintf("http://localhost:%d", port) }
	var callbacks, landings []string
	for _, p := range []int{portA, portB, portC} {
		callbacks = append(callbacks, origin(p)+"/auth/callback")
		landings = append(landings, origin(p)+"/")
	}
	// Everything starts at once and is waited for afterwards: the two
	// providers, the build of the BFF binary, the four BFFs, Chromium.
	waitIDP := launchSPAIDP(t, IDPOptions{RedirectURIs: callbacks, PostLogoutRedirectURIs: landings}, false)
	waitIDPUI := launchSPAIDP(t, IDPOptions{RedirectURIs: []string{origin(portD) + "/auth/callback"}, PostLogoutRedirectURIs: []string{origin(portD) + "/"}}, true)
	bffBinary(t)
	idp, idpUI := waitIDP(), waitIDPUI()
	up := startSPAUpstream(t, idp.Issuer())

	bff := func(o spaBFFOptions) func() *BFF {
		t.Helper()
		if o.IDP == nil {
			o.IDP = idp
		}
		o.Upstream, o.StaticDir = up.URL(), appDir
		wait := launchSPABFF(t, o)
		return func() *BFF {
			t.Helper()
			b := wait()
			st := &Stack{IDP: o.IDP, Upstream: up.api, BFF: b}
			t.Cleanup(func() {
				// Which BFFs sign somebody in depends on the cases run
				// (-run): the BFF's own count of sealed sessions says.
				mc := &http.Client{Timeout: 5 * time.Second}
				sealed := metric(getMetrics(t, mc, b.MetricsURL()), "bff_sessions_total", map[string]string{"event": "sealed"})
				assertBrowserRunLogsClean(t, st, sealed > 0)
			})
			return b
		}
	}
	waitA := bff(spaBFFOptions{Port: portA})
	waitB := bff(spaBFFOptions{Port: portB, StaticCSP: spaCustomCSP, LoginErrorPath: spaLoginErrorPath, Persistent: true})
	waitC := bff(spaBFFOptions{Port: portC, StaticCSP: "off", IdleTimeout: spaIdleTimeout})
	waitD := bff(spaBFFOptions{Port: portD, IDP: idpUI, UserInfo: true})
	chromium := startChromium(t)
	bffA, bffB, bffC, bffD := waitA(), waitB(), waitC(), waitD()
	t.Logf("setup (2 providers, 4 BFFs, Chromium): %s", time.Since(start).Round(100*time.Millisecond))

	// First and alone (not parallel): the only case with a deadline of a
	// few seconds, which a loaded machine's slow page loads could miss.
	t.Run("idle_session_ends_active_does_not", func(t *testing.T) {
		app := bffC.URL()
		const idle = spaIdleTimeout
		const wait = idle + 2*time.Second // past the timeout, with room for whole-second LastSeen
		// Three people sign in at once. From its sign-in on, each acts on
		// its own: the active one calls the API every second, the no-slide
		// one reads /auth/user?slide=false every second, the idle one does
		// nothing; each for `wait`.
		type person struct {
			tab      *Tab
			user     string
			poll     string // script run every second; "" for the idle one
			statuses []int
			err      error
		}
		people := []*person{
			{user: "ida"},
			{user: "ace", poll: `spa.get('/api/whoami', {'X-CSRF': '1'})`},
			{user: "nils", poll: `spa.get('/auth/user?slide=false', {'X-CSRF': '1'})`},
		}
		for _, p := range people {
			p.tab = chromium.Isolated(t)
		}
		var wg sync.WaitGroup
		for _, p := range people {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.err = p.tab.signIn(app, p.user); p.err != nil {
					return
				}
				signedIn := time.Now() // its last request: the page's /auth/user
				for p.poll != "" && time.Since(signedIn) < wait {
					r, err := evalErr[pageResponse](p.tab, p.poll)
					if err != nil {
						p.err = err
						return
					}
					p.statuses = append(p.statuses, r.Status)
					time.Sleep(time.Second)
				}
				time.Sleep(time.Until(signedIn.Add(wait)))
			}()
		}
		wg.Wait()
		for _, p := range people {
			if p.err != nil {
				t.Fatalf("%s: %v", p.user, p.err)
			}
		}
		idler, active, noSlide := people[0], people[1], people[2]

		if len(active.statuses) < int(wait/time.Second)-1 || slices.ContainsFunc(active.statuses, func(s int) bool { return s != http.StatusOK }) {
			t.Errorf("active session's API calls, one a second for %s: %v, want all 200", wait, active.statuses)
		}
		if r := Eval[pageResponse](t, active.tab, `spa.get('/auth/user', {'X-CSRF': '1'})`); r.Status != http.StatusOK {
			t.Errorf("active session after %s: /auth/user %d, want 200", wait, r.Status)
		}
		if s := noSlide.statuses; len(s) == 0 || s[0] != http.StatusOK || s[len(s)-1] != http.StatusUnauthorized {
			t.Errorf("/auth/user?slide=false once a second for %s: %v, want 200 first (positive control) and 401 last (it does not slide)", wait, s)
		}
		// The idle browser still has its cookies: the server ends the session.
		if len(bffSessionCookies(t, idler.tab, app)) == 0 {
			t.Errorf("the idle browser has no session cookie left: the check below would prove nothing")
		}
		if r := Eval[pageResponse](t, idler.tab, `spa.get('/auth/user', {'X-CSRF': '1'})`); r.Status != http.StatusUnauthorized {
			t.Errorf("idle session after %s: /auth/user %d, want 401", wait, r.Status)
		}
	})

	t.Run("streams_same_origin_only", func(t *testing.T) {
		t.Parallel()
		app := bffA.URL()
		tab := chromium.Isolated(t)
		tab.SignIn(t, app, "wendy")

		// The app's own page: no header on either (browsers cannot add one).
		ws := Eval[streamResult](t, tab, `spa.ws('/api/ws/app', 'hello')`)
		sse := Eval[streamResult](t, tab, `spa.sse('/api/events/app', 3)`)
		if len(ws.Messages) != 1 || ws.Messages[0] != "sub=wendy echo=hello" {
			t.Errorf("WebSocket from the app: %+v, want the upstream's echo for wendy", ws)
		}
		if len(sse.Messages) != 3 {
			t.Errorf("EventSource from the app: %+v, want 3 events", sse)
		}
		for i, m := range sse.Messages {
			var ev struct {
				N   int    `json:"n"`
				Sub string `json:"sub"`
			}
			if json.Unmarshal([]byte(m), &ev) != nil || ev.N != i+1 || ev.Sub != "wendy" {
				t.Errorf("event %d = %q, want n=%d for wendy", i, m, i+1)
			}
		}
		for _, path := range []string{"/api/ws/app", "/api/events/app"} {
			seen := up.Seen(path)
			if len(seen) != 1 || !seen[0].AuthOK || seen[0].Sub != "wendy" || seen[0].AuthHeaders != 1 {
				t.Errorf("upstream saw %s as %+v; want one request with a verified bearer for wendy", path, seen)
			}
		}

		// A fetch() GET without the header, marked same-origin, passes too.
		if r := Eval[pageResponse](t, tab, `spa.get('/api/no-header')`); r.Status != http.StatusOK {
			t.Errorf("the app's fetch GET without the header: %d, want 200", r.Status)
		}
		if seen := up.Seen("/api/no-header"); len(seen) != 1 || !seen[0].AuthOK || seen[0].Sub != "wendy" {
			t.Errorf("upstream saw the app's fetch without the header as %+v; want one verified bearer for wendy", seen)
		}

		// The same from another origin of the same site, in the same
		// browser: the session cookies go along (SameSite=Lax ignores the
		// port), so only the BFF's anti-forgery checks stand in the way.
		// And from another site, whose requests carry no cookie.
		sameSite, crossSite := startOtherOrigin(t)
		other := tab.NewTab(t)
		for _, o := range []struct{ tag, url string }{{"foreign", sameSite}, {"cross-site", crossSite}} {
			other.Navigate(t, o.url+"/")
			got := Eval[map[string]streamResult](t, other, `attack(`+jsString(app)+`, `+jsString("ws"+strings.TrimPrefix(app, "http"))+`, `+jsString(o.tag)+`)`)
			if r := got["ws"]; r.Opened || len(r.Messages) != 0 {
				t.Errorf("%s: WebSocket from %s: %+v, want it refused", o.tag, o.url, r)
			}
			if r := got["sse"]; len(r.Messages) != 0 {
				t.Errorf("%s: EventSource from %s: %+v, want it refused", o.tag, o.url, r)
			}
			for _, path := range []string{"/api/ws/" + o.tag, "/api/events/" + o.tag} {
				if seen := up.Seen(path); len(seen) != 0 {
					t.Errorf("upstream saw %d request(s) to %s from %s", len(seen), path, o.url)
				}
				// The browser did send them (the check above is not empty),
				// and the BFF refused them as forgeries, not as signed out.
				if st := waitAccessStatus(bffA, path); len(st) == 0 || slices.ContainsFunc(st, func(s int) bool { return s != http.StatusForbidden }) {
					t.Errorf("BFF answered %s from %s with %v, want 403", path, o.url, st)
				}
			}
		}
		if r := Eval[pageResponse](t, tab, `spa.get('/auth/user', {'X-CSRF': '1'})`); r.Status != http.StatusOK || !strings.Contains(r.Body, "wendy") {
			t.Errorf("after the other origin's attempts the app's /auth/user answers %d", r.Status)
		}

		wsText, _ := json.Marshal(ws)
		sseText, _ := json.Marshal(sse)
		assertPageHoldsNoToken(t, tab, app, idp, up, map[string]string{
			"WebSocket messages":   string(wsText),
			"EventSource messages": string(sseText),
		})
	})

	t.Run("navigation_refused_downloads_allowed", func(t *testing.T) {
		t.Parallel()
		app := bffA.URL()
		tab := chromium.Isolated(t)
		tab.SignIn(t, app, "nora")

		// A top-level navigation to an API: 403 JSON, the upstream never asked.
		resp := tab.NavigateResponse(t, app+"/api/nav-probe")
		body := Eval[string](t, tab, `document.body ? document.body.innerText : ''`)
		var e struct {
			Error string `json:"error"`
		}
		if resp.Status != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("navigation to /api/nav-probe: %d %q, want 403 JSON with an error", resp.Status, body)
		}
		if ct := header(resp.Headers, "Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("navigation to /api/nav-probe: Content-Type %q, want JSON", ct)
		}
		if seen := up.Seen("/api/nav-probe"); len(seen) != 0 {
			t.Errorf("upstream saw the navigation to /api/nav-probe")
		}
		// Positive control: the app's fetch of the same URL reaches it.
		tab.Navigate(t, app+"/")
		tab.WaitState(t, app, stateSignedIn)
		if r := Eval[pageResponse](t, tab, `spa.get('/api/nav-probe', {'X-CSRF': '1'})`); r.Status != http.StatusOK {
			t.Errorf("the app's fetch of /api/nav-probe: %d, want 200", r.Status)
		}
		if seen := up.Seen("/api/nav-probe"); len(seen) != 1 || !seen[0].AuthOK || seen[0].Sub != "nora" {
			t.Errorf("upstream saw the app's fetch of /api/nav-probe as %+v; want one verified bearer for nora", seen)
		}

		// anti_forgery: "header" refuses what the default route accepts
		// (streams_same_origin_only): a WebSocket and an EventSource from
		// the app's own page, which cannot carry the header.
		ws := Eval[streamResult](t, tab, `spa.ws('/strict/ws/s', 'hello')`)
		sse := Eval[streamResult](t, tab, `spa.sse('/strict/events/s', 1)`)
		if ws.Opened || len(ws.Messages) != 0 || len(sse.Messages) != 0 {
			t.Errorf("route with anti_forgery header: WebSocket %+v, EventSource %+v; want both refused", ws, sse)
		}
		for _, path := range []string{"/strict/ws/s", "/strict/events/s"} {
			if seen := up.Seen(path); len(seen) != 0 {
				t.Errorf("upstream saw %s without the anti-forgery header", path)
			}
			if st := waitAccessStatus(bffA, path); len(st) == 0 || slices.ContainsFunc(st, func(s int) bool { return s != http.StatusForbidden }) {
				t.Errorf("BFF answered %s with %v, want 403", path, st)
			}
		}
		if r := Eval[pageResponse](t, tab, `spa.get('/strict/echo', {'X-CSRF': '1'})`); r.Status != http.StatusOK {
			t.Errorf("route with anti_forgery header, fetch with the header: %d, want 200", r.Status)
		}
		if seen := up.Seen("/strict/echo"); len(seen) != 1 || !seen[0].AuthOK {
			t.Errorf("upstream saw /strict/echo as %+v; want one verified bearer", seen)
		}

		// A route with downloads: true lets a navigation through, and the
		// browser saves the answer instead of rendering the upstream's HTML
		// on the app's origin.
		file, err := tab.download(t, `location.href = '/files/report.html'`, app+"/files/")
		if err != nil {
			t.Errorf("navigation to /files/report.html: %v", err)
		} else if !strings.Contains(file, "report for nora") {
			t.Errorf("downloaded file = %q, want the upstream's report", file)
		}
		if loc := tab.Location(t); loc != app+"/" {
			t.Errorf("after the download the tab is at %s, want the app still at %s", redactURL(loc), app+"/")
		}
		if rendered := Eval[string](t, tab, `typeof window.__reportRendered`); rendered != "undefined" {
			t.Errorf("the upstream's HTML ran on the app's origin")
		}
		if seen := up.Seen("/files/report.html"); len(seen) != 1 || !seen[0].AuthOK || seen[0].Sub != "nora" {
			t.Errorf("upstream saw /files/report.html as %+v; want one verified bearer for nora", seen)
		}
	})

	t.Run("history_fallback_and_caching", func(t *testing.T) {
		t.Parallel()
		app := bffA.URL()
		tab := chromium.Isolated(t)

		resp := tab.NavigateResponse(t, app+"/orders/42")
		if resp.Status != http.StatusOK || !strings.HasPrefix(header(resp.Headers, "Content-Type"), "text/html") {
			t.Errorf("deep link /orders/42: %d %q, want 200 HTML", resp.Status, header(resp.Headers, "Content-Type"))
		}
		if cc := header(resp.Headers, "Cache-Control"); cc != "no-cache" {
			t.Errorf("deep link /orders/42: Cache-Control %q, want no-cache (index.html)", cc)
		}
		tab.WaitState(t, app, stateSignedOut) // the app's script ran
		if got := tab.Text(t, "#route"); got != "/orders/42" {
			t.Errorf("the app sees route %q, want /orders/42", got)
		}

		asset := Eval[pageResponse](t, tab, `spa.get(`+jsString(spaAssetPath)+`)`)
		if asset.Status != http.StatusOK || !strings.Contains(asset.Headers["cache-control"], "immutable") {
			t.Errorf("hashed asset %s: %d, Cache-Control %q; want 200 immutable", spaAssetPath, asset.Status, asset.Headers["cache-control"])
		}
		index := Eval[pageResponse](t, tab, `spa.get('/')`)
		if index.Status != http.StatusOK || index.Headers["cache-control"] != "no-cache" || !strings.Contains(index.Body, `id="app"`) {
			t.Errorf("/: %d, Cache-Control %q; want 200 no-cache", index.Status, index.Headers["cache-control"])
		}
		// An asset miss is a miss, not index.html (positive control: the
		// real asset above answered 200).
		const missing = "/assets/missing.9a8b7c6d.js"
		if miss := Eval[pageResponse](t, tab, `spa.get(`+jsString(missing)+`)`); miss.Status != http.StatusNotFound {
			t.Errorf("asset miss %s: %d %.80q, want 404", missing, miss.Status, miss.Body)
		}
		if got := Eval[string](t, tab, `spa.loadScript(`+jsString(missing)+`)`); got != "error" {
			t.Errorf("<script src=%s>: %s, want a load error", missing, got)
		}
	})

	t.Run("static_csp_takes_effect", func(t *testing.T) {
		t.Parallel()
		tab := chromium.Isolated(t)
		for _, tc := range []struct {
			name      string
			b         *BFF
			csp       func(string) bool
			inlineRun bool
		}{
			{"default", bffA, func(h string) bool { return strings.HasPrefix(h, "default-src 'self'") }, false},
			{"custom", bffB, func(h string) bool { return h == spaCustomCSP }, true},
			{"off", bffC, func(h string) bool { return h == "" }, true},
		} {
			resp := tab.NavigateResponse(t, tc.b.URL()+"/")
			tab.WaitState(t, tc.b.URL(), stateSignedOut)
			if got := header(resp.Headers, "Content-Security-Policy"); !tc.csp(got) {
				t.Errorf("%s: Content-Security-Policy %q", tc.name, got)
			}
			color := Eval[string](t, tab, `spa.probeColor()`)
			if applied := color == spaProbeRGB; applied != tc.inlineRun {
				t.Errorf("%s: the page's inline style applied: %v (colour %s), want %v", tc.name, applied, color, tc.inlineRun)
			}
		}
	})

	t.Run("sign_in_cancelled_returns_to_app", func(t *testing.T) {
		t.Parallel()
		tab := chromium.Isolated(t)
		const returnTo = "/orders/7"
		cancel := func(b *BFF, wantPath string) {
			t.Helper()
			app := b.URL()
			tab.Navigate(t, app+"/auth/login?returnTo="+url.QueryEscape(returnTo))
			tab.WaitState(t, app, stateIDPLogin)
			tab.Click(t, `.login-help a`) // the provider's "[ Cancel ]"
			loc := tab.WaitLocation(t, app+wantPath, func(l string) bool { return strings.HasPrefix(l, app+"/") && !strings.HasPrefix(l, app+"/auth/") })
			u, _ := url.Parse(loc)
			if u.Path != wantPath || u.Query().Get("login_error") != "access_denied" {
				t.Errorf("cancelled at the provider, landed on %s, want %s?login_error=access_denied", redactURL(loc), app+wantPath)
			}
			tab.WaitState(t, app, stateSignedOut)
			if got := tab.Text(t, "#login-error"); got != "access_denied" {
				t.Errorf("the app shows login error %q", got)
			}
		}
		cancel(bffA, returnTo)          // the flow's returnTo
		cancel(bffB, spaLoginErrorPath) // login_error_path overrides it
	})

	t.Run("stale_callback_returns_to_app", func(t *testing.T) {
		t.Parallel()
		tab := chromium.Isolated(t)
		// A stale callback (the back button, a reload): the login cookie
		// of its flow is gone.
		app := bffA.URL()
		watched := tab.WatchRequests(t, app+"/auth/callback?")
		tab.SignIn(t, app, "stella")
		var callback string
		for _, u := range watched() {
			if strings.Contains(u, "code=") {
				callback = u
			}
		}
		if callback == "" {
			t.Fatal("no callback with a code seen during the sign-in")
		}
		tab.Navigate(t, callback)
		loc := tab.WaitLocation(t, "the app", func(l string) bool { return !strings.HasPrefix(l, app+"/auth/") })
		u, _ := url.Parse(loc)
		if !strings.HasPrefix(loc, app+"/") || u.Query().Get("login_error") != "invalid_state" {
			t.Errorf("stale callback landed on %s, want the app with login_error=invalid_state", redactURL(loc))
		}
	})

	t.Run("silent_sign_in_and_reauthentication", func(t *testing.T) {
		t.Parallel()
		app := bffA.URL()
		tab := chromium.Isolated(t)

		// No provider session: prompt=none comes back with login_required.
		tab.Navigate(t, app+"/auth/login?prompt=none&returnTo=/")
		loc := tab.WaitLocation(t, "the app", func(l string) bool { return strings.HasPrefix(l, app+"/") && !strings.HasPrefix(l, app+"/auth/") })
		if u, _ := url.Parse(loc); u.Path != "/" || u.Query().Get("login_error") != "login_required" {
			t.Errorf("silent sign-in without a provider session landed on %s, want /?login_error=login_required", redactURL(loc))
		}
		tab.WaitState(t, app, stateSignedOut)
		tab.SignIn(t, app, "sam") // the provider's login form appears: no session there yet

		// A provider session now: a plain sign-in passes without the form
		// (positive control for max_age=0 below).
		tab.Navigate(t, app+"/auth/login?returnTo=/")
		if st := tab.WaitState(t, app, stateIDPLogin, stateIDPConsent, stateSignedIn); st != stateSignedIn {
			t.Fatalf("sign-in with a provider session stopped at %s, want straight back to the app", st)
		}

		// max_age=0: the provider asks for the password again.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // auth_time has whole seconds
		reauth := time.Now().Unix()
		tab.Navigate(t, app+"/auth/login?max_age=0&returnTo=/")
		if st := tab.WaitState(t, app, stateIDPLogin, stateIDPConsent, stateSignedIn); st != stateIDPLogin {
			t.Fatalf("sign-in with max_age=0 reached %s, want the provider's login form", st)
		}
		if err := tab.finishLogin(app, "sam"); err != nil {
			t.Fatal(err)
		}
		r := Eval[pageResponse](t, tab, `spa.get('/auth/user', {'X-CSRF': '1'})`)
		var user struct {
			AuthTime float64 `json:"auth_time"`
			Claims   struct {
				AuthTime float64 `json:"auth_time"`
			} `json:"claims"`
		}
		if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &user) != nil {
			t.Fatalf("/auth/user after re-authentication: %d %.200s", r.Status, r.Body)
		}
		authTime := max(user.AuthTime, user.Claims.AuthTime)
		if int64(authTime) < reauth || int64(authTime) > time.Now().Unix()+1 {
			t.Errorf("/auth/user auth_time = %v, want the re-authentication's time (>= %d): %.300s", authTime, reauth, r.Body)
		}

		// Signed out at the BFF only (cookies cleared), signed in at the
		// provider: prompt=none signs in without any page of the provider.
		if n := tab.DeleteCookies(t, app+"/", sessionPrefix); n == 0 {
			t.Fatal("no BFF cookie to delete")
		}
		if r := Eval[pageResponse](t, tab, `spa.get('/auth/user', {'X-CSRF': '1'})`); r.Status != http.StatusUnauthorized {
			t.Fatalf("/auth/user with the cookies deleted: %d, want 401", r.Status)
		}
		tab.Navigate(t, app+"/auth/login?prompt=none&returnTo=/")
		if st := tab.WaitState(t, app, stateIDPLogin, stateIDPConsent, stateSignedIn, stateSignedOut); st != stateSignedIn {
			t.Errorf("silent sign-in with a provider session: the page is %s (at %s), want signed in", st, redactURL(tab.Location(t)))
		}
		if loc := tab.Location(t); loc != app+"/" {
			t.Errorf("silent sign-in landed on %s, want %s", redactURL(loc), app+"/")
		}
	})

	t.Run("userinfo_claims_in_user", func(t *testing.T) {
		t.Parallel()
		app := bffD.URL()
		tab := chromium.Isolated(t)
		tab.SignIn(t, app, "uma")

		// The provider put the profile claims only in userinfo (the
		// positive control that /auth/user can only have them from there).
		issued := idpUI.Issued(t)
		if len(issued) == 0 {
			t.Fatal("the provider issued no token")
		}
		idc := idTokenClaims(t, issued[len(issued)-1].IDToken)
		if idc["sub"] != "uma" || idc["name"] != nil || idc["email"] != nil {
			t.Errorf("the ID token has sub %v, name %v, email %v; the setup wants only sub (claims in userinfo)", idc["sub"], idc["name"], idc["email"])
		}
		r := Eval[pageResponse](t, tab, `spa.get('/auth/user', {'X-CSRF': '1'})`)
		var user struct {
			Sub    string         `json:"sub"`
			Claims map[string]any `json:"claims"`
		}
		if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &user) != nil {
			t.Fatalf("/auth/user: %d %.200s", r.Status, r.Body)
		}
		if user.Sub != "uma" || user.Claims["name"] != "Test User uma" || user.Claims["email"] != "uma@example.test" {
			t.Errorf("/auth/user = %.300s; want the userinfo claims name and email", r.Body)
		}
		if got := tab.Text(t, "#user"); got != "Signed in as Test User uma" {
			t.Errorf("#user = %q", got)
		}
	})

	t.Run("persistent_cookies", func(t *testing.T) {
		t.Parallel()
		tab := chromium.Isolated(t)
		appB, appA := bffB.URL(), bffA.URL()
		tab.SignIn(t, appB, "perry")
		r := Eval[pageResponse](t, tab, `spa.get('/auth/user', {'X-CSRF': '1'})`)
		var user struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &user) != nil {
			t.Fatalf("/auth/user: %d %.200s", r.Status, r.Body)
		}
		persistent := bffSessionCookies(t, tab, appB)
		if len(persistent) == 0 {
			t.Fatal("no session cookie from the BFF with persistent: true")
		}
		for _, c := range persistent {
			exp := time.Unix(int64(c.Expires), 0)
			if c.Session || exp.Before(user.ExpiresAt.Add(-time.Minute)) || exp.After(user.ExpiresAt.Add(time.Minute)) {
				t.Errorf("persistent: cookie %s session=%v expires %s, want it to expire with the session at %s",
					c.Name, c.Session, exp.UTC().Format(time.RFC3339), user.ExpiresAt.UTC().Format(time.RFC3339))
			}
		}
		// Positive control: the default BFF in the same browser writes
		// browser-session cookies.
		tab.Navigate(t, appA+"/auth/login?returnTo=/")
		if err := tab.finishLogin(appA, "perry"); err != nil {
			t.Fatal(err)
		}
		session := bffSessionCookies(t, tab, appA)
		if len(session) == 0 {
			t.Fatal("no session cookie from the default BFF")
		}
		for _, c := range session {
			if !c.Session {
				t.Errorf("default: cookie %s expires %v, want a browser-session cookie", c.Name, c.Expires)
			}
		}
	})
}

// header returns a response header of the DevTools protocol by name, in
// any case.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// download lets the tab's browser context save files into a temporary
// directory, runs script, and waits for one download from a URL starting
// with prefix to complete; it returns the file's content.
func (tb *Tab) download(t *testing.T, script, prefix string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	c := chromedp.FromContext(tb.ctx)
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	events := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: c.BrowserContextID,
		DownloadPath: dir, EventsEnabled: &events,
	}); err != nil {
		return "", fmt.Errorf("set download behaviour: %w", err)
	}
	var mu sync.Mutex
	guid := ""
	finished := make(chan browser.DownloadProgressState, 1)
	if err := chromedp.ListenBrowser(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			if guid == "" && strings.HasPrefix(e.URL, prefix) {
				guid = e.GUID
			}
		case *browser.EventDownloadProgress:
			if e.GUID == guid && e.State != browser.DownloadProgressStateInProgress {
				select {
				case finished <- e.State:
				default:
				}
			}
		}
	}); err != nil {
		return "", err
	}
	if _, err := run(tb, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		return "", fmt.Errorf("run %q: %w", script, err)
	}
	select {
	case st := <-finished:
		if st != browser.DownloadProgressStateCompleted {
			return "", fmt.Errorf("download ended %s", st)
		}
	case <-ctx.Done():
		return "", fmt.Errorf("no download completed within %s (the page is at %s)", stepTimeout, redactURL(tb.Location(t)))
	}
	mu.Lock()
	name := guid
	mu.Unlock()
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(b), err
}

// TestBrowserSPADemo runs `bff demo` and, in Chromium, watches its sample
// page's live events arrive through the BFF (an EventSource, which cannot
// send the anti-forgery header) and its list of the cookies the browser
// holds, none of which page script can read.
func TestBrowserSPADemo(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	bffPort, idpPort, apiPort := freePort(t), freePort(t), freePort(t)
	public := fmt.Sprintf("http://localhost:%d", bffPort)
	cmd := exec.Command(bffBinary(t), "demo",
		"-addr", fmt.Sprintf("127.0.0.1:%d", bffPort), "-public-url", public,
		"-idp-addr", fmt.Sprintf("127.0.0.1:%d", idpPort), "-api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort))
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	p := startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bff demo output (last 8 KiB):\n%s", tail(logs.String(), 8<<10))
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(p, 20*time.Second, func() bool {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", bffPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		t.Fatalf("bff demo not ready: %v", err)
	}

	tab := startChromium(t)
	tab.Navigate(t, public+"/")
	tab.WaitState(t, public, stateSignedOut)
	tab.Click(t, "#login")
	waitEval(t, tab, `!!document.querySelector('#username') && !!document.querySelector('#password')`, "the demo provider's login form")
	if _, err := run(tab, chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS(`#username`), "demo"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "demo"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)); err != nil {
		t.Fatalf("demo login form: %v", err)
	}
	tab.WaitState(t, public, stateSignedIn)
	var user struct {
		Sub string `json:"sub"`
	}
	if r := tab.Fetch(t, http.MethodGet, "/auth/user", nil); r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &user) != nil || user.Sub == "" {
		t.Fatalf("/auth/user: %d %.200s", r.Status, r.Body)
	}

	// What the browser holds: every BFF cookie is listed by name, and the
	// page says script could read none of them, which is true.
	waitEval(t, tab, `document.getElementById('cookie-verdict').textContent !== ''`, "the cookie verdict")
	list, verdict := tab.Text(t, "#cookie-list"), tab.Text(t, "#cookie-verdict")
	held := bffSessionCookies(t, tab, public)
	if len(held) == 0 {
		t.Fatal("the browser holds no BFF session cookie")
	}
	docCookie := Eval[string](t, tab, `document.cookie`)
	for _, c := range held {
		if !strings.Contains(list, c.Name) {
			t.Errorf("#cookie-list does not name %s:\n%s", c.Name, list)
		}
		if strings.Contains(list, c.Value) || strings.Contains(docCookie, c.Name) {
			t.Errorf("cookie %s: its value is on the page, or script can read it", c.Name)
		}
	}
	if !strings.HasPrefix(verdict, "Page script could not read any of them") {
		t.Errorf("#cookie-verdict = %q", verdict)
	}

	// Live events: an EventSource through the BFF, ticks with the token's sub.
	tab.Click(t, "#events-toggle")
	waitEval(t, tab, `/^#2 /m.test(document.getElementById('events').textContent)`, "two ticks")
	if st := tab.Text(t, "#events-status"); !strings.HasPrefix(st, "Connected") {
		t.Errorf("#events-status = %q", st)
	}
	if ev := tab.Text(t, "#events"); !strings.Contains(ev, "sub "+user.Sub+" ") || !strings.Contains(ev, "token exp ") {
		t.Errorf("#events = %q, want ticks for sub %s with the token's exp", ev, user.Sub)
	}
	dir, err := os.MkdirTemp("", "bff-e2e-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the demo page with live events: %s", tab.Screenshot(t, dir, "demo-events.png"))
	tab.Click(t, "#events-toggle")
	if st := tab.Text(t, "#events-status"); st != "Stopped." {
		t.Errorf("after Stop, #events-status = %q", st)
	}
}

// waitEval polls a boolean expression in the page until it is true.
func waitEval(t *testing.T, tab *Tab, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("e2e: the page did not show %s within %s (at %s)", what, stepTimeout, redactURL(tab.Location(t)))
}
