package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The attack-review suite's harness (review_test.go): a BFF started with
// the routes and sections a finding needs, an upstream whose paths misbehave
// on purpose, nginx as a caching proxy, and a refusal check without the
// 2-second bound for refusals that take time by design. Everything is named
// rev* so that it cannot collide with the shared harness, which it only uses.

// revRoute is one proxy route; extra is more YAML lines for the route (each
// indented by four spaces), e.g. `    body_timeout: "2s"`.
type revRoute struct{ path, upstream, token, extra string }

// revConfig is what startRevBFF writes. Only issuer, clientSecret and
// routes are required.
type revConfig struct {
	port         int // 0: a free one
	issuer       string
	clientSecret string
	routes       []revRoute
	// metrics puts metrics_listen on a free loopback port.
	metrics bool
	// revocation is the body of the revocation section (lines indented by
	// two spaces); "" means a snapshot_file in the BFF's directory, and
	// revNoRevocation leaves the section out (the BFF's own default).
	revocation string
	env        []string // more KEY=VALUE for the process
}

// revNoRevocation leaves the revocation section out of the config.
const revNoRevocation = "-"

// revBFF is a BFF process of this suite: the shared *BFF (for advStack and
// the shared checks) plus what a restart needs.
type revBFF struct {
	*BFF
	cfg revConfig
	env []string
}

// revYAML renders cfg for a BFF whose files live in dir.
func revYAML(cfg revConfig, public, metricsAddr, dir string) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\npublic_url: %s\n", q(fmt.Sprintf("127.0.0.1:%d", cfg.port)), q(public))
	if metricsAddr != "" {
		fmt.Fprintf(&b, "metrics_listen: %s\n", q(metricsAddr))
	}
	fmt.Fprintf(&b, `oidc:
  issuer: %s
  client_id: "bff"
  scopes: ["openid", "profile", "email", "offline_access"]
  post_logout_redirect_url: %s
session:
  lifetime: "1h"
  refresh_margin: "2s"
keys:
  rotation: "24h"
log:
  format: "json"
  access_flush: "0s"
`, q(cfg.issuer), q(public+"/"))
	switch cfg.revocation {
	case "":
		fmt.Fprintf(&b, "revocation:\n  snapshot_file: %s\n", q(filepath.Join(dir, "revoked.json")))
	case revNoRevocation:
	default:
		b.WriteString("revocation:\n" + strings.TrimRight(cfg.revocation, "\n") + "\n")
	}
	if len(cfg.routes) > 0 {
		b.WriteString("routes:\n")
	}
	for _, r := range cfg.routes {
		fmt.Fprintf(&b, "  - path: %s\n    upstream: %s\n    token: %s\n", q(r.path), q(r.upstream), q(r.token))
		if r.extra != "" {
			b.WriteString(strings.TrimRight(r.extra, "\n") + "\n")
		}
	}
	return b.String()
}

// startRevBFF writes cfg, starts `bff serve` and waits until /readyz
// answers 200.
func startRevBFF(t *testing.T, cfg revConfig) *revBFF {
	t.Helper()
	rb := newRevBFF(t, cfg)
	rb.start(t)
	rb.waitReady(t, "/readyz")
	return rb
}

// newRevBFF writes the config of a BFF without starting it.
func newRevBFF(t *testing.T, cfg revConfig) *revBFF {
	t.Helper()
	if cfg.port == 0 {
		cfg.port = freePort(t)
	}
	dir := t.TempDir()
	b := &BFF{
		opts: BFFOptions{
			Port: cfg.port, Issuer: cfg.issuer, ClientID: "bff", ClientSecret: cfg.clientSecret,
			KeySecret: newKeySecret(t), Lifetime: time.Hour, RefreshMargin: 2 * time.Second,
		},
		url:     fmt.Sprintf("http://localhost:%d", cfg.port),
		dir:     dir,
		logs:    &syncBuffer{},
		cfgPath: filepath.Join(dir, "bff.yaml"),
	}
	metricsAddr := ""
	if cfg.metrics {
		metricsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		b.metrics = "http://" + metricsAddr
	}
	if err := os.WriteFile(b.cfgPath, []byte(revYAML(cfg, b.url, metricsAddr, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	rb := &revBFF{BFF: b, cfg: cfg}
	rb.env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET="+cfg.clientSecret, "BFF_KEYS_SECRETS="+b.opts.KeySecret)
	rb.env = append(rb.env, cfg.env...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bff %s logs (last 6 KiB):\n%s", b.url, tail(b.logs.String(), 6<<10))
		}
	})
	return rb
}

// start runs the process (again, after stop), appending to the same logs.
func (rb *revBFF) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(bffBinary(t), "serve", "-config", rb.cfgPath)
	cmd.Dir = rb.dir
	cmd.Env = rb.env
	cmd.Stdout, cmd.Stderr = rb.logs, rb.logs
	rb.proc = startProcess(t, cmd, 5*time.Second)
}

