package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/htmlform"
)

// Browser is a browser-like HTTP client: no automatic redirects, its own
// cookie jar (see cookieJar), and Sec-Fetch-* / Origin headers like a
// browser sends them for navigations and same-origin fetch() calls.
type Browser struct {
	client *http.Client
	jar    *cookieJar

	mu     sync.Mutex
	codes  []string // authorization codes seen in redirects
	states []string // state and nonce values seen in authorization requests
}

// Response is one HTTP exchange as the test sees it.
type Response struct {
	URL        *url.URL
	Status     int
	Header     http.Header
	Body       []byte
	SetCookies []*http.Cookie
}

// Location resolves the Location header against the request URL.
func (r *Response) Location() (*url.URL, bool) {
	loc := r.Header.Get("Location")
	if loc == "" {
		return nil, false
	}
	u, err := r.URL.Parse(loc)
	if err != nil {
		return nil, false
	}
	return u, true
}

// SetCookie returns the Set-Cookie of the response for name.
func (r *Response) SetCookie(name string) (*http.Cookie, bool) {
	for _, c := range r.SetCookies {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

func newBrowser(t testing.TB) *Browser {
	t.Helper()
	b := &Browser{
		client: &http.Client{
			Transport: &http.Transport{DialContext: loopbackDialer(), MaxIdleConnsPerHost: 4},
			Timeout:   15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		jar: newCookieJar(),
	}
	t.Cleanup(b.client.CloseIdleConnections)
	return b
}

// do sends one request with the jar's cookies and stores the answer's.
// headers with an empty value are removed instead of sent.
func (b *Browser) do(t testing.TB, method, rawURL string, headers map[string]string, body io.Reader) *Response {
	t.Helper()
	r, err := b.send(method, rawURL, headers, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do without a testing.TB, for use from other goroutines.
func (b *Browser) send(method, rawURL string, headers map[string]string, body io.Reader) (*Response, error) {
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		return nil, fmt.Errorf("e2e: browser: %s %s: %w", method, redactURL(rawURL), err)
	}
	if c := b.jar.header(req.URL); c != "" {
		req.Header.Set("Cookie", c)
	}
	req.Header.Set("User-Agent", "bff-e2e-browser/1")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error // its message repeats the URL, query (code) included
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("e2e: browser: %s %s: %w", method, redactURL(rawURL), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("e2e: browser: read %s: %w", redactURL(rawURL), err)
	}
	b.jar.setCookies(req.URL, resp.Header)
	return &Response{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: data, SetCookies: resp.Cookies()}, nil
}

// fetchHeaders are what a browser adds to a same-origin fetch() from the app.
func fetchHeaders(method, rawURL string, extra map[string]string) map[string]string {
	h := map[string]string{
		"Sec-Fetch-Site": "same-origin",
		"Sec-Fetch-Mode": "cors",
		"Sec-Fetch-Dest": "empty",
		"Accept":         "application/json",
	}
	if method != http.MethodGet && method != http.MethodHead {
		if u, err := url.Parse(rawURL); err == nil {
			h["Origin"] = u.Scheme + "://" + u.Host
		}
	}
	for k, v := range extra {
		h[http.CanonicalHeaderKey(k)] = v
	}
	return h
}

// Get is a same-origin fetch() GET. headers override the defaults; an empty
// value removes a default header.
func (b *Browser) Get(t testing.TB, rawURL string, headers map[string]string) *Response {
	t.Helper()
	return b.do(t, http.MethodGet, rawURL, fetchHeaders(http.MethodGet, rawURL, headers), nil)
}

// Post is a same-origin fetch() POST with an optional body (sent as JSON
// unless headers set a Content-Type).
func (b *Browser) Post(t testing.TB, rawURL string, headers map[string]string, body string) *Response {
	t.Helper()
	h := fetchHeaders(http.MethodPost, rawURL, headers)
	if _, ok := h["Content-Type"]; !ok && body != "" {
		h["Content-Type"] = "application/json"
	}
	return b.do(t, http.MethodPost, rawURL, h, strings.NewReader(body))
}

// Do is a same-origin fetch() with any method.
func (b *Browser) Do(t testing.TB, method, rawURL string, headers map[string]string, body string) *Response {
	t.Helper()
	return b.do(t, method, rawURL, fetchHeaders(method, rawURL, headers), strings.NewReader(body))
}

// CookieNames lists the cookies stored for a host name (no port).
func (b *Browser) CookieNames(host string) []string { return b.jar.names(host) }

// CookieValue returns a stored cookie's value.
func (b *Browser) CookieValue(host, name string) (string, bool) { return b.jar.value(host, name) }

// Snapshot freezes the jar; Restore puts a snapshot back (in this or
// another Browser), e.g. to replay a cookie copied before logout.
func (b *Browser) Snapshot() JarSnapshot { return b.jar.snapshot() }
func (b *Browser) Restore(s JarSnapshot) { b.jar.restore(s) }

// RejectedCookies lists Set-Cookie headers the jar refused, as a browser
// would have (bad prefix attributes, Secure from an insecure origin, ...).
func (b *Browser) RejectedCookies() []string { return b.jar.rejections() }

// Codes returns every authorization code this browser carried.
func (b *Browser) Codes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.codes)
}

// States returns every state and nonce this browser saw in authorization
// requests.
func (b *Browser) States() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.states)
}

