package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interop matrix: the same lifecycle (interop_test.go) against identity
// providers nobody on this project wrote. Each provider has a starter
// (interop_<name>_test.go) that returns an opProvider: where it is, how to get
// through its login and consent pages, how the test API checks its access
// tokens, and what it lacks. Go-built providers come from the module proxy,
// pinned in e2e/providers/<name>/go.mod and built (once, cached) by
// e2e/providers/build.sh.

// opURLs are the BFF's URLs a provider must register for the client.
type opURLs struct {
	Public      string // the BFF's public URL, http://localhost:PORT
	Callback    string // Public + /auth/callback
	PostLogout  string // Public + "/"
	Backchannel string // Public + /auth/backchannel-logout
}

func newOpURLs(port int) opURLs {
	pub := fmt.Sprintf("http://localhost:%d", port)
	return opURLs{Public: pub, Callback: pub + "/auth/callback", PostLogout: pub + "/", Backchannel: pub + "/auth/backchannel-logout"}
}

// opProvider is one running provider of the matrix.
type opProvider struct {
	Name         string
	Issuer       string   // as the BFF and the browser reach it: through Gate
	Direct       string   // base URL of the provider itself, bypassing Gate (for the test API and admin calls)
	Gate         *tcpGate // between the provider and everyone else: Down/Up simulate an outage
	ClientID     string
	ClientSecret string
	AuthMethod   string   // oidc.auth_method for the BFF; "" lets the BFF choose from discovery
	Scopes       []string // oidc.scopes; nil means openid profile email offline_access
	UserInfo     bool     // oidc.userinfo: fetch userinfo claims at sign-in
	AccessTTL    time.Duration
	User         string // the test user's login name
	Password     string
	// Claims are claims /auth/user must show, with their values; with
	// UserInfo, include at least one that only userinfo returns.
	Claims map[string]string
	// Fill fills the form of a login, account-selection or consent page the
	// provider showed at page. deny asks for the refusing choice on a
	// consent page. It returns the form to submit, or a link to follow
	// (fields nil).
	Fill func(t *testing.T, page *url.URL, body []byte, deny bool) (action *url.URL, fields url.Values)
	// Validate is how the test API checks a bearer token with the provider
	// (userinfo, introspection or JWKS), reaching it through Direct so an
	// outage at the gate does not stop the check. It returns the subject.
	Validate func(ctx context.Context, bearer string) (sub string, err error)
	// ProviderLogout signs br out at the provider itself, as the user would
	// in another app (so a provider with back-channel logout tells the
	// BFF). nil when the provider has no such logout (Lacks[stepBackchannel]).
	ProviderLogout func(t *testing.T, br *Browser)
	// Lacks names the lifecycle steps this provider cannot do, with why:
	// those steps are reported as skips with that reason.
	Lacks map[string]string
	// Logs is the provider's output, printed when a test fails.
	Logs *syncBuffer
}

// Lifecycle step names, for opProvider.Lacks.
const (
	stepReadiness    = "readiness"
	stepUserInfo     = "userinfo"
	stepRotation     = "rotation"      // refresh tokens rotate, so a replayed old cookie ends cleanly
	stepExpiry       = "expiry"        // access tokens short enough to wait for their expiry
	stepEndSession   = "end_session"   // RP-initiated logout
	stepRevocation   = "revocation"    // RFC 7009 refresh-token revocation at logout
	stepBackchannel  = "backchannel"   // back-channel logout
	stepDenyConsent  = "deny_consent"  // the user refuses on a consent page
	stepClientMethod = "client_method" // client registered for client_secret_post
)

// lacks skips t when p cannot do step, with the provider's reason.
func (p *opProvider) lacks(t *testing.T, step string) bool {
	t.Helper()
	if why, ok := p.Lacks[step]; ok {
		t.Skipf("%s cannot do %s: %s", p.Name, step, why)
		return true
	}
	return false
}

// discoveryOf reads the provider's discovery document from Direct.
func discoveryOf(ctx context.Context, direct string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, direct+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: status %d", resp.StatusCode)
	}
	var doc map[string]any
	return doc, json.NewDecoder(resp.Body).Decode(&doc)
}

