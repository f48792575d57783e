package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The SPA test app: what a single-page app built by a bundler looks like to
// the BFF's static_dir. index.html has one inline style (the CSP probe: it
// applies only when the policy allows inline styles) and loads its script
// from a content-hashed file name; the script is page script like any
// app's, and the test calls its functions (window.spa) through Evaluate.
const (
	spaAssetPath = "/assets/app.3f9a1c2b.js" // hashed: immutable caching
	spaProbeRGB  = "rgb(1, 2, 3)"            // the inline style's colour
)

const spaIndexHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SPA test app</title>
<style>#csp-probe { color: rgb(1, 2, 3); }</style>
<script src="` + spaAssetPath + `" defer></script>
</head>
<body>
<h1 id="app">SPA test app</h1>
<p id="user">Loading…</p>
<a id="login" href="/auth/login?returnTo=/">Sign in</a>
<p id="route"></p>
<p id="login-error"></p>
<p id="csp-probe">CSP probe</p>
</body>
</html>
`

// spaStreamsJS opens WebSockets and EventSources and reports what page
// script could observe. Shared by the app and the other origin's page.
const spaStreamsJS = `
// openWS opens a WebSocket to url, sends text once it is open, and resolves
// with what happened: after the first message, the close, or ms.
function openWS(url, text, ms = 5000) {
  return new Promise((resolve) => {
    const out = {opened: false, messages: [], error: false, closeCode: 0};
    let ws;
    try { ws = new WebSocket(url); } catch (e) { out.error = true; resolve(out); return; }
    let timer;
    const done = () => { clearTimeout(timer); try { ws.close(); } catch (e) {} resolve(out); };
    timer = setTimeout(done, ms);
    ws.onopen = () => { out.opened = true; ws.send(text); };
    ws.onmessage = (ev) => { out.messages.push(String(ev.data)); done(); };
    ws.onerror = () => { out.error = true; };
    ws.onclose = (ev) => { out.closeCode = ev.code; done(); };
  });
}

// openSSE opens an EventSource and resolves after n messages, the first
// error, or ms.
function openSSE(url, n, withCredentials = false, ms = 5000) {
  return new Promise((resolve) => {
    const out = {opened: false, messages: [], error: false};
    const es = new EventSource(url, {withCredentials});
    let timer;
    const done = () => { clearTimeout(timer); es.close(); resolve(out); };
    timer = setTimeout(done, ms);
    es.onopen = () => { out.opened = true; };
    es.onmessage = (ev) => { out.messages.push(String(ev.data)); if (out.messages.length >= n) done(); };
    es.onerror = () => { out.error = true; done(); };
  });
}
`

const spaAppJS = `'use strict';
// The SPA test app. It holds no token: every call is same-origin.
` + spaStreamsJS + `
const $ = (id) => document.getElementById(id);

function wsURL(path) {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
}

// get fetches a same-origin path as the app would and returns what script
// can read of the answer.
async function get(path, headers = {}) {
  const r = await fetch(path, {credentials: 'same-origin', cache: 'no-store', headers});
  const h = {};
  r.headers.forEach((v, k) => { h[k] = v; });
  return {status: r.status, body: await r.text(), headers: h};
}

// loadScript adds a <script src> and resolves with "load" or "error".
function loadScript(src) {
  return new Promise((resolve) => {
    const s = document.createElement('script');
    s.onload = () => resolve('load');
    s.onerror = () => resolve('error');
    s.src = src;
    document.head.appendChild(s);
  });
}

window.spa = {
  ws: (path, text) => openWS(wsURL(path), text),
  sse: (path, n) => openSSE(path, n),
  get,
  loadScript,
  probeColor: () => getComputedStyle($('csp-probe')).color,
};

