package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

func TestAntiForgery(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	public := e.cfg.PublicURL
	cases := []struct {
		name string
		h    http.Header
		ok   bool
	}{
		{"no X-CSRF", http.Header{"Origin": {public}, "Sec-Fetch-Site": {"same-origin"}}, false},
		{"X-CSRF 0", http.Header{"X-Csrf": {"0"}, "Origin": {public}}, false},
		{"X-CSRF empty", http.Header{"X-Csrf": {""}, "Origin": {public}}, false},
		{"two X-CSRF", http.Header{"X-Csrf": {"1", "1"}, "Origin": {public}}, false},
		{"cross-site", http.Header{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"cross-site"}}, false},
		{"foreign Origin", http.Header{"X-Csrf": {"1"}, "Origin": {"https://evil.example"}}, false},
		{"Origin of another port", http.Header{"X-Csrf": {"1"}, "Origin": {"http://localhost:1"}}, false},
		{"Origin null", http.Header{"X-Csrf": {"1"}, "Origin": {"null"}}, false},
		{"two Origin", http.Header{"X-Csrf": {"1"}, "Origin": {public, public}}, false},
		{"Origin with a path", http.Header{"X-Csrf": {"1"}, "Origin": {public + "/"}}, false},
		{"same-origin with Origin and X-CSRF", http.Header{"X-Csrf": {"1"}, "Origin": {public}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"X-CSRF without Origin (old browser)", http.Header{"X-Csrf": {"1"}}, true},
	}
	targets := []struct {
		method, path string
		okStatus     int
	}{
		{http.MethodGet, "/api/whoami", http.StatusOK},
		{http.MethodPost, "/api/things", http.StatusOK},
		// Last: a passing logout ends the session.
		{http.MethodPost, "/auth/logout", http.StatusOK},
	}
	for _, tg := range targets {
		for _, c := range cases {
			if c.ok && tg.path == "/auth/logout" {
				continue // run once, below
			}
			t.Run(tg.method+" "+tg.path+"/"+c.name, func(t *testing.T) {
				r := b.do(tg.method, tg.path, c.h)
				if !c.ok {
					checkJSONError(t, r, http.StatusForbidden, "forbidden")
					if len(r.Cookies()) != 0 {
						t.Errorf("refused request touched cookies: %v", r.Header.Values("Set-Cookie"))
					}
					return
				}
				if r.StatusCode != tg.okStatus {
					t.Fatalf("status %d, want %d; body %s", r.StatusCode, tg.okStatus, r.body)
				}
			})
		}
	}
	// Nothing refused above ended the session.
	if u := b.get("/auth/user"); u.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user after refused requests: %d", u.StatusCode)
	}
	t.Run("POST /auth/logout/passes", func(t *testing.T) {
		r := b.do(http.MethodPost, "/auth/logout", e.apiHeaders())
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d; body %s", r.StatusCode, r.body)
		}
	})
}

func TestUserRefusesCrossSite(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	for name, h := range map[string]http.Header{
		"cross-site":     {"Sec-Fetch-Site": {"cross-site"}},
		"foreign Origin": {"Origin": {"https://evil.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			checkJSONError(t, b.do(http.MethodGet, "/auth/user", h), http.StatusForbidden, "forbidden")
		})
	}
	// A plain same-origin GET needs no X-CSRF.
	if r := b.do(http.MethodGet, "/auth/user", http.Header{"Sec-Fetch-Site": {"same-origin"}}); r.StatusCode != http.StatusOK {
		t.Errorf("same-origin /auth/user: %d", r.StatusCode)
	}
}

// headerOf builds a header from name, value pairs (names canonicalised, a name
// given twice gets two values).
func headerOf(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// headerWith returns a copy of h with the pairs kv added.
func headerWith(h http.Header, kv ...string) http.Header {
	c := h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		c.Add(kv[i], kv[i+1])
	}
	return c
}

