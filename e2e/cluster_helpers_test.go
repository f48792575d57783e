package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
)

// The cluster harness: three BFF processes gossiping their revocation list
// (cluster section of the config), Debian's nginx as a round-robin load
// balancer without stickiness in front of them, the test provider and the
// upstream API. Each instance keeps its master secrets in a secrets file of
// its own, so a test can rewrite it and send SIGHUP.

// nginxPath is Debian's nginx binary (test.sh installs nginx-light).
const nginxPath = "/usr/sbin/nginx"

// clusterRotation is the epoch length every instance runs with: short, so
// that the rotation test sees several rollovers.
const clusterRotation = 2 * time.Second

// clusterNode is one BFF instance of the cluster.
type clusterNode struct {
	name        string
	port        int // HTTP, on 127.0.0.1
	gossip      int // memberlist UDP and TCP, on 127.0.0.1
	metrics     int // metrics_listen, on 127.0.0.1
	dir         string
	cfgPath     string
	secretsPath string
	env         []string
	logs        *syncBuffer // every run of this instance, appended
	proc        *process
}

// testCluster is the whole set-up.
type testCluster struct {
	nodes   []*clusterNode
	public  string // the balancer's origin, http://localhost:PORT: every instance's public_url
	lbPort  int
	idp     *IDP
	up      *Upstream
	cluster string // cluster secret, base64
	client  *http.Client
	owner   *testing.T // the top-level test: processes live until it ends
}

// freeGossipPort returns a loopback port free for both TCP and UDP a
// moment ago (memberlist binds both on the same number).
func freeGossipPort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testsupport.FreeGossipAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// startCluster starts the provider (its back-channel logout URI points at
// the first instance directly), the upstream, three instances that all join
// the first two, and nginx in front of them. It returns once every instance
// and the balancer answer /readyz with 200.
func startCluster(t *testing.T, oldSecret string) *testCluster {
	t.Helper()
	return startClusterWith(t, clusterOptions{secret: oldSecret})
}

// clusterOptions varies startClusterWith for suites that need more.
type clusterOptions struct {
	secret    string        // master secret every instance starts with
	accessTTL time.Duration // the provider's access-token lifetime; zero: the harness default
	// prepare runs once the nodes have ports and the provider runs, before
	// any instance is configured.
	prepare func(c *testCluster)
	// config, when set, edits instance i's YAML before it starts.
	config func(i int, yaml string) string
	// ready runs once every instance is ready, before nginx starts.
	ready func(c *testCluster)
}

// startClusterWith starts the provider, the upstream, three instances and
// nginx in front of them, and returns once nginx serves.
func startClusterWith(t *testing.T, opts clusterOptions) *testCluster {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		t.Fatalf("e2e: %s not found: the cluster tests need Debian's nginx as their load balancer; "+
			"test.sh installs it (apt-get install nginx-light): %v", nginxPath, err)
	}
	bin := bffBinary(t)
	c := &testCluster{lbPort: freePort(t), owner: t}
	c.public = fmt.Sprintf("http://localhost:%d", c.lbPort)
	c.client = &http.Client{
		Transport: &http.Transport{DialContext: loopbackDialer(), MaxIdleConnsPerHost: 16},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(c.client.CloseIdleConnections)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c.cluster = base64.StdEncoding.EncodeToString(key)
	for i := range 3 {
		c.nodes = append(c.nodes, &clusterNode{
			name:    string(rune('a' + i)),
			port:    freePort(t),
			gossip:  freeGossipPort(t),
			metrics: freePort(t),
			dir:     t.TempDir(),
			logs:    &syncBuffer{},
		})
	}
	c.idp = startIDP(t, IDPOptions{
		RedirectURIs:           []string{c.public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{c.public + "/"},
		BackchannelLogoutURI:   fmt.Sprintf("http://127.0.0.1:%d/auth/backchannel-logout", c.nodes[0].port),
		AccessTTL:              opts.accessTTL,
	})
	c.up = startUpstream(t, c.idp.Issuer(), DefaultAudience)
	if opts.prepare != nil {
		opts.prepare(c)
	}
	join := []string{
		fmt.Sprintf("127.0.0.1:%d", c.nodes[0].gossip),
		fmt.Sprintf("127.0.0.1:%d", c.nodes[1].gossip),
	}
	for i, n := range c.nodes {
		n.cfgPath = filepath.Join(n.dir, "bff.yaml")
		n.secretsPath = filepath.Join(n.dir, "secrets")
		n.env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET="+c.idp.ClientSecret())
		cfg := c.configYAML(n, join)
		if opts.config != nil {
			cfg = opts.config(i, cfg)
		}
		if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		n.writeSecrets(t, opts.secret)
		n.start(t, bin)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("bff %s logs (last 6 KiB):\n%s", n.name, tail(n.logs.String(), 6<<10))
			}
		}
	})
	for _, n := range c.nodes {
		n.waitReady(t, 30*time.Second)
	}
	if opts.ready != nil {
		opts.ready(c)
	}
	c.startNginx(t)
	return c
}