async function boot() {
  $('route').textContent = location.pathname;
  $('login-error').textContent = new URLSearchParams(location.search).get('login_error') || '';
  try {
    const r = await fetch('/auth/user', {credentials: 'same-origin', headers: {'X-CSRF': '1', Accept: 'application/json'}});
    if (r.status === 401) {
      $('user').textContent = 'Signed out.';
      return;
    }
    if (r.status !== 200) {
      $('user').textContent = 'Could not load the user: HTTP ' + r.status + ' ' + (await r.text()).slice(0, 100);
      return;
    }
    const u = await r.json();
    const c = u.claims || {};
    $('user').textContent = 'Signed in as ' + (c.name || u.sub);
  } catch (e) {
    $('user').textContent = 'Could not load the user: ' + e.message;
  }
}

document.addEventListener('DOMContentLoaded', boot);
`

// spaAppDir writes the SPA test app into a temporary directory for the
// BFF's static_dir.
func spaAppDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"index.html": spaIndexHTML, strings.TrimPrefix(spaAssetPath, "/"): spaAppJS}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// otherOriginPage is served on another port of localhost: another origin,
// the same site (ports do not make a site), so the browser sends the BFF's
// SameSite=Lax cookies along with its WebSocket handshakes and credentialed
// EventSources. Only the BFF's own checks can refuse them.
const otherOriginPage = `<!doctype html><title>other origin</title><script>
` + spaStreamsJS + `
async function attack(bff, wsBase, tag) {
  const [ws, sse] = await Promise.all([
    openWS(wsBase + '/api/ws/' + tag, 'from the other origin', 3000),
    openSSE(bff + '/api/events/' + tag, 1, true, 3000),
  ]);
  return {ws, sse};
}
</script>`

// startOtherOrigin serves otherOriginPage and returns its URLs: on
// localhost, another origin of the BFF's site (http://localhost:PORT), and
// on 127.0.0.1, another site.
func startOtherOrigin(t *testing.T) (sameSite, crossSite string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(otherOriginPage))
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), srv.URL
}

// streamResult is what page script observed of a WebSocket or EventSource.
type streamResult struct {
	Opened    bool     `json:"opened"`
	Messages  []string `json:"messages"`
	Error     bool     `json:"error"`
	CloseCode int      `json:"closeCode"`
}

// pageResponse is what page script read of one fetch() answer.
type pageResponse struct {
	Status  int               `json:"status"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

// spaUpstream is the API behind the BFF for the SPA suite: a WebSocket echo
// (paths with /ws/), an SSE stream (/events/) and an HTML file (/files/),
// each answering only a bearer JWT that verifies against the provider
// (signature, issuer, audience, expiry) like Upstream does; every other
// path is Upstream's. It records every request it sees, names only.
type spaUpstream struct {
	api *Upstream
	srv *httptest.Server

	mu   sync.Mutex
	seen []UpstreamRequest
}

