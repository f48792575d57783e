package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/demo"
	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

const (
	testClientID     = "bff-test"
	testClientSecret = "client-secret-never-logged-7Qx9"
	sessionCookie    = "__Host-Http-bff"
	loginCookie      = "__Host-Http-bff-login."
)

// testMaster is the master secret of every test BFF; its base64 must never
// appear in a log.
var testMaster = []byte("0123456789abcdef0123456789ABCDEF-test-master")

// syncBuffer collects output that several goroutines write.
type syncBuffer = testsupport.Buffer

// env is a demo identity provider, an upstream API and a BFF in front of
// them, all on loopback. The BFF's public URL is http://localhost:PORT (the
// browser's origin); the provider is at http://127.0.0.1:PORT, another host,
// so their cookies never mix.
type env struct {
	t         *testing.T
	ctx       context.Context
	idp       *demo.Provider
	upstream  *httptest.Server
	transport *http.Transport
	endpoints struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	*bff // the primary instance
}

// bff is one running BFF instance.
type bff struct {
	srv  *server.Server
	ts   *httptest.Server
	base string // http://localhost:PORT of this instance
	cfg  server.Config
	logs *syncBuffer
}

type envOptions struct {
	accessTTL time.Duration
	noRun     bool // never load the provider's metadata
	config    func(*server.Config)
}

// upstreamAnswer is what the test API answers: never the token itself.
type upstreamAnswer struct {
	Path      string `json:"path"`
	HasBearer bool   `json:"has_bearer"`
	JWTBearer bool   `json:"jwt_bearer"`
	Cookie    string `json:"cookie"`
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx}

	// Reserve the BFF's port first: the provider must know the redirect URI.
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	public := "http://localhost:" + port

	var err error
	e.idp, err = demo.StartProvider(ctx, demo.ProviderConfig{
		Addr:                   "127.0.0.1:0",
		ClientID:               testClientID,
		ClientSecret:           testClientSecret,
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		AccessTokenTTL:         o.accessTTL,
		Logger:                 slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("StartProvider: %v", err)
	}
	t.Cleanup(func() { e.idp.Close() })

	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(upstreamAnswer{
			Path:      r.URL.Path,
			HasBearer: strings.HasPrefix(auth, "Bearer "),
			JWTBearer: strings.HasPrefix(auth, "Bearer eyJ"),
			Cookie:    r.Header.Get("Cookie"),
		})
	}))
	t.Cleanup(e.upstream.Close)

	e.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// "localhost" is the BFF's public host; dial it on IPv4 loopback.
			if h, p, err := net.SplitHostPort(addr); err == nil && h == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", p)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(e.transport.CloseIdleConnections)

	e.bff = e.startBFF(ts, public, o)
	if !o.noRun {
		resp := e.getJSON(e.idp.Issuer()+"/.well-known/openid-configuration", &e.endpoints)
		if resp.StatusCode != http.StatusOK || e.endpoints.EndSession == "" {
			t.Fatalf("provider discovery: %d %+v", resp.StatusCode, e.endpoints)
		}
	}
	return e
}

// startBFF starts an instance on ts (a fresh one when nil) whose public URL
// is public.
func (e *env) startBFF(ts *httptest.Server, public string, o envOptions) *bff {
	t := e.t
	t.Helper()
	if ts == nil {
		ts = httptest.NewUnstartedServer(http.NotFoundHandler())
	}
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	up, _ := url.Parse(e.upstream.URL)
	b := &bff{base: "http://localhost:" + port, logs: &syncBuffer{}}
	b.cfg = server.Config{
		PublicURL: public,
		OIDC:      oauthConfig(e.idp.Issuer(), public),
		Secrets:   [][]byte{testMaster},
		Routes:    []proxy.Route{{Path: "/api/", Upstream: up, Token: proxy.TokenUser}},
		Static: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!doctype html><title>app</title>")
		}),
		Logger: slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if o.config != nil {
		o.config(&b.cfg)
	}
	var err error
	b.srv, err = server.New(b.cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ts.Config.Handler = b.srv.Handler()
	ts.Start()
	b.ts = ts
	t.Cleanup(ts.Close)
	if o.noRun {
		return b
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.srv.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !b.srv.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("BFF not ready after 10s; logs:\n%s", b.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b
}

func (e *env) getJSON(u string, v any) *http.Response {
	e.t.Helper()
	resp, err := (&http.Client{Transport: e.transport, Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		e.t.Fatalf("GET %s: decode: %v", u, err)
	}
	return resp
}

// browser is one user agent: a cookie jar shared by a client that never
// follows redirects (for the BFF, so each answer can be inspected) and one
// that follows them through the provider until they lead back to the BFF.
type browser struct {
	e   *env
	jar *secureJar
	bff *http.Client
	idp *http.Client
}

func (e *env) browser() *browser { return e.browserWithJar(newJar()) }

func (e *env) browserWithJar(jar *secureJar) *browser {
	bffHost := strings.TrimPrefix(e.bff.cfg.PublicURL, "http://")
	return &browser{
		e:   e,
		jar: jar,
		bff: &http.Client{
			Jar: jar, Transport: e.transport, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		idp: &http.Client{
			Jar: jar, Transport: e.transport, Timeout: 10 * time.Second,
			CheckRedirect: func(req *http.Request, _ []*http.Request) error {
				if req.URL.Host == bffHost {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
	}
}

// result is a response with its body read.
type result struct {
	*http.Response
	body string
}

func (r *result) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v\n%s", r.Request.Method, r.Request.URL.Path, err, r.body)
	}
}

// setCookie returns the Set-Cookie of the response named name, or nil.
func (r *result) setCookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sessionSet reports whether the response sets (not deletes) a session chunk.
func (r *result) sessionSet() bool {
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, sessionCookie+".") && c.MaxAge >= 0 && c.Value != "" {
			return true
		}
	}
	return false
}

// deleted lists the cookies the response deletes.
func (r *result) deleted() []string {
	var out []string
	for _, c := range r.Cookies() {
		if c.MaxAge < 0 {
			out = append(out, c.Name)
		}
	}
	return out
}

// doAt sends a request to base+path (base is an instance's http://localhost:PORT).
func (b *browser) doAt(base, method, path string, h http.Header) *result {
	b.e.t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	return b.send(b.bff, req)
}

func (b *browser) do(method, path string, h http.Header) *result {
	b.e.t.Helper()
	return b.doAt(b.e.base, method, path, h)
}

func (b *browser) get(path string) *result {
	b.e.t.Helper()
	return b.do(http.MethodGet, path, nil)
}

func (b *browser) send(c *http.Client, req *http.Request) *result {
	b.e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatalf("%s %s: read: %v", req.Method, req.URL, err)
	}
	return &result{resp, string(body)}
}

// apiHeaders are what the app's fetch sends on a same-origin call.
func (e *env) apiHeaders() http.Header {
	return http.Header{
		"X-Csrf":         {"1"},
		"Origin":         {e.bff.cfg.PublicURL},
		"Sec-Fetch-Site": {"same-origin"},
	}
}

// flow is one sign-in up to the callback.
type flow struct {
	login    *result  // the BFF's answer to /auth/login
	authURL  *url.URL // where it sent the browser
	callback *url.URL // where the provider sent the browser back
}

var (
	formActionRE = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	hiddenIDRE   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]*)">`)
)