// configYAML is one instance's config: same public URL, provider, route,
// rotation and cluster secret as the others; its own ports and files.
func (c *testCluster) configYAML(n *clusterNode, join []string) string {
	q := strconv.Quote
	js := make([]string, len(join))
	for i, j := range join {
		js[i] = q(j)
	}
	return fmt.Sprintf(`listen: %s
public_url: %s
trusted_proxies: ["127.0.0.1/32"]
oidc:
  issuer: %s
  client_id: %s
  scopes: ["openid", "profile", "email", "offline_access"]
  post_logout_redirect_url: %s
session:
  lifetime: "1h"
  refresh_margin: "2s"
keys:
  secrets_file: %s
  rotation: %s
routes:
  - path: "/api/"
    upstream: %s
    token: "user"
cluster:
  bind: %s
  join: [%s]
  secret: %s
  name: %s
log:
  format: "json"
  access_flush: "0s" # each line at once: the log checks read while the BFF runs
metrics_listen: %s
revocation:
  snapshot_file: %s
`,
		q(fmt.Sprintf("127.0.0.1:%d", n.port)), q(c.public), q(c.idp.Issuer()), q(c.idp.ClientID()),
		q(c.public+"/"), q(n.secretsPath), q(clusterRotation.String()), q(c.up.URL()),
		q(fmt.Sprintf("127.0.0.1:%d", n.gossip)), strings.Join(js, ", "), q(c.cluster), q("bff-"+n.name),
		q(fmt.Sprintf("127.0.0.1:%d", n.metrics)), q(filepath.Join(n.dir, "revoked")))
}

