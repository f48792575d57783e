package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `bff demo` as a newcomer would and signs in through its
// provider's form: the README's first command must keep working.
func TestDemo(t *testing.T) {
	bffPort, idpPort, apiPort := freePort(t), freePort(t), freePort(t)
	public := fmt.Sprintf("http://localhost:%d", bffPort)
	// No -public-url: it follows -addr (localhost and its port).
	cmd := exec.Command(bffBinary(t), "demo",
		"-addr", fmt.Sprintf("127.0.0.1:%d", bffPort),
		"-idp-addr", fmt.Sprintf("127.0.0.1:%d", idpPort), "-api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := startProcess(t, cmd, 5*time.Second)
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if b.Len() < 4096 {
				b.WriteString(sc.Text() + "\n")
			}
			if strings.Contains(sc.Text(), "identity provider ready") {
				banner <- b.String()
			}
		}
	}()
	var text string
	select {
	case text = <-banner:
	case <-time.After(20 * time.Second):
		t.Fatal("bff demo did not become ready")
	}
	if p.exited() {
		t.Fatal("bff demo exited")
	}
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
	// Sign in: BFF -> provider -> login form (username/password) -> callback -> page.
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