func startSPAUpstream(t *testing.T, issuer string) *spaUpstream {
	t.Helper()
	u := &spaUpstream{api: startUpstream(t, issuer, DefaultAudience)}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// URL is the upstream's base URL.
func (u *spaUpstream) URL() string { return u.srv.URL }

// Seen returns the requests to path seen so far.
func (u *spaUpstream) Seen(path string) []UpstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UpstreamRequest
	for _, r := range u.seen {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (u *spaUpstream) serve(w http.ResponseWriter, r *http.Request) {
	rec := UpstreamRequest{Method: r.Method, Path: r.URL.Path}
	authz := r.Header.Values("Authorization")
	rec.AuthHeaders, rec.HasAuthorization = len(authz), len(authz) > 0
	if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && len(authz) == 1 {
		if sub, _, _, err := u.api.Verify(r.Context(), raw); err == nil {
			rec.AuthOK, rec.Sub = true, sub
			u.api.rememberToken(raw)
		} else {
			rec.AuthError = err.Error()
		}
	}
	u.mu.Lock()
	u.seen = append(u.seen, rec)
	u.mu.Unlock()

	stream := strings.Contains(r.URL.Path, "/ws/") || strings.Contains(r.URL.Path, "/events/") || strings.HasPrefix(r.URL.Path, "/files/")
	if !stream {
		u.api.serve(w, r)
		return
	}
	if !rec.AuthOK {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	switch {
	case strings.Contains(r.URL.Path, "/ws/"):
		spaWSEcho(w, r, rec.Sub)
	case strings.Contains(r.URL.Path, "/events/"):
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		for i := 1; i <= 3; i++ {
			b, _ := json.Marshal(map[string]any{"n": i, "sub": rec.Sub})
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
		select { // keep the stream open, as a live feed does
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default: // /files/: an HTML file, which must never render on the app's origin
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "<!doctype html><title>report</title><p id=report>report for %s</p><script>window.__reportRendered = true</script>\n", rec.Sub)
	}
}

// spaWSEcho completes the WebSocket handshake by hand (RFC 6455, as wsEcho
// does) and answers the client's first text frame with the verified sub
// and the text.
func spaWSEcho(w http.ResponseWriter, r *http.Request, sub string) {
	conn, br, payload, ok := wsAcceptFirstFrame(w, r)
	if !ok {
		return
	}
	defer conn.Close()
	reply := "sub=" + sub + " echo=" + string(payload)
	if len(reply) > 125 {
		reply = reply[:125]
	}
	conn.Write(wsFrame([]byte(reply), false))
	// Wait for the client's close (or the deadline) before hanging up.
	_, _, _, _ = wsReadFrame(br)
}

// launchSPAIDP starts the provider like startIDP does, with
// USERINFO_CLAIMS set (with userinfoClaims the provider puts the profile and
// email claims only in userinfo, as a conforming provider's code flow does,
// and its access tokens are for userinfo), and returns at once: wait
// returns the provider once it printed READY. Several start in parallel.
func launchSPAIDP(t *testing.T, opts IDPOptions, userinfoClaims bool) (wait func() *IDP) {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "bff"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = defaultClientSecret
	}
	if opts.TokenAuthMethod == "" {
		opts.TokenAuthMethod = "client_secret_basic"
	}
	if opts.AccessTTL == 0 {
		opts.AccessTTL = 60 * time.Second
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	cmd := exec.Command("node", "server.js")
	cmd.Dir = idpDir
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(freePort(t)),
		"CLIENT_ID="+opts.ClientID,
		"CLIENT_SECRET="+opts.ClientSecret,
		"TOKEN_AUTH_METHOD="+opts.TokenAuthMethod,
		"REDIRECT_URIS="+strings.Join(opts.RedirectURIs, ","),
		"POST_LOGOUT_REDIRECT_URIS="+strings.Join(opts.PostLogoutRedirectURIs, ","),
		"ACCESS_TOKEN_TTL="+strconv.Itoa(int(opts.AccessTTL/time.Second)),
		"RESOURCE="+opts.Audience,
		"USERINFO_CLAIMS="+strconv.FormatBool(userinfoClaims),
	)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("e2e: idp stdout: %v", err)
	}
	p := startProcess(t, cmd, 3*time.Second)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- r
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe drained
	}()
	return func() *IDP {
		t.Helper()
		var issuer string
		select {
		case issuer = <-ready:
		case <-p.done:
			t.Fatalf("e2e: idp exited before READY (%v); stderr:\n%s", p.err, stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("e2e: idp not READY after 30s; stderr:\n%s", stderr.String())
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("idp (%s) stderr:\n%s", issuer, tail(stderr.String(), 8<<10))
			}
		})
		return &IDP{opts: opts, issuer: issuer, stderr: stderr, client: &http.Client{Timeout: 10 * time.Second}}
	}
}