// writeSecrets replaces the instance's secrets file (one secret a line);
// the running process reads it again on SIGHUP.
func (n *clusterNode) writeSecrets(t testing.TB, secrets ...string) {
	t.Helper()
	if err := os.WriteFile(n.secretsPath, []byte(strings.Join(secrets, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs `bff serve` for the instance; it does not wait for readiness.
// The process is stopped when owner ends: pass the top-level test when
// restarting from a subtest.
func (n *clusterNode) start(t testing.TB, bin string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-config", n.cfgPath)
	cmd.Dir = n.dir
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	n.proc = startProcess(t, cmd, 5*time.Second)
}

func (n *clusterNode) url() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }

// readyz is the status of GET /readyz (0 when unreachable).
func (n *clusterNode) readyz(hc *http.Client) int {
	resp, err := hc.Get(n.url() + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (n *clusterNode) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	if err := waitFor(n.proc, timeout, func() bool { return n.readyz(hc) == http.StatusOK }); err != nil {
		t.Fatalf("e2e: bff %s not ready: %v\nlogs:\n%s", n.name, err, tail(n.logs.String(), 6<<10))
	}
}

// kill stops the instance with SIGKILL (no leave message, no drain) and
// waits until it is gone.
func (n *clusterNode) kill(t testing.TB) {
	t.Helper()
	if err := n.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("e2e: kill bff %s: %v", n.name, err)
	}
	<-n.proc.done
}

// hup sends SIGHUP and waits until the instance says it reloaded; a
// refused reload fails the test.
func (n *clusterNode) hup(t testing.TB) {
	t.Helper()
	const ok, refused = "configuration reloaded", "reload refused"
	before, beforeBad := strings.Count(n.logs.String(), ok), strings.Count(n.logs.String(), refused)
	if err := n.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("e2e: SIGHUP bff %s: %v", n.name, err)
	}
	err := waitFor(n.proc, 10*time.Second, func() bool {
		logs := n.logs.String()
		return strings.Count(logs, ok) > before || strings.Count(logs, refused) > beforeBad
	})
	if err != nil {
		t.Fatalf("e2e: bff %s after SIGHUP: %v", n.name, err)
	}
	if strings.Count(n.logs.String(), refused) > beforeBad {
		t.Fatalf("e2e: bff %s refused the reload:\n%s", n.name, tail(n.logs.String(), 2<<10))
	}
}

// startNginx writes a minimal nginx.conf (round robin, no stickiness, every
// temporary path in the test's directory) and runs nginx in the foreground
// until the test ends.
func (c *testCluster) startNginx(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	var servers strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&servers, "    server 127.0.0.1:%d;\n", n.port)
	}
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream bffs {
%[2]s  }
  server {
    listen 127.0.0.1:%[3]d;
    large_client_header_buffers 4 16k;
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    location / {
      proxy_pass http://bffs;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, dir, servers.String(), c.lbPort)
	runNginx(t, dir, conf, c.public)
}

// runNginx writes conf into dir, runs nginx on it in the foreground until
// the test ends (its output and error.log shown when the test fails), and
// waits until origin/readyz answers 200 through it.
func runNginx(t *testing.T, dir, conf, origin string) {
	t.Helper()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(nginxPath, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = logs, logs
	p := startProcess(t, cmd, 3*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", logs.String(), tail(string(b), 4<<10))
		}
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: loopbackDialer()}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	err := waitFor(p, 10*time.Second, func() bool {
		resp, err := hc.Get(origin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		t.Fatalf("e2e: nginx not serving: %v\n%s", err, logs.String())
	}
}

// sessionCookies is the Cookie header a browser would send for its BFF
// session chunks (frozen: replaying it is what a thief does).
func sessionCookies(b *Browser) string {
	var parts []string
	for _, name := range b.CookieNames(bffHost) {
		if !strings.HasPrefix(name, sessionPrefix+".") {
			continue
		}
		if v, ok := b.CookieValue(bffHost, name); ok {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, "; ")
}

// probe is one same-origin fetch() to an instance directly, with a fixed
// Cookie header, as the app on the public origin would send it. It returns
// the status and the error description ("" on success).
func (c *testCluster) probe(n *clusterNode, method, path, cookies string) (int, string, error) {
	req, err := http.NewRequest(method, n.url()+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Cookie", cookies)
	req.Header.Set("Origin", c.public)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 400 {
		return resp.StatusCode, "", nil
	}
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e.Error + ": " + e.Desc, nil
}

// revokedDesc is the error description of a refused (revoked, expired or
// undecryptable) session, as opposed to "sign-in required" (no cookie).
const revokedDesc = "session ended"

// expectOn checks GET path with cookies on every instance: status want
// and, for a 401, the "session ended" answer (not a missing cookie).
func (c *testCluster) expectOn(t *testing.T, nodes []*clusterNode, path, cookies string, want int) {
	t.Helper()
	for _, n := range nodes {
		status, desc, err := c.probe(n, http.MethodGet, path, cookies)
		if err != nil {
			t.Errorf("bff %s GET %s: %v", n.name, path, err)
			continue
		}
		if status != want {
			t.Errorf("bff %s GET %s: status %d (%s), want %d", n.name, path, status, desc, want)
			continue
		}
		if want == http.StatusUnauthorized && !strings.Contains(desc, revokedDesc) {
			t.Errorf("bff %s GET %s: 401 %q, want a refused session (%q)", n.name, path, desc, revokedDesc)
		}
	}
}

// waitRefusedEverywhere polls /auth/user with cookies on each of nodes
// every 5 ms (one goroutine per instance) until each refuses the session,
// and returns how long after start the last one did.
func (c *testCluster) waitRefusedEverywhere(nodes []*clusterNode, start time.Time, cookies string, timeout time.Duration) (time.Duration, error) {
	var (
		mu    sync.Mutex
		worst time.Duration
		errs  []string
		wg    sync.WaitGroup
	)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := start.Add(timeout)
			for {
				status, desc, err := c.probe(n, http.MethodGet, "/auth/user", cookies)
				at := time.Since(start)
				if err == nil && status == http.StatusUnauthorized {
					mu.Lock()
					defer mu.Unlock()
					if !strings.Contains(desc, revokedDesc) {
						errs = append(errs, fmt.Sprintf("bff %s: 401 %q, want a refused session", n.name, desc))
					}
					worst = max(worst, at)
					return
				}
				if err == nil && status != http.StatusOK {
					mu.Lock()
					defer mu.Unlock()
					errs = append(errs, fmt.Sprintf("bff %s: status %d (%s)", n.name, status, desc))
					return
				}
				if time.Now().After(deadline) {
					mu.Lock()
					defer mu.Unlock()
					errs = append(errs, fmt.Sprintf("bff %s still accepts the session after %s (last error %v)", n.name, timeout, err))
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		slices.Sort(errs)
		return worst, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return worst, nil
}

// metricsOf scrapes an instance's metrics (on its metrics_listen).
func (c *testCluster) metricsOf(t testing.TB, n *clusterNode) string {
	t.Helper()
	resp, err := c.client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", n.metrics))
	if err != nil {
		t.Fatalf("bff %s GET /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bff %s GET /metrics: status %d", n.name, resp.StatusCode)
	}
	return string(body)
}

// metricValue is the value of an unlabelled sample (0 when absent).
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}

// sealKid is the JWE "kid" (master id "." epoch) of the session cookie
// the browser holds.
func sealKid(t testing.TB, b *Browser) (master string, epoch int64) {
	t.Helper()
	v, ok := b.CookieValue(bffHost, sessionCookie)
	if !ok {
		t.Fatalf("no session cookie %s", sessionCookie)
	}
	head, _, _ := strings.Cut(v, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("session cookie: JWE header is not base64url: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Kid == "" {
		t.Fatalf("session cookie: JWE header without kid")
	}
	i := strings.LastIndexByte(h.Kid, '.')
	if i < 0 {
		t.Fatalf("session cookie: kid %q is not <master>.<epoch>", h.Kid)
	}
	epoch, err = strconv.ParseInt(h.Kid[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("session cookie: kid %q is not <master>.<epoch>", h.Kid)
	}
	return h.Kid[:i], epoch
}

// percentile is the nearest-rank percentile p (0..100) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// quietLogger discards everything (for the in-test intruder nodes).
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustDecodeB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