func (b *Browser) remember(u *url.URL) {
	q := u.Query()
	b.mu.Lock()
	defer b.mu.Unlock()
	if v := q.Get("code"); v != "" && !slices.Contains(b.codes, v) {
		b.codes = append(b.codes, v)
	}
	for _, k := range []string{"state", "nonce"} {
		if v := q.Get(k); v != "" && !slices.Contains(b.states, v) {
			b.states = append(b.states, v)
		}
	}
}

// siteOf is the registrable "site" for Sec-Fetch-Site: on loopback the
// host name itself (localhost and 127.0.0.1 are different sites).
func siteOf(u *url.URL) string { return u.Scheme + "://" + u.Hostname() }

// navigate performs one top-level navigation step (GET or form POST).
func (b *Browser) navigate(t testing.TB, method string, u *url.URL, form url.Values, fetchSite string, from *url.URL) *Response {
	t.Helper()
	h := map[string]string{
		"Sec-Fetch-Mode": "navigate",
		"Sec-Fetch-Dest": "document",
		"Sec-Fetch-Site": fetchSite,
		"Accept":         "text/html,application/xhtml+xml",
	}
	var body io.Reader
	if method == http.MethodPost {
		h["Content-Type"] = "application/x-www-form-urlencoded"
		h["Origin"] = from.Scheme + "://" + from.Host
		body = strings.NewReader(form.Encode())
	}
	b.remember(u)
	return b.do(t, method, u.String(), h, body)
}