// spaBFFOptions are the settings the SPA suite varies; the config names
// are the README's.
type spaBFFOptions struct {
	Port           int // from the caller: the provider must know the callback first
	IDP            *IDP
	Upstream       string        // every route's upstream
	StaticDir      string        // static_dir
	StaticCSP      string        // static_csp; "" leaves it out (the default)
	LoginErrorPath string        // login_error_path
	UserInfo       bool          // oidc.userinfo
	IdleTimeout    time.Duration // session.idle_timeout; zero leaves it out
	Persistent     bool          // session.persistent
}

// spaRoutes are the proxied routes of every SPA-suite BFF: /api/ with the
// default anti-forgery (by kind of request), /files/ for downloads, and
// /strict/ that wants the header on every request.
const spaRoutes = `routes:
  - path: "/api/"
    upstream: %[1]s
    token: "user"
  - path: "/files/"
    upstream: %[1]s
    token: "user"
    downloads: true
  - path: "/strict/"
    upstream: %[1]s
    token: "user"
    anti_forgery: "header"
`

// launchSPABFF starts `bff serve` with the SPA suite's config (written like
// startBFF's, plus the settings above and three routes) and returns at
// once: wait returns the BFF once it answers /readyz. Several start in
// parallel.
func launchSPABFF(t *testing.T, o spaBFFOptions) (wait func() *BFF) {
	t.Helper()
	bin := bffBinary(t)
	dir := t.TempDir()
	b := &BFF{
		opts: BFFOptions{
			Port: o.Port, Issuer: o.IDP.Issuer(), ClientID: o.IDP.ClientID(), ClientSecret: o.IDP.ClientSecret(),
			KeySecret: newKeySecret(t), Upstream: o.Upstream, Lifetime: time.Hour, RefreshMargin: 2 * time.Second,
			StaticDir: o.StaticDir,
		},
		url:     fmt.Sprintf("http://localhost:%d", o.Port),
		metrics: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		dir:     dir,
		logs:    &syncBuffer{},
		cfgPath: filepath.Join(dir, "bff.yaml"),
	}
	q := strconv.Quote
	var extra strings.Builder
	if o.StaticCSP != "" {
		fmt.Fprintf(&extra, "static_csp: %s\n", q(o.StaticCSP))
	}
	if o.LoginErrorPath != "" {
		fmt.Fprintf(&extra, "login_error_path: %s\n", q(o.LoginErrorPath))
	}
	session := fmt.Sprintf("  lifetime: %s\n  refresh_margin: \"2s\"\n  persistent: %t\n", q(b.opts.Lifetime.String()), o.Persistent)
	if o.IdleTimeout > 0 {
		session += fmt.Sprintf("  idle_timeout: %s\n", q(o.IdleTimeout.String()))
	}
	cfg := fmt.Sprintf(`listen: %s
public_url: %s
metrics_listen: %s
static_dir: %s
%soidc:
  issuer: %s
  client_id: %s
  scopes: ["openid", "profile", "email", "offline_access"]
  post_logout_redirect_url: %s
  userinfo: %t
session:
%skeys:
  rotation: "24h"
revocation:
  snapshot_file: %s
%slog:
  format: "json"
  access_flush: "0s"
`,
		q(fmt.Sprintf("127.0.0.1:%d", o.Port)), q(b.url), q(strings.TrimPrefix(b.metrics, "http://")), q(o.StaticDir),
		extra.String(),
		q(b.opts.Issuer), q(b.opts.ClientID), q(b.url+"/"), o.UserInfo,
		session,
		q(filepath.Join(dir, "revoked.json")),
		fmt.Sprintf(spaRoutes, q(o.Upstream)),
	)
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("e2e: write bff config: %v", err)
	}
	cmd := exec.Command(bin, "serve", "-config", b.cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET="+b.opts.ClientSecret, "BFF_KEYS_SECRETS="+b.opts.KeySecret)
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	b.proc = startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bff %s logs (last 8 KiB):\n%s", b.url, tail(b.logs.String(), 8<<10))
		}
	})
	return func() *BFF {
		t.Helper()
		hc := &http.Client{Timeout: 2 * time.Second}
		readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", o.Port)
		if err := waitFor(b.proc, 30*time.Second, func() bool {
			resp, err := hc.Get(readyz)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}); err != nil {
			t.Fatalf("e2e: bff not ready: %v\nconfig:\n%s\nlogs:\n%s", err, cfg, tail(b.logs.String(), 8<<10))
		}
		return b
	}
}

