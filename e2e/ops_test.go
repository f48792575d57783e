package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The operations tests: metrics, readiness, graceful shutdown, reload,
// streaming through the proxy, native TLS and clean logs, against the real
// provider and the built binary. They start their own BFF processes (the
// harness's startBFF has one fixed route and waits for readiness).

// opsRoute is one proxy route of an ops BFF.
type opsRoute struct{ path, upstream, token string }

// opsOptions is the configuration an ops BFF is started (or reloaded) with.
type opsOptions struct {
	port              int
	issuer            string
	clientSecret      string
	routes            []opsRoute
	certFile, keyFile string // native TLS when set
	publicScheme      string // "http" (default) or "https"
}

func (o opsOptions) yaml(dir string, metricsPort int) string {
	q := strconv.Quote
	scheme := o.publicScheme
	if scheme == "" {
		scheme = "http"
	}
	public := fmt.Sprintf("%s://localhost:%d", scheme, o.port)
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\npublic_url: %s\nmetrics_listen: %s\n", q(fmt.Sprintf("127.0.0.1:%d", o.port)), q(public), q(fmt.Sprintf("127.0.0.1:%d", metricsPort)))
	if o.certFile != "" {
		fmt.Fprintf(&b, "tls:\n  cert_file: %s\n  key_file: %s\n", q(o.certFile), q(o.keyFile))
	}
	fmt.Fprintf(&b, `oidc:
  issuer: %s
  client_id: "bff"
  scopes: ["openid", "profile", "email", "offline_access"]
  post_logout_redirect_url: %s
session:
  lifetime: "1h"
  refresh_margin: "2s"
revocation:
  snapshot_file: %s
log:
  format: "json"
routes:
`, q(o.issuer), q(public+"/"), q(filepath.Join(dir, "revoked.json")))
	for _, r := range o.routes {
		fmt.Fprintf(&b, "  - path: %s\n    upstream: %s\n    token: %s\n", q(r.path), q(r.upstream), q(r.token))
	}
	return b.String()
}

// opsBFF is a running BFF started by startOpsBFF.
type opsBFF struct {
	url       string // public URL
	metrics   string // http://127.0.0.1:PORT of metrics_listen
	dir       string
	cfgPath   string
	keySecret string
	logs      *syncBuffer
	proc      *process
}

// startOpsBFF writes the config and starts `bff serve`; it does not wait
// for readiness (see waitReady).
func startOpsBFF(t *testing.T, o opsOptions) *opsBFF {
	t.Helper()
	bin := bffBinary(t)
	dir := t.TempDir()
	scheme := o.publicScheme
	if scheme == "" {
		scheme = "http"
	}
	b := &opsBFF{
		url:       fmt.Sprintf("%s://localhost:%d", scheme, o.port),
		dir:       dir,
		cfgPath:   filepath.Join(dir, "bff.yaml"),
		keySecret: newKeySecret(t),
		logs:      &syncBuffer{},
		metrics:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
	}
	b.writeConfig(t, o)
	cmd := exec.Command(bin, "serve", "-config", b.cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET="+o.clientSecret, "BFF_KEYS_SECRETS="+b.keySecret)
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	b.proc = startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bff logs (last 8 KiB):\n%s", tail(b.logs.String(), 8<<10))
		}
	})
	return b
}