// startLogin asks the BFF to start a sign-in and does the provider's part
// (login form, user demo/demo), stopping before the callback.
func (b *browser) startLogin(returnTo string) *flow {
	return b.startLoginQuery(url.Values{"returnTo": {returnTo}})
}

// startLoginQuery is startLogin with the whole query of /auth/login (sign-in
// options besides returnTo).
func (b *browser) startLoginQuery(q url.Values) *flow {
	t := b.e.t
	t.Helper()
	f := &flow{login: b.get("/auth/login?" + q.Encode())}
	if f.login.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d, want 302; body %s", f.login.StatusCode, f.login.body)
	}
	var err error
	f.authURL, err = url.Parse(f.login.Header.Get("Location"))
	if err != nil {
		t.Fatalf("login Location: %v", err)
	}
	page := b.send(b.idp, mustRequest(t, http.MethodGet, f.authURL.String(), nil))
	action, id := formActionRE.FindStringSubmatch(page.body), hiddenIDRE.FindStringSubmatch(page.body)
	if page.StatusCode != http.StatusOK || action == nil || id == nil {
		t.Fatalf("provider login page: status %d: %s", page.StatusCode, page.body)
	}
	actionURL, err := page.Request.URL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"id": {html.UnescapeString(id[1])}, "username": {demo.DefaultUsername}, "password": {demo.DefaultPassword}}
	req := mustRequest(t, http.MethodPost, actionURL.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	back := b.send(b.idp, req)
	if back.StatusCode != http.StatusFound && back.StatusCode != http.StatusSeeOther {
		t.Fatalf("provider after login: status %d: %s", back.StatusCode, back.body)
	}
	f.callback, err = url.Parse(back.Header.Get("Location"))
	if err != nil || f.callback.Path != "/auth/callback" {
		t.Fatalf("provider sent the browser to %q, want the BFF's callback", back.Header.Get("Location"))
	}
	return f
}

// finish sends the browser to the callback of f.
func (b *browser) finish(f *flow) *result {
	b.e.t.Helper()
	return b.get(f.callback.RequestURI())
}

// signIn runs a whole sign-in and checks that it succeeded.
func (b *browser) signIn(returnTo string) (*flow, *result) {
	t := b.e.t
	t.Helper()
	f := b.startLogin(returnTo)
	cb := b.finish(f)
	if cb.StatusCode != http.StatusFound || !cb.sessionSet() {
		t.Fatalf("callback: status %d, session set %v; body %s\nlogs:\n%s", cb.StatusCode, cb.sessionSet(), cb.body, b.e.logs)
	}
	return f, cb
}

func mustRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// checkJSONError asserts the BFF's error shape: status, JSON
// {"error","error_description"} only, no-store, and no Go error text.
func checkJSONError(t *testing.T, r *result, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var body map[string]any
	r.json(t, &body)
	if len(body) != 2 || body["error"] == nil || body["error_description"] == nil {
		t.Fatalf("error body %s, want exactly error and error_description", r.body)
	}
	if code != "" && body["error"] != code {
		t.Errorf("error %q, want %q", body["error"], code)
	}
	for _, leak := range []string{"server:", "oauth:", "session:", "crypto:", "proxy:", "keys:", "revocation:", "goroutine", ".go:", "%!"} {
		if strings.Contains(r.body, leak) {
			t.Errorf("error body leaks %q: %s", leak, r.body)
		}
	}
}

// masterBase64 are the spellings of the master secret an operator would use.
func masterBase64() []string {
	return []string{
		base64.StdEncoding.EncodeToString(testMaster),
		base64.RawStdEncoding.EncodeToString(testMaster),
		base64.RawURLEncoding.EncodeToString(testMaster),
	}
}

func oauthConfig(issuer, public string) oauth.Config {
	return oauth.Config{Issuer: issuer, ClientID: testClientID, ClientSecret: testClientSecret, PostLogoutRedirectURL: public + "/"}
}