// waitReady waits until GET path answers 200 on the main listener.
func (rb *revBFF) waitReady(t *testing.T, path string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	err := waitFor(rb.proc, 20*time.Second, func() bool {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d%s", rb.cfg.port, path))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		t.Fatalf("e2e: bff not ready: %v\nlogs:\n%s", err, tail(rb.logs.String(), 6<<10))
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (rb *revBFF) stop(t *testing.T) {
	t.Helper()
	if err := rb.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("e2e: SIGTERM: %v", err)
	}
	select {
	case <-rb.proc.done:
	case <-time.After(10 * time.Second):
		t.Fatal("e2e: bff still running 10 s after SIGTERM")
	}
}

// waitExit waits for a process that must stop by itself (a refused config).
func (rb *revBFF) waitExit(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-rb.proc.done:
		return rb.proc.err
	case <-time.After(timeout):
		t.Fatalf("e2e: bff still running after %s; logs:\n%s", timeout, tail(rb.logs.String(), 4<<10))
		return nil
	}
}

// revUpstream is the suite's upstream API, behind an advTap. It verifies
// bearer tokens with the harness upstream and answers by the first path
// segment:
//
//	/api/...     the harness upstream (whoami, echo)
//	/cache/...   Cache-Control: max-age=60, {"sub": the bearer's subject, "n": counter}
//	/public/...  Cache-Control: max-age=60, {"n": counter}
//	/deny/...    always 401 with WWW-Authenticate: Bearer error="invalid_token"
//	/up/...      a WebSocket echo for Upgrade: websocket; for any other
//	             Upgrade, 101 Switching Protocols and raw bytes
//	/cookie/V    Set-Cookie lines of variant V (revCookieVariants) plus app=1
//	/body/...    reads the whole body and records whether it arrived complete
type revUpstream struct {
	srv     *httptest.Server
	api     *Upstream
	counter atomic.Int64

	mu     sync.Mutex
	hits   map[string]int // by first path segment
	bodies []revBody
}

// revBody is one request body as the upstream received it.
type revBody struct {
	n        int64
	complete bool // read to EOF without error, n == Content-Length
}

// revCookieVariant is a response an upstream must not be able to sign the
// user out with: Set-Cookie lines in the BFF's cookie namespace, or
// Clear-Site-Data.
type revCookieVariant struct {
	name      string
	setCookie string // "" for none
	clearSite string // Clear-Site-Data value, "" for none
}

var revCookieVariants = []revCookieVariant{
	{name: "chunk_0", setCookie: sessionPrefix + ".0=x; Path=/; Secure; HttpOnly; SameSite=Lax"},
	{name: "chunk_00", setCookie: sessionPrefix + ".00=x; Path=/; Secure; HttpOnly; SameSite=Lax"},
	{name: "chunk_x", setCookie: sessionPrefix + ".x=x; Path=/; Secure; HttpOnly; SameSite=Lax"},
	{name: "chunk_plus1", setCookie: sessionPrefix + ".+1=x; Path=/; Secure; HttpOnly; SameSite=Lax"},
	{name: "nameless_chunk_0", setCookie: sessionPrefix + ".0"},
	{name: "clear_site_data", clearSite: `"cookies"`},
}

func startRevUpstream(t *testing.T, api *Upstream) *revUpstream {
	t.Helper()
	u := &revUpstream{api: api, hits: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *revUpstream) URL() string { return u.srv.URL }

// hit returns how many requests reached the upstream under /seg/.
func (u *revUpstream) hit(seg string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[seg]
}

func (u *revUpstream) bodyLog() []revBody {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.bodies)
}

// sub verifies the bearer token and returns its subject ("" when none).
func (u *revUpstream) sub(r *http.Request) string {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	s, _, _, err := u.api.Verify(r.Context(), raw)
	if err != nil {
		return ""
	}
	return s
}

func (u *revUpstream) serve(w http.ResponseWriter, r *http.Request) {
	seg, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	u.mu.Lock()
	u.hits[seg]++
	u.mu.Unlock()
	switch seg {
	case "api":
		u.api.serve(w, r)
	case "cache":
		w.Header().Set("Cache-Control", "max-age=60")
		writeJSON(w, http.StatusOK, map[string]any{"sub": u.sub(r), "n": u.counter.Add(1)})
	case "public":
		w.Header().Set("Cache-Control", "max-age=60")
		writeJSON(w, http.StatusOK, map[string]any{"n": u.counter.Add(1)})
	case "deny":
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
	case "up":
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			wsEcho(w, r)
			return
		}
		proto := r.Header.Get("Upgrade")
		if proto == "" {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\nraw bytes after the switch\n", proto)
		brw.Flush()
	case "cookie":
		h := w.Header()
		for _, v := range revCookieVariants {
			if v.name != rest {
				continue
			}
			if v.setCookie != "" {
				h.Add("Set-Cookie", v.setCookie)
			}
			if v.clearSite != "" {
				h.Set("Clear-Site-Data", v.clearSite)
			}
		}
		h.Add("Set-Cookie", "app=1; Path=/")
		h.Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"variant": rest})
	case "body":
		n, err := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, revBody{n: n, complete: err == nil && n == r.ContentLength})
		u.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]int64{"n": n})
	default:
		http.NotFound(w, r)
	}
}

