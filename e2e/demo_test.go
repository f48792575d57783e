package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs `bff demo` as a newcomer would and signs in through its
// provider's form: the README's first command must keep working.
func TestDemo(t *testing.T) {
	// No -public-url: it follows -addr (localhost and its port).
	public, bffPort, idpPort, text := startDemo(t)
	for _, want := range []string{public + "/", `user "demo", password "demo"`, `client_id "bff-demo"`,
		"redirect URI " + public + "/auth/callback", "post-logout redirect URI " + public + "/"} {
		if !strings.Contains(text, want) {
			t.Errorf("the banner does not say %q:\n%s", want, text)
		}
	}
	// The printed client secret is the provider's: its revocation endpoint
	// authenticates the client with it (a wrong one is the control).
	m := regexp.MustCompile(`client_secret "([^"]+)"`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the banner prints no client secret:\n%s", text)
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%d", idpPort)
	for secret, want := range map[string]int{m[1]: http.StatusOK, m[1] + "x": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodPost, issuer+"/revoke", strings.NewReader("token=unknown-token"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bff-demo", url.QueryEscape(secret)) // RFC 6749 2.3.1: form-encoded first
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("revocation with the printed secret%s: status %d, want %d", map[bool]string{true: "", false: " altered"}[secret == m[1]], resp.StatusCode, want)
		}
	}

	b := newBrowser(t)
	// The sample page.
	if r := b.Get(t, public+"/", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `id="login"`) {
		t.Fatalf("sample page: %d", r.Status)
	}
	demoSignIn(t, b, public, bffPort)
	api := map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}
	r := b.Get(t, public+"/auth/user", api)
	var user struct {
		Sub    string         `json:"sub"`
		Claims map[string]any `json:"claims"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &user) != nil || user.Claims["name"] == nil {
		t.Fatalf("/auth/user: %d %s", r.Status, r.Body)
	}
	r = b.Get(t, public+"/api/whoami", api)
	var who struct {
		Sub string `json:"sub"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &who) != nil || who.Sub != user.Sub {
		t.Fatalf("/api/whoami through the proxy: %d %s", r.Status, r.Body)
	}
	r = b.Post(t, public+"/auth/logout", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin", "Origin": public}, "")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "logout_url") {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := b.Get(t, public+"/auth/user", api); r.Status != http.StatusUnauthorized {
		t.Errorf("after logout /auth/user: %d, want 401", r.Status)
	}
}

// demoSignIn signs b in at the demo BFF on public: BFF -> provider -> login
// form (username/password) -> callback -> page.
func demoSignIn(t *testing.T, b *Browser, public string, bffPort int) {
	t.Helper()
	cur, _ := url.Parse(public + "/auth/login?returnTo=/")
	method, form := http.MethodGet, url.Values(nil)
	for step := 0; ; step++ {
		if step > 15 {
			t.Fatal("sign-in did not finish in 15 steps")
		}
		if cur.Host == fmt.Sprintf("localhost:%d", bffPort) && cur.Path == "/" {
			break
		}
		var r *Response
		if method == http.MethodPost {
			r = b.Post(t, cur.String(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
		} else {
			r = b.Get(t, cur.String(), nil)
		}
		if loc, ok := r.Location(); ok && r.Status >= 300 && r.Status < 400 {
			cur, method, form = loc, http.MethodGet, nil
			continue
		}
		f, ok := parseForm(r.Body)
		if r.Status != http.StatusOK || !ok {
			t.Fatalf("sign-in step %d at %s: status %d, form %v", step, redactURL(cur.String()), r.Status, ok)
		}
		f.fields.Set("username", "demo")
		f.fields.Set("password", "demo")
		next, err := cur.Parse(f.action)
		if err != nil {
			t.Fatal(err)
		}
		cur, method, form = next, http.MethodPost, f.fields
	}
}

// startDemo runs `bff demo` with args on free ports and returns its public
// URL, its port, the provider's port and the banner once it is ready.
func startDemo(t *testing.T, args ...string) (public string, bffPort, idpPort int, banner string) {
	t.Helper()
	bffPort, idpPort, apiPort := freePort(t), freePort(t), freePort(t)
	public = fmt.Sprintf("http://localhost:%d", bffPort)
	cmd := exec.Command(bffBinary(t), append([]string{"demo",
		"-addr", fmt.Sprintf("127.0.0.1:%d", bffPort),
		"-idp-addr", fmt.Sprintf("127.0.0.1:%d", idpPort), "-api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort)}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := startProcess(t, cmd, 5*time.Second)
	ready := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if b.Len() < 4096 {
				b.WriteString(sc.Text() + "\n")
			}
			if strings.Contains(sc.Text(), "identity provider ready") {
				ready <- b.String()
			}
		}
	}()
	select {
	case banner = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("bff demo did not become ready")
	}
	if p.exited() {
		t.Fatal("bff demo exited")
	}
	return public, bffPort, idpPort, banner
}

// TestDemoOwnApp: `bff demo -static-dir DIR -route PREFIX=URL` puts a
// user's own built app and API behind the BFF with the demo provider: the
// page is theirs, the sample API is not started, and their API receives the
// signed-in user's access token (and nothing without a session).
func TestDemoOwnApp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>my app</title><p id=mine>my own app</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+strings.SplitN(r.Header.Get("Authorization"), " ", 2)[0])
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	public, bffPort, _, banner := startDemo(t, "-static-dir", dir, "-route", "/myapi/="+up.URL)
	if !strings.Contains(banner, "/myapi/ -> "+up.URL) {
		t.Errorf("the banner does not name the route:\n%s", banner)
	}
	b := newBrowser(t)
	if r := b.Get(t, public+"/", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "my own app") {
		t.Fatalf("/: %d %.200s, want the app's own index.html", r.Status, r.Body)
	}
	api := map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}
	if r := b.Get(t, public+"/myapi/orders", api); r.Status != http.StatusUnauthorized {
		t.Errorf("/myapi/ before sign-in: %d, want 401", r.Status)
	}
	if r := b.Get(t, public+"/api/whoami", api); r.Status != http.StatusNotFound {
		t.Errorf("the sample API route with -route given: %d, want 404", r.Status)
	}
	demoSignIn(t, b, public, bffPort)
	if r := b.Get(t, public+"/myapi/orders", api); r.Status != http.StatusOK {
		t.Fatalf("/myapi/orders after sign-in: %d %s", r.Status, r.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "/myapi/orders Bearer" {
		t.Errorf("the API saw %q, want one call with a bearer token", seen)
	}
}