// TestAntiForgeryByKind: what each kind of request must carry to reach a
// proxied route, with the header sets Chromium sends (recorded from Chromium
// 156, headless, on http://localhost): a fetch, an EventSource, an <img>, a
// <script>, a WebSocket, a navigation. Every refusal is checked for the rule
// the log names, so a case passes only for its own rule; every refusal has
// an accepted neighbour differing in the one thing the rule looks at.
func TestAntiForgeryByKind(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		up := c.Routes[0].Upstream
		c.Routes = append(c.Routes,
			proxy.Route{Path: "/dl/", Upstream: up, Downloads: true},
			proxy.Route{Path: "/strict/", Upstream: up, AntiForgery: proxy.AntiForgeryHeader},
		)
	}})
	b := e.browser()
	b.signIn("/")
	public := e.cfg.PublicURL
	const (
		evil    = "https://evil.example"
		sibling = "http://other.localhost" // same site, another app
	)

	// What Chromium sends (the app's page at public, unless stated).
	var (
		// fetch('/api/x') and new EventSource('/api/x'): the same set.
		eventSource = headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
		// fetch('/api/x', {mode: 'same-origin'}).
		fetchSameOriginMode = headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "same-origin", "Sec-Fetch-Dest", "empty")
		// An EventSource of another origin: cors mode, so Origin is sent.
		eventSourceCrossSite = headerOf("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", evil)
		eventSourceSameSite  = headerOf("Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Origin", sibling)
		image                = headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image")
		script               = headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "script")
		// Chromium 156 sends no Fetch Metadata on a WebSocket handshake;
		// the Fetch standard (and the brief: Chrome 124+) has Mode and Dest
		// websocket. Both are covered.
		webSocket = headerOf("Connection", "Upgrade", "Upgrade", "websocket", "Sec-Websocket-Version", "13",
			"Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Origin", public)
		webSocketMeta = headerWith(webSocket, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "websocket", "Sec-Fetch-Dest", "websocket")
		// A click on a link in the app; a typed address has site "none".
		navigation = headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Fetch-User", "?1")
		iframe     = headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe")
	)
	withoutOrigin := webSocket.Clone()
	withoutOrigin.Del("Origin")
	replace := func(h http.Header, kv ...string) http.Header {
		c := h.Clone()
		for i := 0; i+1 < len(kv); i += 2 {
			c.Set(kv[i], kv[i+1])
		}
		return c
	}

	// Rules, as the log names them.
	const (
		ruleCrossSite   = "Sec-Fetch-Site cross-site"
		ruleOrigin      = "foreign Origin"
		ruleWSOrigin    = "WebSocket handshake without Origin"
		ruleWSSite      = "WebSocket handshake not marked Sec-Fetch-Site same-origin"
		ruleNavigation  = "which does not serve downloads"
		ruleNavMethod   = "navigation other than GET"
		ruleNavSite     = "download navigation not marked Sec-Fetch-Site same-origin or none"
		ruleFetchGET    = "fetch or EventSource GET not marked Sec-Fetch-Site same-origin without the X-CSRF header"
		rulePassive     = "image or media load not marked Sec-Fetch-Site same-origin without the X-CSRF header"
		ruleExecutable  = "script, style or worker load without the X-CSRF header"
		ruleOther       = "state-changing or unmarked request without the X-CSRF header"
		ruleHeaderRoute = "route /strict/ requires the X-CSRF header on every request"
	)
	type tc struct {
		name   string
		method string // "" means GET
		path   string // "" means /api/whoami
		h      http.Header
		rule   string // "" means accepted
	}
	cases := []tc{
		// EventSource and fetch GET: same-origin is enough.
		{name: "EventSource same-origin", h: eventSource},
		{name: "EventSource HEAD same-origin", method: http.MethodHead, h: eventSource},
		{name: "fetch mode same-origin", h: fetchSameOriginMode},
		{name: "EventSource cross-site", h: eventSourceCrossSite, rule: ruleCrossSite},
		{name: "EventSource same-site (sibling Origin)", h: eventSourceSameSite, rule: ruleOrigin},
		{name: "EventSource same-site without Origin", h: replace(eventSource, "Sec-Fetch-Site", "same-site"), rule: ruleFetchGET},
		{name: "EventSource same-site with X-CSRF", h: headerWith(replace(eventSource, "Sec-Fetch-Site", "same-site"), "X-Csrf", "1")},
		{name: "EventSource site none", h: replace(eventSource, "Sec-Fetch-Site", "none"), rule: ruleFetchGET},
		{name: "EventSource foreign Origin", h: headerWith(eventSource, "Origin", evil), rule: ruleOrigin},
		{name: "EventSource Sec-Fetch-Site twice", h: headerWith(eventSource, "Sec-Fetch-Site", "same-origin"), rule: ruleFetchGET},
		{name: "GET without Fetch Metadata (old browser)", h: headerOf(), rule: ruleOther},
		{name: "GET without Fetch Metadata, X-CSRF", h: headerOf("X-Csrf", "1")},
		{name: "same-origin site only, no mode", h: headerOf("Sec-Fetch-Site", "same-origin"), rule: ruleOther},
		{name: "POST fetch without X-CSRF", method: http.MethodPost, h: headerWith(eventSource, "Origin", public), rule: ruleOther},
		{name: "POST fetch with X-CSRF", method: http.MethodPost, h: headerWith(eventSource, "Origin", public, "X-Csrf", "1")},
		{name: "unknown destination", h: replace(eventSource, "Sec-Fetch-Dest", "json"), rule: ruleOther},
		{name: "unknown mode", h: replace(eventSource, "Sec-Fetch-Mode", "websocket"), rule: ruleOther},

		// Passive loads: same-origin is enough.
		{name: "img same-origin", h: image},
		{name: "img cross-site", h: replace(image, "Sec-Fetch-Site", "cross-site"), rule: ruleCrossSite},
		{name: "img same-site", h: replace(image, "Sec-Fetch-Site", "same-site"), rule: rulePassive},
		{name: "img site none", h: replace(image, "Sec-Fetch-Site", "none"), rule: rulePassive},
		{name: "img same-site with X-CSRF", h: headerWith(replace(image, "Sec-Fetch-Site", "same-site"), "X-Csrf", "1")},

		// Executable destinations: the header, which they cannot carry.
		{name: "script same-origin", h: script, rule: ruleExecutable},
		{name: "script cross-site", h: replace(script, "Sec-Fetch-Site", "cross-site"), rule: ruleCrossSite},
		{name: "script same-site", h: replace(script, "Sec-Fetch-Site", "same-site"), rule: ruleExecutable},
		{name: "script with X-CSRF", h: headerWith(script, "X-Csrf", "1")},

		// WebSocket: Origin.
		{name: "WebSocket (Chromium 156)", h: webSocket},
		{name: "WebSocket with Fetch Metadata", h: webSocketMeta},
		{name: "WebSocket Connection keep-alive, Upgrade", h: replace(webSocket, "Connection", "keep-alive, Upgrade")},
		{name: "WebSocket without Origin", h: withoutOrigin, rule: ruleWSOrigin},
		{name: "WebSocket without Origin, X-CSRF", h: headerWith(withoutOrigin, "X-Csrf", "1"), rule: ruleWSOrigin},
		{name: "WebSocket foreign Origin (Chromium 156)", h: replace(webSocket, "Origin", evil), rule: ruleOrigin},
		{name: "WebSocket cross-site", h: replace(webSocketMeta, "Origin", evil, "Sec-Fetch-Site", "cross-site"), rule: ruleCrossSite},
		{name: "WebSocket same-site (sibling Origin)", h: replace(webSocketMeta, "Origin", sibling, "Sec-Fetch-Site", "same-site"), rule: ruleOrigin},
		{name: "WebSocket same-site with the app's Origin", h: replace(webSocketMeta, "Sec-Fetch-Site", "same-site"), rule: ruleWSSite},
		{name: "WebSocket site none", h: replace(webSocketMeta, "Sec-Fetch-Site", "none"), rule: ruleWSSite},
		{name: "upgrade by POST", method: http.MethodPost, h: webSocket, rule: ruleOther},
		{name: "Origin alone, no upgrade", h: headerOf("Origin", public), rule: ruleOther},

		// Navigations: refused, except on a route that serves downloads.
		{name: "navigation", h: navigation, rule: ruleNavigation},
		{name: "navigation with X-CSRF", h: headerWith(navigation, "X-Csrf", "1"), rule: ruleNavigation},
		{name: "navigation typed address", h: replace(navigation, "Sec-Fetch-Site", "none"), rule: ruleNavigation},
		{name: "navigation cross-site", h: replace(navigation, "Sec-Fetch-Site", "cross-site"), rule: ruleCrossSite},
		{name: "navigation same-site", h: replace(navigation, "Sec-Fetch-Site", "same-site"), rule: ruleNavigation},
		{name: "iframe", h: iframe, rule: ruleNavigation},
		{name: "object", h: replace(image, "Sec-Fetch-Dest", "object"), rule: ruleNavigation},
		{name: "form POST", method: http.MethodPost, h: headerWith(navigation, "Origin", public, "X-Csrf", "1"), rule: ruleNavigation},

		{name: "download navigation", path: "/dl/report", h: navigation},
		{name: "download typed address", path: "/dl/report", h: replace(navigation, "Sec-Fetch-Site", "none")},
		{name: "download iframe", path: "/dl/report", h: iframe},
		{name: "download cross-site", path: "/dl/report", h: replace(navigation, "Sec-Fetch-Site", "cross-site"), rule: ruleCrossSite},
		{name: "download same-site", path: "/dl/report", h: replace(navigation, "Sec-Fetch-Site", "same-site"), rule: ruleNavSite},
		{name: "download without Sec-Fetch-Site", path: "/dl/report", h: headerOf("Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), rule: ruleNavSite},
		{name: "download form POST", method: http.MethodPost, path: "/dl/report", h: headerWith(navigation, "Origin", public), rule: ruleNavMethod},
		{name: "download route, EventSource", path: "/dl/report", h: eventSource},
		{name: "download route, POST without X-CSRF", method: http.MethodPost, path: "/dl/report", h: headerWith(eventSource, "Origin", public), rule: ruleOther},

		// A route in header mode: no exemption.
		{name: "header route, EventSource", path: "/strict/x", h: eventSource, rule: ruleHeaderRoute},
		{name: "header route, img", path: "/strict/x", h: image, rule: ruleHeaderRoute},
		{name: "header route, WebSocket", path: "/strict/x", h: webSocket, rule: ruleHeaderRoute},
		{name: "header route, navigation", path: "/strict/x", h: navigation, rule: ruleHeaderRoute},
		{name: "header route, fetch with X-CSRF", path: "/strict/x", h: e.apiHeaders()},
		{name: "header route, cross-site with X-CSRF", path: "/strict/x", h: replace(e.apiHeaders(), "Sec-Fetch-Site", "cross-site"), rule: ruleCrossSite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method, path := c.method, c.path
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = "/api/whoami"
			}
			before := len(e.logs.String())
			r := b.do(method, path, c.h)
			logs := e.logs.String()[before:]
			if c.rule != "" {
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403 by rule %q; body %s", r.StatusCode, c.rule, r.body)
				}
				if method != http.MethodHead {
					checkJSONError(t, r, http.StatusForbidden, "forbidden")
				}
				if !strings.Contains(logs, c.rule) {
					t.Errorf("refused, but not by rule %q; logs:\n%s", c.rule, logs)
				}
				if len(r.Cookies()) != 0 {
					t.Errorf("refused request touched cookies: %v", r.Header.Values("Set-Cookie"))
				}
				return
			}
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s\nlogs:\n%s", r.StatusCode, r.body, logs)
			}
			if strings.HasPrefix(path, "/dl/") && proxy.IsNavigation(c.h) {
				if cd := r.Header.Get("Content-Disposition"); cd != "attachment" {
					t.Errorf("download answered with Content-Disposition %q, want attachment", cd)
				}
				if r.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("download answered without nosniff")
				}
			}
		})
	}
	// Nothing refused above ended the session.
	if u := b.get("/auth/user"); u.StatusCode != http.StatusOK {
		t.Fatalf("/auth/user after refused requests: %d", u.StatusCode)
	}
}