// revStack is one provider, the review upstream behind an advTap, and one
// BFF whose routes all go through the tap; adv is an advStack over them, so
// that the shared refusal checks (advStack.refused) apply.
type revStack struct {
	idp *IDP
	api *Upstream
	rev *revUpstream
	tap *advTap
	bff *revBFF
	adv *advStack
}

// startRevStack starts the provider (registered for the BFF's callback,
// post-logout and back-channel URLs), the upstreams and the BFF. routes
// name only path, token and extra; every upstream is the tap. edit, when
// set, adjusts the BFF's config before it starts.
func startRevStack(t *testing.T, routes []revRoute, edit func(*revConfig)) *revStack {
	t.Helper()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	s := &revStack{}
	s.idp = startIDP(t, IDPOptions{
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
	})
	s.api = startUpstream(t, s.idp.Issuer(), DefaultAudience)
	s.rev = startRevUpstream(t, s.api)
	s.tap = startAdvTap(t, s.rev.URL())
	// PAR off: these attacks read the flow's state from the authorization
	// URL, as anyone watching a plain one can; TestPAR covers pushed ones.
	cfg := revConfig{port: port, issuer: s.idp.Issuer(), clientSecret: s.idp.ClientSecret(), metrics: true, env: []string{"BFF_OIDC_PAR=off"}}
	for _, r := range routes {
		r.upstream = s.tap.URL()
		cfg.routes = append(cfg.routes, r)
	}
	if edit != nil {
		edit(&cfg)
	}
	s.bff = startRevBFF(t, cfg)
	s.adv = &advStack{
		idp: s.idp, up: s.api, tap: s.tap, bff: s.bff.BFF, raw: newBrowser(t),
		metricsClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: loopbackDialer(), DisableKeepAlives: true}},
		secrets:       map[string]string{"client secret": s.idp.ClientSecret(), "key secret": s.bff.opts.KeySecret},
	}
	return s
}

// login signs user in with a new browser whose cookies, codes and states
// the log checks then look for.
func (s *revStack) login(t *testing.T, user string) *Browser {
	t.Helper()
	return s.adv.login(t, user)
}

// metrics scrapes the BFF's metrics_listen.
func (s *revStack) metrics(t *testing.T) string { return s.adv.metrics(t) }

// revRawResponse reads one response from br as the shared Response.
func revRawResponse(br *bufio.Reader, reqURL string) (*Response, error) {
	r, _, err := revRawResponseClose(br, reqURL)
	return r, err
}

// revRawResponseClose is revRawResponse that also says whether the response
// announced the end of the connection (Connection: close, which
// http.ReadResponse moves from the header to Response.Close).
func revRawResponseClose(br *bufio.Reader, reqURL string) (*Response, bool, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, false, err
	}
	u, _ := url.Parse(reqURL)
	return &Response{URL: u, Status: resp.StatusCode, Header: resp.Header, Body: body, SetCookies: resp.Cookies()}, resp.Close, nil
}

