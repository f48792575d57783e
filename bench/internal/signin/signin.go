// Package signin signs in through a real provider the way the end-to-end
// tests' Browser does, for the benchmark's programs (bench/cmd/login signs
// in one session, bench/cmd/storm a population): it opens the start URL on
// the relying party (the BFF's /auth/login, or oauth2-proxy's
// /oauth2/start), follows redirects across hosts, fills the provider's
// development login form and submits its consent form, visits the relying
// party's callback, and stops before following the callback's redirect. The
// result is the Cookie header the relying party's host would get.
//
// Its cookie jar is deliberately small: per host name (ports do not separate
// cookies, as in browsers), path-matched, Secure ignored (loopback is a
// secure context), expiry honoured only for deletion. It is for the
// benchmark, not a browser model (e2e/jar_test.go is that).
package signin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bff-project/bff/internal/htmlform"
)

// Result is one sign-in.
type Result struct {
	// Header is the Cookie header for the relying party's host (its
	// cookies whose name starts with the prefix), "name=value; ...".
	Header string
	// CallbackSent is when the request to the relying party's callback
	// was sent, and Done when its answer arrived: the relying party
	// redeemed the code, and so got the session's first tokens, in
	// between.
	CallbackSent, Done time.Time
}

// NewClient is the HTTP client a sign-in needs: redirects not followed
// (Login follows them itself, carrying its own cookies), 15 s per request,
// and "localhost" dialled as 127.0.0.1. One client may serve many sign-ins
// at once; each keeps its own cookies.
func NewClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Login signs in once, starting at start on the relying party, as user with
// pass at the provider's form; callbackPath is the relying party's
// callback path. The Cookie header holds the relying party's cookies whose
// name starts with prefix. Errors start with "login: ".
func Login(client *http.Client, start, callbackPath, user, pass, prefix string) (Result, error) {
	rp, err := url.Parse(start)
	if err != nil {
		return Result{}, fmt.Errorf("login: -start: %w", err)
	}
	j := jar{}
	cur, method, form := rp, http.MethodGet, url.Values(nil)
	var prev *url.URL
	var res Result
	sawCallback := false
	for step := 0; step < 30; step++ {
		if sawCallback && cur.Host == rp.Host {
			res.Header = j.header(rp, prefix)
			return res, nil
		}
		atCallback := cur.Host == rp.Host && cur.Path == callbackPath
		if atCallback {
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
			return Result{}, fmt.Errorf("login: %w", err)
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
		if atCallback {
			res.CallbackSent = time.Now()
		}
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error // its message repeats the URL, which may hold a code
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return Result{}, fmt.Errorf("login: %s %s%s: %w", method, cur.Host, cur.Path, err)
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if atCallback {
			res.Done = time.Now()
		}
		j.store(cur, resp.Cookies())
		if prev == nil {
			prev = cur
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			next, err := cur.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				return Result{}, fmt.Errorf("login: %d from %s%s without a usable Location", resp.StatusCode, cur.Host, cur.Path)
			}
			prev, cur, method, form = cur, next, http.MethodGet, nil
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return Result{}, fmt.Errorf("login: %s %s%s: status %d", method, cur.Host, cur.Path, resp.StatusCode)
		}
		pf, ok := htmlform.First(page)
		action, fields := pf.Action, pf.Fields
		if !ok {
			return Result{}, fmt.Errorf("login: %s%s: no form in the page", cur.Host, cur.Path)
		}
		next, err := cur.Parse(action)
		if err != nil {
			return Result{}, fmt.Errorf("login: bad form action: %w", err)
		}
		if fields.Has("login") {
			fields.Set("login", user)
		}
		if fields.Has("password") {
			fields.Set("password", pass)
		}
		prev, cur, method, form = cur, next, http.MethodPost, fields
	}
	return Result{}, errors.New("login: more than 30 steps")
}

type cookie struct{ name, path, value string }

// jar maps a host name to its cookies, in creation order.
type jar map[string][]cookie

func (j jar) store(u *url.URL, set []*http.Cookie) {
	host := u.Hostname()
	for _, c := range set {
		path := CookiePath(c)
		kept := slices.DeleteFunc(j[host], func(k cookie) bool { return k.name == c.Name && k.path == path })
		if !Expired(c, time.Now()) {
			kept = append(kept, cookie{name: c.Name, path: path, value: c.Value})
		}
		j[host] = kept
	}
}

func (j jar) header(u *url.URL, prefix string) string {
	var parts []string
	for _, c := range j[u.Hostname()] {
		if !strings.HasPrefix(c.name, prefix) || !PathMatch(u.Path, c.path) {
			continue
		}
		parts = append(parts, c.name+"="+c.value)
	}
	return strings.Join(parts, "; ")
}

// CookiePath is the path a cookie is stored under: its Path attribute, or
// "/" without a usable one (the jar's simplification of RFC 6265's default
// path).
func CookiePath(c *http.Cookie) string {
	if c.Path == "" || c.Path[0] != '/' {
		return "/"
	}
	return c.Path
}

// Expired reports whether a Set-Cookie deletes its cookie: Max-Age 0 or
// negative (net/http reads both as MaxAge < 0), or Expires in the past.
func Expired(c *http.Cookie, now time.Time) bool {
	return c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(now))
}

// PathMatch is RFC 6265 section 5.1.4.
func PathMatch(reqPath, cookiePath string) bool {
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