// Authorize walks a login from start: it follows redirects across hosts,
// fills the provider's development login form (login/password) and submits
// its consent form, until the next URL to visit satisfies stop. That URL is
// returned without being visited.
func (b *Browser) Authorize(t testing.TB, start string, user, pass string, stop func(*url.URL) bool) *url.URL {
	t.Helper()
	cur, err := url.Parse(start)
	if err != nil {
		t.Fatalf("e2e: authorize: %v", err)
	}
	method, form := http.MethodGet, url.Values(nil)
	var prev *url.URL // page the navigation started from
	crossSite := false
	for step := 0; step < 30; step++ {
		if stop(cur) {
			b.remember(cur)
			return cur
		}
		site := "same-origin"
		switch {
		case prev == nil:
			site = "none"
		case crossSite || siteOf(prev) != siteOf(cur):
			site = "cross-site"
			crossSite = true
		}
		resp := b.navigate(t, method, cur, form, site, prev)
		if prev == nil {
			prev = cur
		}
		if resp.Status >= 300 && resp.Status < 400 {
			next, ok := resp.Location()
			if !ok {
				t.Fatalf("e2e: authorize: %d from %s without Location", resp.Status, redactURL(cur.String()))
			}
			cur, method, form = next, http.MethodGet, nil
			continue
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("e2e: authorize: %s %s: status %d: %.600s", method, redactURL(cur.String()), resp.Status, resp.Body)
		}
		f, ok := parseForm(resp.Body)
		if !ok {
			t.Fatalf("e2e: authorize: %s: no form in page: %.600s", redactURL(cur.String()), resp.Body)
		}
		action, err := cur.Parse(f.action)
		if err != nil {
			t.Fatalf("e2e: authorize: bad form action %q: %v", f.action, err)
		}
		if f.fields.Has("login") {
			f.fields.Set("login", user)
		}
		if f.fields.Has("password") {
			f.fields.Set("password", pass)
		}
		// A form submission is a new navigation from the page that holds it.
		prev, crossSite = cur, false
		cur, method, form = action, http.MethodPost, f.fields
	}
	t.Fatalf("e2e: authorize: more than 30 steps")
	return nil
}

// StartLogin opens GET /auth/login?returnTo=... on the BFF like a link in
// the app and returns where the BFF redirects (the provider), unvisited.
func (b *Browser) StartLogin(t testing.TB, bffURL, returnTo string) *url.URL {
	t.Helper()
	start := bffURL + "/auth/login?returnTo=" + url.QueryEscape(returnTo)
	resp := b.do(t, http.MethodGet, start, map[string]string{
		"Sec-Fetch-Site": "same-origin",
		"Sec-Fetch-Mode": "navigate",
		"Sec-Fetch-Dest": "document",
	}, nil)
	if resp.Status != http.StatusFound && resp.Status != http.StatusSeeOther {
		t.Fatalf("e2e: login start: status %d, want a redirect: %.300s", resp.Status, resp.Body)
	}
	next, ok := resp.Location()
	if !ok {
		t.Fatalf("e2e: login start: redirect without Location")
	}
	return next
}

// FinishLogin continues a login from the provider URL StartLogin returned:
// it passes the login and consent forms, visits the BFF callback and
// returns the absolute URL the callback redirects to (not visited).
func (b *Browser) FinishLogin(t testing.TB, idpURL *url.URL, bffURL, user, pass string) *url.URL {
	t.Helper()
	bff, err := url.Parse(bffURL)
	if err != nil {
		t.Fatalf("e2e: finish login: %v", err)
	}
	isCallback := func(u *url.URL) bool { return u.Host == bff.Host && u.Path == "/auth/callback" }
	cb := b.Authorize(t, idpURL.String(), user, pass, isCallback)
	resp := b.navigate(t, http.MethodGet, cb, nil, "cross-site", cb)
	if resp.Status != http.StatusFound && resp.Status != http.StatusSeeOther {
		t.Fatalf("e2e: callback: status %d, want a redirect: %.300s", resp.Status, resp.Body)
	}
	final, ok := resp.Location()
	if !ok {
		t.Fatalf("e2e: callback: redirect without Location")
	}
	return final
}

// Login runs a whole login through the BFF and returns where the callback
// sent the browser (which should be returnTo on the BFF's origin).
func (b *Browser) Login(t testing.TB, bffURL, returnTo, user, pass string) string {
	t.Helper()
	return b.FinishLogin(t, b.StartLogin(t, bffURL, returnTo), bffURL, user, pass).String()
}

// htmlForm is the first POST form of a page.
type htmlForm struct {
	action string
	fields url.Values
}

func parseForm(page []byte) (htmlForm, bool) {
	f, ok := htmlform.First(page)
	return htmlForm{action: f.Action, fields: f.Fields}, ok
}

// redactURL drops the query of a URL for messages: it may hold a code.
func redactURL(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] + "?…"
	}
	return raw
}