// revNginxCache runs nginx as a shared cache in front of target (host:port):
// proxy_cache on everything the answers allow (no proxy_cache_valid: only
// what the response's own Cache-Control/Expires permits), the default key
// (scheme, host, URI: not the cookie), X-Cache-Status on every answer. It
// returns nginx's origin, http://localhost:PORT.
func revNginxCache(t *testing.T, target string) string {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		t.Fatalf("e2e: %s not found: the shared-cache test needs Debian's nginx (apt-get install nginx-light): %v", nginxPath, err)
	}
	dir := t.TempDir()
	port := freePort(t)
	user := "" // workers must write the cache in the test's private directory
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	conf := user + fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=review:1m max_size=10m inactive=10m use_temp_path=off;
  server {
    listen 127.0.0.1:%[2]d;
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    location / {
      proxy_pass http://%[3]s;
      proxy_set_header Host $http_host;
      proxy_cache review;
      add_header X-Cache-Status $upstream_cache_status always;
    }
  }
}
`, dir, port, target)
	origin := fmt.Sprintf("http://localhost:%d", port)
	runNginx(t, dir, conf, origin)
	return origin
}

// jwtSub is the "sub" claim of a JWT, read without verification (to pick
// the provider's tokens of one user out of IDP.Issued).
func jwtSub(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Sub
}

// issuedFor returns the token sets the provider issued for sub, oldest first.
func issuedFor(t *testing.T, idp *IDP, sub string) []IssuedTokens {
	t.Helper()
	var out []IssuedTokens
	for _, it := range idp.Issued(t) {
		if jwtSub(it.AccessToken) == sub || jwtSub(it.IDToken) == sub {
			out = append(out, it)
		}
	}
	return out
}

// jwsRE finds compact JOSE serializations: "eyJ" then dot-separated base64url
// parts. A JWS (a token) has three parts, a JWE five.
var jwsRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)+`)

// compactParts lists the part count of every compact serialization in s.
func compactParts(s string) []int {
	var out []int
	for _, m := range jwsRE.FindAllString(s, -1) {
		out = append(out, strings.Count(m, ".")+1)
	}
	return out
}

// revDial opens a TCP connection to the BFF's main listener.
func revDial(t *testing.T, port int) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// revClosed reports whether the peer closed conn (EOF or reset) within d,
// as opposed to keeping it open (a read timeout).
func revClosed(conn net.Conn, br *bufio.Reader, d time.Duration) (bool, string) {
	conn.SetReadDeadline(time.Now().Add(d))
	b, err := br.ReadByte()
	switch {
	case err == nil:
		return false, fmt.Sprintf("the server sent more bytes (%q...)", b)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return true, "closed"
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, fmt.Sprintf("still open after %s", d)
		}
		return true, err.Error()
	}
}

// pacedReader yields size bytes in chunks of chunk, one chunk every every.
type pacedReader struct {
	left, chunk int
	every       time.Duration
	started     bool
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if p.started {
		time.Sleep(p.every)
	}
	p.started = true
	n := min(p.chunk, p.left, len(b))
	for i := range n {
		b[i] = 'a'
	}
	p.left -= n
	return n, nil
}

// revTrickle writes head on a new connection to the BFF, then one byte of
// the body a second (size bytes at most), and returns the answer and how
// long after head it came. No answer within timeout fails the test.
func revTrickle(t *testing.T, port int, head string, size int, timeout time.Duration) (*Response, time.Duration) {
	t.Helper()
	conn := revDial(t, port)
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range size {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := conn.Write([]byte{'a'}); err != nil {
				return
			}
		}
	}()
	path, _, _ := strings.Cut(strings.TrimPrefix(head, "POST "), " ")
	r, err := revRawResponse(bufio.NewReader(conn), fmt.Sprintf("http://localhost:%d%s", port, path))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer to the trickle after %s: %v", took.Round(100*time.Millisecond), err)
	}
	return r, took
}

// revCheckLogs is advStack.checkLogs over the whole log, with every token
// the provider issued (raw access, refresh and ID tokens) among the secrets.
func revCheckLogs(t *testing.T, s *advStack) {
	t.Helper()
	s.mu.Lock()
	for i, it := range s.idp.Issued(t) {
		s.secrets[fmt.Sprintf("issued access token #%d", i)] = it.AccessToken
		s.secrets[fmt.Sprintf("issued refresh token #%d", i)] = it.RefreshToken
		s.secrets[fmt.Sprintf("issued ID token #%d", i)] = it.IDToken
	}
	s.mu.Unlock()
	s.checkLogs(t, 0)
}
