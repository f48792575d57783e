// Command login signs in through a real provider the way the end-to-end
// tests' Browser does: it opens -start on the relying party (the BFF's
// /auth/login, or oauth2-proxy's /oauth2/start), follows redirects across
// hosts, fills the provider's development login form (-user / -password) and
// submits its consent form, visits the relying party's callback, and stops
// before following the callback's redirect. It then writes the Cookie header
// the relying party's host would get (cookies whose name starts with
// -cookie-prefix) to -out, mode 0600, and nothing to stdout.
//
// Its cookie jar is deliberately small: per host name (ports do not separate
// cookies, as in browsers), path-matched, Secure ignored (loopback is a
// secure context), expiry honoured only for deletion. It is for the
// benchmark, not a browser model (e2e/jar_test.go is that).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bff-project/bff/internal/htmlform"
)

func main() {
	start := flag.String("start", "", "sign-in URL on the relying party, e.g. http://localhost:8080/auth/login?returnTo=/ (required)")
	callback := flag.String("callback-path", "/auth/callback", "the relying party's callback path")
	user := flag.String("user", "bench-user", "login for the provider's form")
	pass := flag.String("password", "bench-password", "password for the provider's form")
	prefix := flag.String("cookie-prefix", "", "only write the relying party's cookies whose name starts with this")
	out := flag.String("out", "", "file for the Cookie header (required)")
	flag.Parse()
	if *start == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "login: -start and -out are required")
		os.Exit(2)
	}
	header, err := login(*start, *callback, *user, *pass, *prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, []byte(header+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}
}

func login(start, callbackPath, user, pass, prefix string) (string, error) {
	rp, err := url.Parse(start)
	if err != nil {
		return "", fmt.Errorf("login: -start: %w", err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	j := jar{}
	cur, method, form := rp, http.MethodGet, url.Values(nil)
	var prev *url.URL
	sawCallback := false
	for step := 0; step < 30; step++ {
		if sawCallback && cur.Host == rp.Host {
			return j.header(rp, prefix), nil
		}
		if cur.Host == rp.Host && cur.Path == callbackPath {
			sawCallback = true
		}
		site := "cross-site"
		switch {
		case prev == nil:
			site = "none"
		case prev.Scheme+"://"+prev.Hostname() == cur.Scheme+"://"+cur.Hostname() && !sawCallback:
			site = "same-origin"
		}
		req, err := http.NewRequest(method, cur.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", fmt.Errorf("login: %w", err)
		}
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "document")
		req.Header.Set("Sec-Fetch-Site", site)
		req.Header.Set("Accept", "text/html")
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", prev.Scheme+"://"+prev.Host)
		}
		if c := j.header(cur, ""); c != "" {
			req.Header.Set("Cookie", c)
		}
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error // its message repeats the URL, which may hold a code
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", fmt.Errorf("login: %s %s%s: %w", method, cur.Host, cur.Path, err)
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		j.store(cur, resp.Cookies())
		if prev == nil {
			prev = cur
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			next, err := cur.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				return "", fmt.Errorf("login: %d from %s%s without a usable Location", resp.StatusCode, cur.Host, cur.Path)
			}
			prev, cur, method, form = cur, next, http.MethodGet, nil
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("login: %s %s%s: status %d", method, cur.Host, cur.Path, resp.StatusCode)
		}
		pf, ok := htmlform.First(page)
		action, fields := pf.Action, pf.Fields
		if !ok {
			return "", fmt.Errorf("login: %s%s: no form in the page", cur.Host, cur.Path)
		}
		next, err := cur.Parse(action)
		if err != nil {
			return "", fmt.Errorf("login: bad form action: %w", err)
		}
		if fields.Has("login") {
			fields.Set("login", user)
		}
		if fields.Has("password") {
			fields.Set("password", pass)
		}
		prev, cur, method, form = cur, next, http.MethodPost, fields
	}
	return "", errors.New("login: more than 30 steps")
}

type cookie struct{ name, path, value string }

// jar maps a host name to its cookies, in creation order.
type jar map[string][]cookie

func (j jar) store(u *url.URL, set []*http.Cookie) {
	host := u.Hostname()
	for _, c := range set {
		path := c.Path
		if path == "" || path[0] != '/' {
			path = "/"
		}
		kept := slices.DeleteFunc(j[host], func(k cookie) bool { return k.name == c.Name && k.path == path })
		expired := c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now()))
		if !expired {
			kept = append(kept, cookie{name: c.Name, path: path, value: c.Value})
		}
		j[host] = kept
	}
}

func (j jar) header(u *url.URL, prefix string) string {
	var parts []string
	for _, c := range j[u.Hostname()] {
		if !strings.HasPrefix(c.name, prefix) || !pathMatch(u.Path, c.path) {
			continue
		}
		parts = append(parts, c.name+"="+c.value)
	}
	return strings.Join(parts, "; ")
}

// pathMatch is RFC 6265 section 5.1.4.
func pathMatch(reqPath, cookiePath string) bool {
	if reqPath == "" {
		reqPath = "/"
	}
	if reqPath == cookiePath {
		return true
	}
	if !strings.HasPrefix(reqPath, cookiePath) {
		return false
	}
	return strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'
}
