package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
)

// need is testsupport.Need for this package's tests.
func need(t *testing.T, tool, debianPackage string) string {
	t.Helper()
	return testsupport.Need(t, "deploy", tool, debianPackage)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// bffBinary builds the bff command once for the package's tests.
func bffBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "bff-deploy-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "bff"), ".")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("deploy: go build: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(buildDir, "bff")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// replaceAll replaces each old string of pairs with its new one, failing when
// an old string is not in s (the file changed under the test).
func replaceAll(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("deploy: %q not found in the file; update the test", pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

const unitExecStart = "ExecStart=/usr/local/bin/bff serve -config /etc/bff/bff.yaml"

func TestDeploySystemdUnit(t *testing.T) {
	unit := readFile(t, "bff.service")

	t.Run("hardening", func(t *testing.T) {
		for _, line := range []string{
			unitExecStart,
			"User=bff",
			"NoNewPrivileges=yes",
			"ProtectSystem=strict",
			"ProtectHome=yes",
			"PrivateTmp=yes",
			"PrivateDevices=yes",
			"ProtectKernelTunables=yes",
			"ProtectKernelModules=yes",
			"ProtectKernelLogs=yes",
			"ProtectControlGroups=yes",
			"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
			"CapabilityBoundingSet=",
			"SystemCallFilter=@system-service",
			"StateDirectory=bff",
			"EnvironmentFile=/etc/bff/env",
			"ExecReload=/bin/kill -HUP $MAINPID",
			"Restart=on-failure",
			"LimitNOFILE=65536",
		} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(unit) {
				t.Errorf("bff.service has no line %q", line)
			}
		}
	})

	// The unit's ExecStart must exist for verify: point it at a fresh build.
	dir := t.TempDir()
	bin := filepath.Join(dir, "bff")
	copyFile(t, bffBinary(t), bin)
	path := filepath.Join(dir, "bff.service")
	local := replaceAll(t, unit, "ExecStart=/usr/local/bin/bff ", "ExecStart="+bin+" ")
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("systemd-analyze_verify", func(t *testing.T) {
		sa := need(t, "systemd-analyze", "systemd")
		out, err := exec.Command(sa, "verify", path).CombinedOutput()
		// verify exits 0 on unknown keys and bad values, only warning: any
		// output is a finding.
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("systemd-analyze_security", func(t *testing.T) {
		sa := need(t, "systemd-analyze", "systemd")
		// Exposure is 0 (locked down) to 10 (unsafe); the threshold is in
		// tenths. 2.0 is well inside "OK".
		out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
		if err != nil && bytes.Contains(out, []byte("unrecognized option")) {
			t.Skipf("systemd-analyze security has no --offline/--threshold before systemd 250: %s", bytes.TrimSpace(out))
		}
		if err != nil {
			m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, out)
			}
			t.Errorf("exposure level %s, want at most 2.0", m[1])
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a fresh self-signed certificate and key (PEM) to the
// two paths.
func selfSigned(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "app.example.com"},
		DNSNames:     []string{"app.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDeployNginx(t *testing.T) {
	conf := readFile(t, "nginx.conf")

	t.Run("directives", func(t *testing.T) {
		for _, re := range []string{
			`large_client_header_buffers\s+4\s+(16|32|64)k;`,
			`proxy_buffer_size\s+(16|32|64)k;`,
			`proxy_buffers\s+\d+\s+(16|32|64)k;`,
			`keepalive\s+\d+;`,
			`proxy_set_header X-Forwarded-For\s`,
			`proxy_set_header X-Forwarded-Proto\s`,
			`proxy_set_header X-Forwarded-Host\s`,
			`proxy_set_header X-Request-Id\s+\$request_id;`,
			`proxy_set_header Upgrade\s+\$http_upgrade;`,
			`map \$http_upgrade \$connection_upgrade`,
			`proxy_buffering off;`,
			`proxy_read_timeout 1h;`,
			`ssl_certificate\s`,
		} {
			if !regexp.MustCompile(re).MatchString(conf) {
				t.Errorf("nginx.conf does not match %s", re)
			}
		}
	})

	t.Run("nginx_-t", func(t *testing.T) {
		nginx := need(t, "nginx", "nginx")
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		selfSigned(t, cert, key)
		local := replaceAll(t, conf,
			"/etc/nginx/tls/app.example.com.crt", cert,
			"/etc/nginx/tls/app.example.com.key", key,
			"/var/log/nginx/", dir+"/",
			"/run/nginx.pid", filepath.Join(dir, "nginx.pid"),
			// Only a root master switches users; as another user nginx
			// warns. The user is a runtime choice, not what is tested.
			"user www-data;", "",
		)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nginx, "-t", "-q", "-e", "stderr", "-c", path).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("[warn]")) || bytes.Contains(out, []byte("[emerg]")) {
			t.Errorf("nginx -t: %v\n%s", err, out)
		}
	})
}

func TestDeployExampleConfig(t *testing.T) {
	bin := bffBinary(t)
	keygen, err := exec.Command(bin, "keygen").Output()
	if err != nil {
		t.Fatalf("bff keygen: %v", err)
	}
	keySecret := strings.TrimSpace(string(keygen))
	const clientSecret = "deploy-test-client-secret-5c1e0a"

	cmd := exec.Command(bin, "check", "-config", "bff.yaml")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BFF_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The snapshot's directory must be writable at start: point it at the
	// test's own, so that the check creates nothing under /var/lib.
	cmd.Env = append(cmd.Env, "BFF_OIDC_CLIENT_SECRET="+clientSecret, "BFF_KEYS_SECRETS="+keySecret,
		"BFF_CLUSTER_SECRET="+keySecret, "BFF_REVOCATION_SNAPSHOT_FILE="+filepath.Join(t.TempDir(), "revoked"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bff check -config bff.yaml: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"config ok", "public URL https://app.example.com", "route /api/ -> ", "cluster: gossip on 0.0.0.0:7946, joining [10.0.0.11:7946 10.0.0.12:7946 10.0.0.13:7946]"} {
		if !strings.Contains(s, want) {
			t.Errorf("bff check output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, clientSecret) || strings.Contains(s, keySecret) {
		t.Errorf("bff check printed a secret")
	}

	t.Run("cluster_matches_nginx", func(t *testing.T) {
		// Every instance nginx balances is in cluster.join (port 7946) and
		// nothing else is: followed literally, logouts reach every instance.
		var hosts, joins []string
		for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([0-9.]+):8080\b`).FindAllStringSubmatch(readFile(t, "nginx.conf"), -1) {
			hosts = append(hosts, m[1]+":7946")
		}
		j := regexp.MustCompile(`(?m)^\s*join:\s*\[([^\]]*)\]`).FindStringSubmatch(readFile(t, "bff.yaml"))
		if j == nil {
			t.Fatal("bff.yaml has no cluster.join")
		}
		for _, e := range strings.Split(j[1], ",") {
			joins = append(joins, strings.Trim(strings.TrimSpace(e), `"`))
		}
		slices.Sort(hosts)
		slices.Sort(joins)
		if len(hosts) != 3 || !slices.Equal(hosts, joins) {
			t.Errorf("nginx balances %v, cluster.join lists %v", hosts, joins)
		}
	})
	t.Run("matches_the_unit", func(t *testing.T) {
		yaml, unit := readFile(t, "bff.yaml"), readFile(t, "bff.service")
		// The snapshot lives in the unit's StateDirectory=bff, the only
		// writable place under ProtectSystem=strict.
		if !strings.Contains(yaml, `snapshot_file: "/var/lib/bff/`) || !strings.Contains(unit, "StateDirectory=bff\n") {
			t.Errorf("revocation.snapshot_file must be under /var/lib/bff (StateDirectory=bff)")
		}
		if !strings.Contains(unit, unitExecStart) {
			t.Errorf("the unit does not run bff serve -config /etc/bff/bff.yaml")
		}
		for _, k := range []string{"client_secret:", "secrets:"} {
			for _, line := range strings.Split(yaml, "\n") {
				l := strings.TrimSpace(line)
				if strings.HasPrefix(l, k) && !strings.HasPrefix(l, "#") {
					t.Errorf("bff.yaml sets %s in the file; secrets belong in /etc/bff/env", k)
				}
			}
		}
	})
}

// TestDeployNginxProxies runs the example nginx in front of a stand-in for
// the BFF: a session of four full cookie chunks reaches it, a response
// setting four chunks comes back (not 400 or 502), the forwarded headers
// are set, and an event stream arrives event by event.
func TestDeployNginxProxies(t *testing.T) {
	nginx := need(t, "nginx", "nginx")
	chunk := func(i int) string { return fmt.Sprintf("__Host-Http-bff.%d=%s", i, strings.Repeat("A", 3980)) }
	var cookie []string
	for i := 0; i < 4; i++ {
		cookie = append(cookie, chunk(i))
	}
	next := make(chan struct{})
	type seen struct {
		cookieLen, xffCount int
		xff, proto, reqID   string
	}
	got := make(chan seen, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{len(r.Header.Get("Cookie")), len(r.Header.Values("X-Forwarded-For")), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Request-Id")}
		if r.URL.Path == "/api/events/x" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 2; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return
				}
			}
			return
		}
		for i := 0; i < 4; i++ {
			w.Header().Add("Set-Cookie", chunk(i)+"; Path=/; Secure; HttpOnly; SameSite=Lax")
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()

	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	selfSigned(t, cert, key)
	port := freePort(t)
	conf := replaceAll(t, readFile(t, "nginx.conf"),
		"/etc/nginx/tls/app.example.com.crt", cert,
		"/etc/nginx/tls/app.example.com.key", key,
		"/var/log/nginx/", dir+"/",
		"/run/nginx.pid", filepath.Join(dir, "nginx.pid"),
		"user www-data;", "",
		"worker_processes auto;", "worker_processes 1;\ndaemon off;",
		"http {\n", "http {\n    client_body_temp_path "+dir+"/body;\n    proxy_temp_path "+dir+"/proxy;\n    fastcgi_temp_path "+dir+"/fcgi;\n    uwsgi_temp_path "+dir+"/uwsgi;\n    scgi_temp_path "+dir+"/scgi;\n",
		"        listen 80;\n        listen [::]:80;\n", fmt.Sprintf("        listen 127.0.0.1:%d;\n", freePort(t)),
		"        listen 443 ssl http2;\n        listen [::]:443 ssl http2;\n", fmt.Sprintf("        listen 127.0.0.1:%d ssl http2;\n", port),
		"server 10.0.0.11:8080", "server "+strings.TrimPrefix(up.URL, "http://"),
		"        server 10.0.0.12:8080 max_fails=3 fail_timeout=10s;\n", "",
		"        server 10.0.0.13:8080 max_fails=3 fail_timeout=10s;\n", "",
	)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	cmd := exec.Command(nginx, "-e", "stderr", "-c", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("nginx output:\n%s", logs.String())
		}
	})

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // a throwaway self-signed certificate on loopback
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
			},
		},
	}
	base := "https://app.example.com"
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/auth/callback", nil)
		req.Header.Set("Cookie", strings.Join(cookie, "; "))
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("X-Request-Id", "spoofed")
		var err error
		if resp, err = client.Do(req); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not answering: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) != 4 {
		t.Fatalf("a four-chunk session through nginx: status %d, %d Set-Cookie, body %.200s", resp.StatusCode, len(resp.Header.Values("Set-Cookie")), body)
	}
	s := <-got
	if s.cookieLen != len(strings.Join(cookie, "; ")) {
		t.Errorf("upstream Cookie header %d bytes, sent %d", s.cookieLen, len(strings.Join(cookie, "; ")))
	}
	if s.xffCount != 1 || s.xff != "127.0.0.1" || s.proto != "https" {
		t.Errorf("X-Forwarded-For %q (%d values), X-Forwarded-Proto %q; want only the client address and https", s.xff, s.xffCount, s.proto)
	}
	if len(s.reqID) != 32 || s.reqID == "spoofed" || resp.Header.Get("X-Request-Id") != s.reqID {
		t.Errorf("X-Request-Id upstream %q, to the client %q; want nginx's own id on both", s.reqID, resp.Header.Get("X-Request-Id"))
	}

	start := time.Now()
	resp, err := client.Get(base + "/api/events/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-got
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 2; i++ {
		line := make(chan string, 1)
		go func() { l, _ := br.ReadString('\n'); br.ReadString('\n'); line <- l }()
		select {
		case l := <-line:
			if l != fmt.Sprintf("data: %d\n", i) {
				t.Fatalf("event %d: %q", i, l)
			}
		case <-time.After(3 * time.Second):
		}
		// The upstream waits up to 5 s for the client to see each event
		// before it sends the next or ends: a buffered stream arrives late.
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("event %d arrived %s after the request: nginx buffers the stream", i, d.Round(time.Millisecond))
		}
		select {
		case next <- struct{}{}:
		case <-time.After(5 * time.Second):
			t.Fatalf("the upstream stopped streaming")
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	return testsupport.FreePort(t)
}