// TestAuthKeepsItsRules: the exemptions by kind are the proxied routes'
// only; /auth keeps its own rules.
func TestAuthKeepsItsRules(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.signIn("/")
	eventSource := headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	// A same-origin POST without the header: exempt nowhere.
	before := len(e.logs.String())
	r := b.do(http.MethodPost, "/auth/logout", headerWith(eventSource, "Origin", e.cfg.PublicURL))
	checkJSONError(t, r, http.StatusForbidden, "forbidden")
	if logs := e.logs.String()[before:]; !strings.Contains(logs, "no X-CSRF header") {
		t.Errorf("logout refused, but not for the header; logs:\n%s", logs)
	}
	// GET /auth/user needs no header, whatever the kind (a navigation too).
	for name, h := range map[string]http.Header{
		"EventSource": eventSource,
		"navigation":  headerOf("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"),
	} {
		if r := b.do(http.MethodGet, "/auth/user", h); r.StatusCode != http.StatusOK {
			t.Errorf("%s to /auth/user: %d", name, r.StatusCode)
		}
	}
	// The control: with the header, logout passes.
	if r := b.do(http.MethodPost, "/auth/logout", headerWith(eventSource, "Origin", e.cfg.PublicURL, "X-Csrf", "1")); r.StatusCode != http.StatusOK {
		t.Fatalf("logout with X-CSRF: %d; body %s", r.StatusCode, r.body)
	}
}
