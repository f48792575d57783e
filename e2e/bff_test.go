package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BFFOptions configures one BFF process. Issuer, ClientSecret and Upstream
// are required; the rest has test defaults.
type BFFOptions struct {
	Port          int           // listen port on 127.0.0.1; 0 picks a free one
	Issuer        string        // the provider's issuer
	ClientID      string        // default "bff"
	ClientSecret  string        // passed as BFF_OIDC_CLIENT_SECRET
	KeySecret     string        // passed as BFF_KEYS_SECRETS; default: random
	Upstream      string        // base URL of the /api/ route's upstream
	Lifetime      time.Duration // session.lifetime, default 1h
	RefreshMargin time.Duration // session.refresh_margin, default 2s
	ExtraEnv      []string      // more KEY=VALUE pairs for the process
	StaticDir     string        // static_dir: the app's files; empty leaves it out
	ExtraRoutes   string        // more items of the routes list, YAML, each line indented by 2
}

// BFF is a running BFF binary.
type BFF struct {
	opts    BFFOptions
	url     string // public URL, http://localhost:PORT
	metrics string // metrics_listen, http://127.0.0.1:PORT
	dir     string // its temporary directory (config, snapshot file)
	logs    *syncBuffer
	proc    *process
	cfgPath string
}

// newKeySecret returns a random master secret of 33 bytes whose standard
// base64 form has no '+', '/' or padding, so it decodes the same with the
// standard, raw and URL-safe alphabets, whichever the BFF expects.
func newKeySecret(t testing.TB) string {
	t.Helper()
	for {
		b := make([]byte, 33)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		s := base64.StdEncoding.EncodeToString(b)
		if !strings.ContainsAny(s, "+/=") {
			return s
		}
	}
}

// startBFF writes the YAML config, starts `bff serve -config file` with the
// secrets in the environment, waits until GET /readyz answers 200 and stops
// the process (SIGTERM, then SIGKILL) when the test ends.
func startBFF(t testing.TB, opts BFFOptions) *BFF {
	t.Helper()
	bin := bffBinary(t)
	if opts.Port == 0 {
		opts.Port = freePort(t)
	}
	if opts.ClientID == "" {
		opts.ClientID = "bff"
	}
	if opts.KeySecret == "" {
		opts.KeySecret = newKeySecret(t)
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = time.Hour
	}
	if opts.RefreshMargin == 0 {
		opts.RefreshMargin = 2 * time.Second
	}
	dir := t.TempDir()
	b := &BFF{
		opts:    opts,
		url:     fmt.Sprintf("http://localhost:%d", opts.Port),
		metrics: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		dir:     dir,
		logs:    &syncBuffer{},
		cfgPath: filepath.Join(dir, "bff.yaml"),
	}
	if err := os.WriteFile(b.cfgPath, []byte(b.configYAML()), 0o600); err != nil {
		t.Fatalf("e2e: write bff config: %v", err)
	}

	cmd := exec.Command(bin, "serve", "-config", b.cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"BFF_OIDC_CLIENT_SECRET="+opts.ClientSecret,
		"BFF_KEYS_SECRETS="+opts.KeySecret,
	)
	cmd.Env = append(cmd.Env, opts.ExtraEnv...)
	cmd.Stdout = b.logs
	cmd.Stderr = b.logs
	b.proc = startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bff logs (last 8 KiB):\n%s", tail(b.logs.String(), 8<<10))
		}
	})

	hc := &http.Client{Timeout: 2 * time.Second}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", opts.Port)
	err := waitFor(b.proc, 20*time.Second, func() bool {
		resp, err := hc.Get(readyz)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		t.Fatalf("e2e: bff not ready: %v\nlogs:\n%.3000s", err, b.logs.String())
	}
	return b
}

// configYAML renders the config file of the contract. Secrets are not in
// it: they come from the environment.
func (b *BFF) configYAML() string {
	q := strconv.Quote
	o := b.opts
	return fmt.Sprintf(`listen: %s
public_url: %s
metrics_listen: %s
oidc:
  issuer: %s
  client_id: %s
  scopes: ["openid", "profile", "email", "offline_access"]
  post_logout_redirect_url: %s
session:
  lifetime: %s
  refresh_margin: %s
keys:
  rotation: "24h"
revocation:
  snapshot_file: %s
routes:
  - path: "/api/"
    upstream: %s
    token: "user"
%slog:
  format: "json"
  access_flush: "0s" # each line at once: the log checks read while the BFF runs
%s`,
		q(fmt.Sprintf("127.0.0.1:%d", o.Port)),
		q(b.url),
		q(strings.TrimPrefix(b.metrics, "http://")),
		q(o.Issuer),
		q(o.ClientID),
		q(b.url+"/"),
		q(o.Lifetime.String()),
		q(o.RefreshMargin.String()),
		q(filepath.Join(b.dir, "revoked.json")),
		q(o.Upstream),
		o.ExtraRoutes,
		staticDirYAML(o.StaticDir),
	)
}

// staticDirYAML is the static_dir line of the config, or nothing when dir
// is empty.
func staticDirYAML(dir string) string {
	if dir == "" {
		return ""
	}
	return "static_dir: " + strconv.Quote(dir) + "\n"
}

// MetricsURL is where the BFF serves its metrics (metrics_listen): never
// on the public listener.
func (b *BFF) MetricsURL() string { return b.metrics }

// URL is the BFF's public URL, http://localhost:PORT (no trailing slash).
func (b *BFF) URL() string { return b.url }

// Logs is everything the BFF wrote on stdout and stderr so far.
func (b *BFF) Logs() string { return b.logs.String() }

// ConfigPath is the YAML file the BFF was started with.
func (b *BFF) ConfigPath() string { return b.cfgPath }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Stack is one provider, one upstream API and one BFF wired together.
type Stack struct {
	IDP      *IDP
	Upstream *Upstream
	BFF      *BFF
}

// StackOptions tunes a stack; the zero value is the default setup.
type StackOptions struct {
	AccessTTL     time.Duration // provider access-token lifetime (default 60s)
	RefreshMargin time.Duration // BFF refresh margin (default 2s)
	StaticDir     string        // BFF static_dir (the app's files); empty: none
}

// startStack starts the provider (registered for the BFF's callback,
// post-logout and back-channel URLs), the upstream and the BFF.
func startStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	idp := startIDP(t, IDPOptions{
		AccessTTL:              opts.AccessTTL,
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		BackchannelLogoutURI:   public + "/auth/backchannel-logout",
	})
	up := startUpstream(t, idp.Issuer(), DefaultAudience)
	bff := startBFF(t, BFFOptions{
		Port:          port,
		Issuer:        idp.Issuer(),
		ClientID:      idp.ClientID(),
		ClientSecret:  idp.ClientSecret(),
		Upstream:      up.URL(),
		RefreshMargin: opts.RefreshMargin,
		StaticDir:     opts.StaticDir,
	})
	return &Stack{IDP: idp, Upstream: up, BFF: bff}
}

// loopbackDialer dials "localhost" as 127.0.0.1, where every test server
// listens, instead of trying ::1 first.
func loopbackDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
}