// viaDirect rewrites an endpoint URL the provider advertised (on the gate's
// host) to the provider's own address.
func viaDirect(endpoint, direct string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	d, err := url.Parse(direct)
	if err != nil {
		return "", err
	}
	u.Scheme, u.Host = d.Scheme, d.Host
	return u.String(), nil
}

// userinfoValidator checks a bearer token by calling the provider's
// userinfo endpoint (found by discovery, reached through direct): 200 with
// a sub means the provider accepts the token.
func userinfoValidator(direct string) func(ctx context.Context, bearer string) (string, error) {
	var mu sync.Mutex
	var found string
	return func(ctx context.Context, bearer string) (string, error) {
		mu.Lock()
		endpoint := found
		mu.Unlock()
		if endpoint == "" {
			doc, err := discoveryOf(ctx, direct)
			if err != nil {
				return "", err
			}
			ep, _ := doc["userinfo_endpoint"].(string)
			if ep == "" {
				return "", errors.New("no userinfo_endpoint in discovery")
			}
			if endpoint, err = viaDirect(ep, direct); err != nil {
				return "", err
			}
			mu.Lock()
			found = endpoint
			mu.Unlock()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("userinfo answered %d", resp.StatusCode)
		}
		var claims struct {
			Sub string `json:"sub"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil || claims.Sub == "" {
			return "", errors.New("userinfo answer without sub")
		}
		return claims.Sub, nil
	}
}

// opAPI is the test API behind the BFF: every request must carry a bearer
// token that the provider accepts (op.Validate); it answers {"sub": ...}.
type opAPI struct {
	srv *httptest.Server

	mu      sync.Mutex
	bearers []string // distinct accepted tokens, oldest first; never logged
	calls   int
}

func startOpAPI(t testing.TB, op *opProvider) *opAPI {
	t.Helper()
	a := &opAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.calls++
		a.mu.Unlock()
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || bearer == "" {
			http.Error(w, `{"error":"no bearer"}`, http.StatusUnauthorized)
			return
		}
		sub, err := op.Validate(r.Context(), bearer)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "why": err.Error()})
			return
		}
		a.mu.Lock()
		if n := len(a.bearers); n == 0 || a.bearers[n-1] != bearer {
			a.bearers = append(a.bearers, bearer)
		}
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"sub": sub, "path": r.URL.Path})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// Bearers returns how many distinct access tokens the API accepted so far.
func (a *opAPI) Bearers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.bearers...)
}

// interopBFFOptions tunes the BFF of an interop run.
type interopBFFOptions struct {
	RefreshMargin  time.Duration // default: AccessTTL - 2s (refresh soon after sign-in)
	SuccessorGrace time.Duration // default 1s
	AuthMethod     *string       // overrides op.AuthMethod when not nil
}

// startInteropBFF starts the BFF for op on port (the one op registered)
// with the test API as its /api/ route. It waits for /healthz only: the
// readiness step starts it while the provider is down.
func startInteropBFF(t *testing.T, op *opProvider, port int, api *opAPI, o interopBFFOptions) *BFF {
	t.Helper()
	if o.RefreshMargin == 0 {
		o.RefreshMargin = op.AccessTTL - 2*time.Second
	}
	if o.SuccessorGrace == 0 {
		o.SuccessorGrace = time.Second
	}
	method := op.AuthMethod
	if o.AuthMethod != nil {
		method = *o.AuthMethod
	}
	scopes := op.Scopes
	if scopes == nil {
		scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	quoted := make([]string, len(scopes))
	for i, s := range scopes {
		quoted[i] = strconv.Quote(s)
	}
	dir := t.TempDir()
	b := &BFF{
		opts: BFFOptions{Port: port, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
			KeySecret: newKeySecret(t), Upstream: api.srv.URL, RefreshMargin: o.RefreshMargin, Lifetime: time.Hour},
		url:     fmt.Sprintf("http://localhost:%d", port),
		metrics: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		dir:     dir,
		logs:    &syncBuffer{},
		cfgPath: filepath.Join(dir, "bff.yaml"),
	}
	q := strconv.Quote
	cfg := fmt.Sprintf(`listen: %s
public_url: %s
metrics_listen: %s
oidc:
  issuer: %s
  client_id: %s
  auth_method: %s
  scopes: [%s]
  userinfo: %t
  post_logout_redirect_url: %s
session:
  lifetime: "1h"
  refresh_margin: %s
  successor_grace: %s
keys:
  rotation: "24h"
revocation:
  snapshot_file: %s
routes:
  - path: "/api/"
    upstream: %s
    token: "user"
log:
  format: "json"
  access_flush: "0s"
`, q(fmt.Sprintf("127.0.0.1:%d", port)), q(b.url), q(strings.TrimPrefix(b.metrics, "http://")),
		q(op.Issuer), q(op.ClientID), q(method), strings.Join(quoted, ", "), op.UserInfo, q(b.url+"/"),
		q(o.RefreshMargin.String()), q(o.SuccessorGrace.String()), q(filepath.Join(dir, "revoked")), q(api.srv.URL))
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bffBinary(t), "serve", "-config", b.cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET="+op.ClientSecret, "BFF_KEYS_SECRETS="+b.opts.KeySecret)
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	b.proc = startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bff logs (last 8 KiB):\n%s", tail(b.logs.String(), 8<<10))
			if op.Logs != nil {
				t.Logf("%s logs (last 8 KiB):\n%s", op.Name, tail(op.Logs.String(), 8<<10))
			}
		}
	})
	waitHTTP(t, b.proc, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), 20*time.Second, b.logs)
	return b
}

// waitReady polls the BFF's /readyz until it answers want or timeout passes.
func waitReadyz(t *testing.T, b *BFF, want int, timeout time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := 0
	for time.Now().Before(deadline) {
		resp, err := hc.Get(strings.Replace(b.url, "localhost", "127.0.0.1", 1) + "/readyz")
		if err == nil {
			resp.Body.Close()
			last = resp.StatusCode
			if last == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("e2e: /readyz answered %d, want %d within %s", last, want, timeout)
}

// opAuthorize walks from the provider URL the BFF redirected to, through
// the provider's pages (op.Fill fills each form), until the provider sends
// the browser to the BFF's callback; it returns that URL unvisited.
func opAuthorize(t *testing.T, br *Browser, op *opProvider, start *url.URL, bffURL string, deny bool) *url.URL {
	t.Helper()
	bff, err := url.Parse(bffURL)
	if err != nil {
		t.Fatal(err)
	}
	cur, method, form := start, http.MethodGet, url.Values(nil)
	prev := start
	site := "cross-site"
	for step := 0; step < 30; step++ {
		if cur.Host == bff.Host && cur.Path == "/auth/callback" {
			br.remember(cur)
			return cur
		}
		resp := br.navigate(t, method, cur, form, site, prev)
		if resp.Status >= 300 && resp.Status < 400 {
			next, ok := resp.Location()
			if !ok {
				t.Fatalf("e2e: %s: %d from %s without Location", op.Name, resp.Status, redactURL(cur.String()))
			}
			if siteOf(next) != siteOf(cur) {
				site = "cross-site"
			}
			cur, method, form = next, http.MethodGet, nil
			continue
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("e2e: %s: %s %s: status %d: %.600s", op.Name, method, redactURL(cur.String()), resp.Status, resp.Body)
		}
		action, fields := op.Fill(t, cur, resp.Body, deny)
		prev, site = cur, "same-origin"
		if siteOf(action) != siteOf(cur) {
			site = "cross-site"
		}
		method = http.MethodPost
		if fields == nil { // a link, not a form (e.g. "Cancel")
			method = http.MethodGet
		}
		cur, form = action, fields
	}
	t.Fatalf("e2e: %s: more than 30 steps to the callback", op.Name)
	return nil
}

// opSignIn signs br in at b through op's real pages and returns the
// callback's response (a redirect into the app on success).
func opSignIn(t *testing.T, br *Browser, b *BFF, op *opProvider, deny bool) *Response {
	t.Helper()
	start := br.StartLogin(t, b.URL(), "/")
	cb := opAuthorize(t, br, op, start, b.URL(), deny)
	return br.navigate(t, http.MethodGet, cb, nil, "cross-site", cb)
}

// interopStarter starts one provider (variant) of the matrix for a BFF at
// urls.
type interopStarter struct {
	name  string
	start func(t *testing.T, urls opURLs) *opProvider
}

// interopStarters is the matrix's rows; each interop_<name>_test.go adds
// its own in an init function.
var interopStarters []interopStarter