// accessStatuses returns the statuses the BFF's access log recorded for
// requests to path, oldest first.
func accessStatuses(b *BFF, path string) []int {
	var out []int
	sc := bufio.NewScanner(strings.NewReader(b.Logs()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg    string `json:"msg"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "request" && line.Path == path {
			out = append(out, line.Status)
		}
	}
	return out
}

// waitAccessStatus waits up to 2 s for the access log to record a request
// to path and returns the statuses.
func waitAccessStatus(b *BFF, path string) []int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := accessStatuses(b, path)
		if len(st) > 0 || time.Now().After(deadline) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Isolated opens a tab in a new browser context of the same browser: its
// own cookie jar, like another person's browser (or a private window). Tabs
// opened from it with NewTab share its jar.
func (tb *Tab) Isolated(t testing.TB) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: open a tab in a new browser context: %v", err)
	}
	return &Tab{ctx: ctx, output: tb.output}
}

// NavigateResponse loads url and returns the HTTP response of its document
// (status and headers as the browser received them).
func (tb *Tab) NavigateResponse(t testing.TB, url string) *network.Response {
	t.Helper()
	resp, err := run(tb, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("e2e: navigate to %s: %v", redactURL(url), err)
	}
	return resp
}

// DeleteCookies deletes the browser's cookies for url whose names start
// with prefix (through the DevTools protocol, as a user clearing site data
// would), and returns how many it deleted.
func (tb *Tab) DeleteCookies(t testing.TB, url, prefix string) int {
	t.Helper()
	n := 0
	for _, c := range tb.Cookies(t, url) {
		if !strings.HasPrefix(c.Name, prefix) {
			continue
		}
		ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
		_, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: c.Name, URL: url})
		cancel()
		if err != nil {
			t.Fatalf("e2e: delete cookie %s: %v", c.Name, err)
		}
		n++
	}
	return n
}

// WatchRequests records the URLs of the requests the tab sends that start
// with prefix, from now on. They may carry codes and states: compare them,
// never log them.
func (tb *Tab) WatchRequests(t testing.TB, prefix string) func() []string {
	t.Helper()
	var mu sync.Mutex
	var urls []string
	err := chromedp.Listen(tb.ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(e.Request.URL, prefix) {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("e2e: listen to the tab's requests: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(urls)
	}
}

// WaitLocation polls the tab's URL until pred accepts it, and returns it.
func (tb *Tab) WaitLocation(t testing.TB, what string, pred func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(stateTimeout)
	var loc string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		l, err := chromedp.Run(ctx, chromedp.Location())
		cancel()
		if err == nil {
			if loc = l; pred(l) {
				return l
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("e2e: the tab did not reach %s within %s; it is at %s", what, stateTimeout, redactURL(loc))
	return ""
}

// bffSessionCookies are the browser's session cookies of the BFF at app
// (chunks; not the per-flow login cookies).
func bffSessionCookies(t testing.TB, tab *Tab, app string) []*network.Cookie {
	t.Helper()
	var out []*network.Cookie
	for _, c := range tab.Cookies(t, app+"/") {
		if strings.HasPrefix(c.Name, sessionPrefix+".") && !strings.HasPrefix(c.Name, loginCookiePrefix) {
			out = append(out, c)
		}
	}
	return out
}

// idTokenClaims decodes the payload of an ID token the provider issued.
func idTokenClaims(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("e2e: the provider's ID token is not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	claims := map[string]any{}
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("e2e: the provider's ID token payload does not decode")
	}
	return claims
}

// assertPageHoldsNoToken makes the browser suite's check
// (page_script_sees_no_token) on an SPA page: nothing page script can read
// (document.cookie, storage, the HTML, the answers in extra) holds a
// token the provider issued or the upstream verified, or anything
// JWT/JWE-looking; the BFF's cookies exist, are HttpOnly and Secure, and
// are not in document.cookie.
func assertPageHoldsNoToken(t *testing.T, tab *Tab, app string, idp *IDP, up *spaUpstream, extra map[string]string) {
	t.Helper()
	docCookie := Eval[string](t, tab, `document.cookie`)
	readable := map[string]string{
		"document.cookie":       docCookie,
		"the page's HTML":       Eval[string](t, tab, `document.documentElement.outerHTML`),
		"local/session storage": Eval[string](t, tab, `JSON.stringify({local: {...localStorage}, session: {...sessionStorage}})`),
		"GET /auth/user body":   Eval[pageResponse](t, tab, `spa.get('/auth/user', {'X-CSRF': '1'})`).Body,
	}
	for k, v := range extra {
		readable[k] = v
	}
	for what, s := range readable {
		if strings.Contains(s, "eyJ") {
			t.Errorf("%s holds an eyJ (JWT/JWE-looking) string", what)
		}
	}
	real := map[string]string{}
	for i, tok := range up.api.SeenTokens() {
		real["access token seen by the upstream #"+strconv.Itoa(i)] = tok
	}
	for i, set := range idp.Issued(t) {
		real["issued access token #"+strconv.Itoa(i)] = set.AccessToken
		real["issued refresh token #"+strconv.Itoa(i)] = set.RefreshToken
		real["issued ID token #"+strconv.Itoa(i)] = set.IDToken
	}
	if len(up.api.SeenTokens()) == 0 || len(idp.Issued(t)) == 0 {
		t.Errorf("no real token to compare with (upstream saw %d, provider issued %d)", len(up.api.SeenTokens()), len(idp.Issued(t)))
	}
	for name, tok := range real {
		if tok == "" {
			continue
		}
		for what, s := range readable {
			if strings.Contains(s, tok) || containsTokenPart(s, tok) {
				t.Errorf("%s contains the %s", what, name)
			}
		}
	}
	cookies := bffSessionCookies(t, tab, app)
	if len(cookies) == 0 {
		t.Errorf("the browser holds no BFF session cookie: the check would be empty")
	}
	for _, c := range cookies {
		if !c.HTTPOnly || !c.Secure {
			t.Errorf("cookie %s: HttpOnly=%v Secure=%v, want both", c.Name, c.HTTPOnly, c.Secure)
		}
		if strings.Contains(docCookie, c.Name) || (c.Value != "" && strings.Contains(docCookie, c.Value)) {
			t.Errorf("document.cookie holds the BFF cookie %s", c.Name)
		}
	}
}

// signIn is Tab.SignIn returning errors instead of failing the test, so
// that tabs of several browser contexts can sign in at once.
func (tb *Tab) signIn(app, user string) error {
	if _, err := run(tb, chromedp.Navigate(app+"/")); err != nil {
		return fmt.Errorf("e2e: navigate to the app: %w", err)
	}
	if st, err := tb.waitState(app, stateSignedOut, stateSignedIn); err != nil {
		return err
	} else if st != stateSignedOut {
		return fmt.Errorf("e2e: the page is %s before sign-in, want %s", st, stateSignedOut)
	}
	if err := tb.click("#login"); err != nil {
		return err
	}
	if _, err := tb.waitState(app, stateIDPLogin); err != nil {
		return err
	}
	return tb.finishLogin(app, user)
}

// evalErr is Eval returning errors, for other goroutines than the test's.
func evalErr[T any](tb *Tab, expr string) (T, error) {
	return run(tb, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}
