package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `bff demo` as a newcomer would and signs in through its
// provider's form: the README's first command must keep working.
func TestDemo(t *testing.T) {
	bffPort, idpPort, apiPort := freePort(t), freePort(t), freePort(t)
	public := fmt.Sprintf("http://localhost:%d", bffPort)
	cmd := exec.Command(bffBinary(t), "demo",
		"-addr", fmt.Sprintf("127.0.0.1:%d", bffPort), "-public-url", public,
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
	for _, want := range []string{public + "/", `user "demo", password "demo"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the banner does not say %q:\n%s", want, text)
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