func (b *opsBFF) writeConfig(t *testing.T, o opsOptions) {
	t.Helper()
	_, port, _ := strings.Cut(strings.TrimPrefix(b.metrics, "http://"), ":")
	mp, _ := strconv.Atoi(port)
	if err := os.WriteFile(b.cfgPath, []byte(o.yaml(b.dir, mp)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// status answers the status of GET path on the BFF (0 when unreachable).
func (b *opsBFF) status(c *http.Client, path string) int {
	resp, err := c.Get(b.url + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (b *opsBFF) waitReady(t *testing.T) {
	t.Helper()
	c := opsClient(nil)
	if err := waitFor(b.proc, 20*time.Second, func() bool { return b.status(c, "/readyz") == http.StatusOK }); err != nil {
		t.Fatalf("bff not ready: %v", err)
	}
}

func (b *opsBFF) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := b.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitLog waits until msg appears in the logs more than `before` times.
func (b *opsBFF) waitLog(t *testing.T, msg string, before int) {
	t.Helper()
	if err := waitFor(b.proc, 10*time.Second, func() bool { return strings.Count(b.logs.String(), msg) > before }); err != nil {
		t.Fatalf("log %q: %v", msg, err)
	}
}

// opsClient is an HTTP client for loopback that dials localhost as
// 127.0.0.1, with optional TLS roots.
func opsClient(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{DialContext: loopbackDialer(), DisableKeepAlives: true}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startIDPAt runs the test provider (idp/server.js) on the given port, for
// a test that starts it after the BFF. Returns its issuer.
func startIDPAt(t *testing.T, port int, public string) string {
	t.Helper()
	cmd := exec.Command("node", "server.js")
	cmd.Dir = idpDir
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"CLIENT_ID=bff",
		"CLIENT_SECRET="+defaultClientSecret,
		"REDIRECT_URIS="+public+"/auth/callback",
		"POST_LOGOUT_REDIRECT_URIS="+public+"/",
		"RESOURCE="+DefaultAudience,
	)
	_, issuer, _ := startReady(t, "idp", cmd)
	return issuer
}

// opsUpstream serves the streaming and slow routes and records which
// subject's bearer each path carried.
type opsUpstream struct {
	srv         *httptest.Server
	api         *Upstream // verifies bearer tokens
	slowStarted chan struct{}
	sseNext     chan struct{}

	mu   sync.Mutex
	subs map[string]string // path -> verified sub ("" when none or invalid)
}

func startOpsUpstream(t *testing.T, api *Upstream) *opsUpstream {
	u := &opsUpstream{api: api, slowStarted: make(chan struct{}, 1), sseNext: make(chan struct{}), subs: map[string]string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *opsUpstream) sub(path string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.subs[path]
}

func (u *opsUpstream) serve(w http.ResponseWriter, r *http.Request) {
	sub := ""
	if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if s, _, _, err := u.api.Verify(r.Context(), raw); err == nil {
			sub = s
		}
	}
	u.mu.Lock()
	u.subs[r.URL.Path] = sub
	u.mu.Unlock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/ws/"):
		wsEcho(w, r)
	case strings.HasPrefix(r.URL.Path, "/sse/"):
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		for i := 0; i < 3; i++ {
			if i > 0 {
				// The next event only after the client saw this one:
				// a buffering proxy would deadlock here.
				select {
				case <-u.sseNext:
				case <-time.After(5 * time.Second):
					return
				}
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			w.(http.Flusher).Flush()
		}
	case strings.HasPrefix(r.URL.Path, "/slow/"):
		select {
		case u.slowStarted <- struct{}{}:
		default:
		}
		time.Sleep(2 * time.Second)
		io.WriteString(w, "slow done")
	default:
		http.NotFound(w, r)
	}
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEcho completes a WebSocket handshake (RFC 6455) by hand and echoes one
// text frame, which the client must have masked.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	conn, _, payload, ok := wsAcceptFirstFrame(w, r)
	if !ok {
		return
	}
	defer conn.Close()
	conn.Write(wsFrame(payload, false))
}

// wsAcceptFirstFrame completes a WebSocket handshake by hand (RFC 6455, with
// a 10 s deadline on the connection) and reads the client's first frame,
// which must be a masked text frame. When ok, the caller owns conn.
func wsAcceptFirstFrame(w http.ResponseWriter, r *http.Request) (conn net.Conn, br *bufio.Reader, payload []byte, ok bool) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "not a websocket handshake", http.StatusBadRequest)
		return nil, nil, nil, false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, nil, false
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if brw.Flush() != nil {
		conn.Close()
		return nil, nil, nil, false
	}
	op, payload, masked, err := wsReadFrame(brw.Reader)
	if err != nil || op != 1 || !masked {
		conn.Close()
		return nil, nil, nil, false
	}
	return conn, brw.Reader, payload, true
}

// wsFrame is one final text frame, masked (client to server) or not.
func wsFrame(payload []byte, mask bool) []byte {
	if len(payload) > 125 {
		panic("wsFrame: short frames only")
	}
	f := []byte{0x81, byte(len(payload))}
	if !mask {
		return append(f, payload...)
	}
	f[1] |= 0x80
	key := make([]byte, 4)
	rand.Read(key)
	f = append(f, key...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

func wsReadFrame(r *bufio.Reader) (op byte, payload []byte, masked bool, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return 0, nil, false, err
	}
	op, masked = h[0]&0x0f, h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		return 0, nil, false, errors.New("ws: frame too long for the test")
	}
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(r, key[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return op, payload, masked, nil
}

// metricsText scrapes the metrics on the BFF's metrics_listen.
func metricsText(t *testing.T, b *opsBFF) string {
	t.Helper()
	return getMetrics(t, opsClient(nil), b.metrics)
}

// getMetrics returns the text of GET base/metrics, failing t on anything but 200.
func getMetrics(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	return string(body)
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// metric sums the samples of name whose labels include want.
func metric(text, name string, want map[string]string) float64 {
	sum := 0.0
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		base, labels, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		have := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
			have[m[1]] = m[2]
		}
		ok := true
		for k, v := range want {
			if have[k] != v {
				ok = false
			}
		}
		if f, err := strconv.ParseFloat(value, 64); ok && err == nil {
			sum += f
		}
	}
	return sum
}

// TestOpsFlow runs one BFF through a whole operating day: sign-in, API,
// WebSocket and SSE through the proxy, a refusal, two reloads, logout,
// metrics, a SIGTERM during a slow call, and then reads every log line.
func TestOpsFlow(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	idp := startIDP(t, IDPOptions{RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/"}})
	api := startUpstream(t, idp.Issuer(), DefaultAudience)
	ops := startOpsUpstream(t, api)
	opts := opsOptions{
		port: port, issuer: idp.Issuer(), clientSecret: idp.ClientSecret(),
		routes: []opsRoute{
			{"/api/", api.URL(), "user"},
			{"/ws/", ops.srv.URL, "user"},
			{"/sse/", ops.srv.URL, "user"},
			{"/slow/", ops.srv.URL, "user"},
		},
	}
	bff := startOpsBFF(t, opts)
	bff.waitReady(t)
	bffURL, _ := url.Parse(bff.url)
	before := metricsText(t, bff)

	b := newBrowser(t)
	browsers := []*Browser{b}
	cookieValues := map[string]bool{}
	keepCookies := func(b *Browser) {
		for _, n := range b.CookieNames(bffHost) {
			if v, ok := b.CookieValue(bffHost, n); ok && v != "" {
				cookieValues[v] = true
			}
		}
	}
	call := func(path string) *Response {
		return b.Get(t, bff.url+path, map[string]string{"X-CSRF": "1"})
	}

	mustRun(t, "login_user_api", func(t *testing.T) {
		b.Login(t, bff.url, "/app?tab=1", "alice", "pw")
		keepCookies(b)
		if r := b.Get(t, bff.url+"/auth/user", nil); r.Status != http.StatusOK {
			t.Fatalf("/auth/user: %d", r.Status)
		}
		r := b.Get(t, bff.url+"/api/whoami", map[string]string{"X-CSRF": "1", "X-Request-Id": "chosen-by-the-client"})
		if r.Status != http.StatusOK {
			t.Fatalf("/api/whoami: %d %s", r.Status, r.Body)
		}
		if id := r.Header.Get("X-Request-Id"); id == "" || id == "chosen-by-the-client" {
			t.Errorf("X-Request-Id %q: want a fresh id (the client is not a trusted proxy)", id)
		}
		if last, _ := api.Last(); !last.AuthOK || !containsName(last.HeaderNames, "X-Request-Id") {
			t.Errorf("upstream saw auth_ok=%v headers %v; want a verified bearer and X-Request-Id", last.AuthOK, last.HeaderNames)
		}
		// The access log is buffered (log.access_flush, default 1s): the
		// line arrives within the interval, with no other line to push it.
		line := `"id":"` + r.Header.Get("X-Request-Id") + `","method":"GET","path":"/api/whoami","status":200`
		if err := waitFor(bff.proc, 5*time.Second, func() bool { return strings.Contains(bff.logs.String(), line) }); err != nil {
			t.Errorf("no access-log line %s within 5 s: %v", line, err)
		}
	})

	t.Run("websocket_echo_carries_bearer", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		keyBytes := make([]byte, 16)
		rand.Read(keyBytes)
		key := base64.StdEncoding.EncodeToString(keyBytes)
		req, _ := http.NewRequest(http.MethodGet, bff.url+"/ws/echo", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Key", key)
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Origin", bff.url)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Cookie", b.jar.header(bffURL))
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			t.Fatalf("handshake: status %d, accept ok %v: %s", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept") == wsAccept(key), body)
		}
		if _, err := conn.Write(wsFrame([]byte("hello through the bff"), true)); err != nil {
			t.Fatal(err)
		}
		op, payload, masked, err := wsReadFrame(br)
		if err != nil || op != 1 || masked || string(payload) != "hello through the bff" {
			t.Fatalf("echo: op %d masked %v payload %q err %v", op, masked, payload, err)
		}
		if sub := ops.sub("/ws/echo"); sub != "alice" {
			t.Errorf("upstream saw bearer of %q on the upgrade, want alice", sub)
		}
		// The access line says what happened: a switch, not NoRoute's 404.
		conn.Close()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(bff.logs.String(), `"path":"/ws/echo","status":101`) {
			if time.Now().After(deadline) {
				t.Errorf("no access line with status 101 for the WebSocket:\n%s", tail(bff.logs.String(), 2000))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("sse_streams_incrementally_with_bearer", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, bff.url+"/sse/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Cookie", b.jar.header(bffURL))
		resp, err := opsClient(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					lines <- d
				}
			}
			close(lines)
		}()
		for i := 0; i < 3; i++ {
			select {
			case d := <-lines:
				if d != fmt.Sprintf("event %d", i) {
					t.Fatalf("event %d: got %q", i, d)
				}
			case <-time.After(4 * time.Second):
				t.Fatalf("event %d did not arrive before the upstream sent the next: the proxy buffers the stream", i)
			}
			if i < 2 {
				ops.sseNext <- struct{}{}
			}
		}
		if sub := ops.sub("/sse/events"); sub != "alice" {
			t.Errorf("upstream saw bearer of %q, want alice", sub)
		}
	})

	mustRun(t, "refusal_counted", func(t *testing.T) {
		m0 := metric(metricsText(t, bff), "bff_refused_total", map[string]string{"reason": "forbidden"})
		// A POST without X-CSRF: a same-origin GET marked by the
		// browser's Fetch Metadata is accepted without it now.
		r := b.Post(t, bff.url+"/api/x", nil, "")
		assertJSONError(t, r, http.StatusForbidden)
		m1 := metric(metricsText(t, bff), "bff_refused_total", map[string]string{"reason": "forbidden"})
		if m1 < m0+1 {
			t.Errorf("bff_refused_total{reason=forbidden} %v -> %v, want +1", m0, m1)
		}
	})

	mustRun(t, "sighup_broken_config_keeps_old", func(t *testing.T) {
		broken := opts
		broken.routes = append(append([]opsRoute{}, opts.routes...), opsRoute{"/v2/", "ftp://x", "user"})
		bff.writeConfig(t, broken)
		n := strings.Count(bff.logs.String(), "reload refused")
		bff.signal(t, syscall.SIGHUP)
		bff.waitLog(t, "reload refused", n)
		if r := call("/api/whoami"); r.Status != http.StatusOK {
			t.Errorf("/api/whoami after a refused reload: %d", r.Status)
		}
		if r := call("/v2/x"); r.Status != http.StatusNotFound {
			t.Errorf("/v2/x after a refused reload: %d, want 404", r.Status)
		}
	})

	mustRun(t, "sighup_new_route", func(t *testing.T) {
		opts.routes = append(opts.routes, opsRoute{"/v2/", api.URL(), "user"})
		bff.writeConfig(t, opts)
		n := strings.Count(bff.logs.String(), "configuration reloaded")
		bff.signal(t, syscall.SIGHUP)
		bff.waitLog(t, "configuration reloaded", n)
		r := call("/v2/echo")
		if r.Status != http.StatusOK {
			t.Fatalf("/v2/echo after reload: %d %s", r.Status, r.Body)
		}
		if last, _ := api.Last(); last.Path != "/v2/echo" || !last.AuthOK || last.Sub != "alice" {
			t.Errorf("upstream saw %+v", last)
		}
		if r := call("/api/whoami"); r.Status != http.StatusOK {
			t.Errorf("/api/whoami after reload: %d", r.Status)
		}
		keepCookies(b)
	})

	mustRun(t, "logout", func(t *testing.T) {
		if r := b.Post(t, bff.url+"/auth/logout", map[string]string{"X-CSRF": "1"}, ""); r.Status != http.StatusOK {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
	})

	t.Run("metrics_moved", func(t *testing.T) {
		after := metricsText(t, bff)
		checks := []struct {
			name   string
			labels map[string]string
			delta  float64
		}{
			{"bff_http_requests_total", map[string]string{"route": "/auth/login", "code": "3xx"}, 1},
			{"bff_http_requests_total", map[string]string{"route": "/auth/callback", "code": "3xx"}, 1},
			{"bff_http_requests_total", map[string]string{"route": "/auth/user", "code": "2xx"}, 1},
			{"bff_http_requests_total", map[string]string{"route": "/auth/logout", "code": "2xx"}, 1},
			{"bff_http_requests_total", map[string]string{"route": "/api/", "code": "2xx"}, 2},
			{"bff_http_requests_total", map[string]string{"route": "/api/", "code": "4xx"}, 1},
			{"bff_http_requests_total", map[string]string{"route": "/v2/", "code": "2xx"}, 1},
			{"bff_http_request_duration_seconds_count", map[string]string{"route": "/api/"}, 3},
			{"bff_sessions_total", map[string]string{"event": "opened"}, 1},
			{"bff_sessions_total", map[string]string{"event": "sealed"}, 1},
			{"bff_revocations_total", map[string]string{"kind": "logout"}, 1},
			{"bff_revocation_list_entries", nil, 1},
			{"bff_session_cookie_bytes_count", nil, 1},
			{"bff_provider_request_duration_seconds_count", nil, 1},
		}
		for _, c := range checks {
			d := metric(after, c.name, c.labels) - metric(before, c.name, c.labels)
			if d < c.delta {
				t.Errorf("%s%v moved by %v, want at least %v", c.name, c.labels, d, c.delta)
			}
		}
		if strings.Contains(after, "eyJ") {
			t.Errorf("/metrics holds an eyJ string")
		}
	})

	mustRun(t, "sigterm_lets_slow_call_finish", func(t *testing.T) {
		b2 := newBrowser(t)
		browsers = append(browsers, b2)
		b2.Login(t, bff.url, "/", "bob", "pw")
		keepCookies(b2)
		type result struct {
			r   *Response
			err error
		}
		done := make(chan result, 1)
		go func() {
			r, err := b2.send(http.MethodGet, bff.url+"/slow/call", fetchHeaders(http.MethodGet, bff.url+"/slow/call", map[string]string{"X-CSRF": "1"}), nil)
			done <- result{r, err}
		}()
		select {
		case <-ops.slowStarted:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow call never reached the upstream")
		}
		time.Sleep(500 * time.Millisecond)
		sent := time.Now()
		bff.signal(t, syscall.SIGTERM)
		res := <-done
		if res.err != nil {
			t.Fatalf("slow call during shutdown: %v", res.err)
		}
		if res.r.Status != http.StatusOK || string(res.r.Body) != "slow done" {
			t.Fatalf("slow call during shutdown: %d %q", res.r.Status, res.r.Body)
		}
		if ops.sub("/slow/call") != "bob" {
			t.Errorf("slow call carried no bearer of bob")
		}
		select {
		case <-bff.proc.done:
		case <-time.After(5 * time.Second):
			t.Fatal("bff still running 5s after the in-flight call finished")
		}
		if bff.proc.err != nil {
			t.Errorf("bff exit after SIGTERM: %v, want status 0", bff.proc.err)
		}
		// Logged during the drain, after the last unbuffered line: only the
		// flush at exit writes it.
		if !strings.Contains(bff.logs.String(), `"path":"/slow/call","status":200`) {
			t.Errorf("the slow call's access-log line was lost at exit")
		}
		t.Logf("bff exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	})

	t.Run("logs_hold_no_secret", func(t *testing.T) {
		logs := bff.logs.String()
		secrets := map[string]string{"client secret": idp.ClientSecret(), "key secret": bff.keySecret}
		i := 0
		for v := range cookieValues {
			secrets["cookie value #"+strconv.Itoa(i)] = v
			i++
		}
		codes := 0
		for _, br := range browsers {
			for _, c := range br.Codes() {
				secrets["authorization code #"+strconv.Itoa(codes)] = c
				codes++
			}
			for j, s := range br.States() {
				secrets["state/nonce #"+strconv.Itoa(j)] = s
			}
		}
		if codes < 2 || len(cookieValues) == 0 {
			t.Fatalf("captured %d codes and %d cookie values: the check would be empty", codes, len(cookieValues))
		}
		for what, s := range secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("BFF logs contain the %s", what)
			}
		}
		for _, bad := range []string{"eyJ", "returnTo=", "code=", "Bearer "} {
			if strings.Contains(logs, bad) {
				t.Errorf("BFF logs contain %q", bad)
			}
		}
		for _, want := range []string{`"msg":"request"`, "reload refused", "configuration reloaded", "shutting down"} {
			if !strings.Contains(logs, want) {
				t.Errorf("BFF logs lack %q", want)
			}
		}
	})
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// TestOpsReadyzWaitsForProvider starts the BFF before its provider: /readyz
// answers 503 (and /healthz 200) until discovery succeeds.
func TestOpsReadyzWaitsForProvider(t *testing.T) {
	t.Parallel()
	port, idpPort := freePort(t), freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	bff := startOpsBFF(t, opsOptions{
		port: port, issuer: fmt.Sprintf("http://127.0.0.1:%d", idpPort), clientSecret: defaultClientSecret,
		routes: []opsRoute{{"/api/", "http://127.0.0.1:9", "user"}},
	})
	c := opsClient(nil)
	if err := waitFor(bff.proc, 10*time.Second, func() bool { return bff.status(c, "/healthz") == http.StatusOK }); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	for i := 0; i < 5; i++ {
		if s := bff.status(c, "/readyz"); s != http.StatusServiceUnavailable {
			t.Fatalf("/readyz before the provider is up: %d, want 503", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A sign-in that gets no answer at all fails the test: the check must
	// run, not vanish with the request.
	r, err := c.Get(bff.url + "/auth/login?returnTo=/")
	if err != nil {
		t.Fatalf("/auth/login before the provider is up: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/auth/login before the provider is up: %d, want 503", r.StatusCode)
	}
	startIDPAt(t, idpPort, public)
	start := time.Now()
	bff.waitReady(t)
	t.Logf("ready %s after the provider started", time.Since(start).Round(time.Millisecond))
}

// writeCert writes a fresh self-signed certificate for localhost and
// 127.0.0.1 and returns it.
func writeCert(t *testing.T, certPath, keyPath, name string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestOpsNativeTLS serves HTTPS from cert files and swaps the certificate
// on SIGHUP; a broken replacement keeps the old one.
func TestOpsNativeTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certPath, keyPath, "first")
	port := freePort(t)
	bff := startOpsBFF(t, opsOptions{
		port: port, publicScheme: "https",
		issuer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), clientSecret: defaultClientSecret,
		routes:   []opsRoute{{"/api/", "http://127.0.0.1:9", "user"}},
		certFile: certPath, keyFile: keyPath,
	})
	pool := func(c *x509.Certificate) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(c)
		return p
	}
	// served returns the certificate a new connection sees, and /healthz's
	// status over HTTPS verified against roots.
	served := func(roots *x509.CertPool) (*x509.Certificate, int, error) {
		resp, err := opsClient(roots).Get(bff.url + "/healthz")
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		return resp.TLS.PeerCertificates[0], resp.StatusCode, nil
	}
	if err := waitFor(bff.proc, 10*time.Second, func() bool { _, s, err := served(pool(first)); return err == nil && s == http.StatusOK }); err != nil {
		t.Fatalf("https /healthz: %v", err)
	}

	second := writeCert(t, certPath, keyPath, "second")
	n := strings.Count(bff.logs.String(), "TLS certificate reloaded")
	bff.signal(t, syscall.SIGHUP)
	bff.waitLog(t, "TLS certificate reloaded", n)
	got, status, err := served(pool(second))
	if err != nil || status != http.StatusOK || !got.Equal(second) {
		t.Fatalf("after reload: status %d, err %v, new certificate served: %v", status, err, err == nil && got.Equal(second))
	}
	if _, _, err := served(pool(first)); err == nil {
		t.Errorf("a new connection still verifies against the old certificate")
	}

	if err := os.WriteFile(keyPath, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	n = strings.Count(bff.logs.String(), "TLS certificate reload failed")
	bff.signal(t, syscall.SIGHUP)
	bff.waitLog(t, "TLS certificate reload failed", n)
	if got, status, err := served(pool(second)); err != nil || status != http.StatusOK || !got.Equal(second) {
		t.Errorf("after a broken reload: status %d, err %v; want the previous certificate kept", status, err)
	}
	if strings.Contains(bff.logs.String(), "PRIVATE KEY") || strings.Contains(bff.logs.String(), bff.keySecret) {
		t.Errorf("logs hold key material")
	}
}
