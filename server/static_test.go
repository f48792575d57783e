package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bff-project/bff/demo"
	"github.com/bff-project/bff/server"
)

const (
	spaIndex    = "<!doctype html><title>spa index</title>"
	noCache     = "no-cache"
	immutable   = "public, max-age=31536000, immutable"
	defaultCSP  = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	hashedAsset = "/assets/index-BxK3d9Qa.js"
)

// spaDir writes a built single-page app to a temporary directory: its
// index.html, hashed and unhashed assets, a nested directory with its own
// index.html, a directory without one, and dot files.
func spaDir(t *testing.T, index bool) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"assets/index-BxK3d9Qa.js":     "console.log('hashed')",
		"assets/app.3f2a9c1b.js":       "console.log('hashed hex')",
		"assets/chunk-5FJ2ZQXW.css":    "body{}",
		"assets/vendor-library.js":     "console.log('vendor')",
		"app.js":                       "console.log('plain')",
		"favicon.svg":                  "<svg/>",
		"docs/index.html":              "<!doctype html><title>docs index</title>",
		"nolist/a.txt":                 "a",
		".env":                         "SECRET=1",
		".well-known/security.txt.bak": "hidden",
	}
	if index {
		files["index.html"] = spaIndex
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func spaEnv(t *testing.T, dir string, config func(*server.Config)) *env {
	t.Helper()
	return newEnv(t, envOptions{config: func(c *server.Config) {
		c.Static, c.StaticDir = nil, dir
		if config != nil {
			config(c)
		}
	}})
}

var (
	// navigation is what a browser sends when the user opens a URL.
	navigation = http.Header{
		"Sec-Fetch-Dest": {"document"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Site": {"none"},
		"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
	}
	// appFetch is the app's fetch() of the same path.
	appFetch = http.Header{
		"Sec-Fetch-Dest": {"empty"}, "Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"same-origin"},
		"Accept": {"application/json"},
	}
)

// isIndex reports whether r is the app's index.html, served as such.
func isIndex(t *testing.T, r *result, method string) {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 with index.html; body %q", r.StatusCode, r.body)
	}
	if method == http.MethodHead {
		if r.body != "" || r.Header.Get("Content-Length") != strconv.Itoa(len(spaIndex)) {
			t.Errorf("HEAD: body %q Content-Length %q, want none and %d", r.body, r.Header.Get("Content-Length"), len(spaIndex))
		}
	} else if r.body != spaIndex {
		t.Fatalf("body %q, want index.html", r.body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != noCache {
		t.Errorf("Cache-Control %q, want %q", cc, noCache)
	}
	if r.Header.Get("Last-Modified") == "" {
		t.Error("no Last-Modified: the browser cannot revalidate")
	}
}

// TestStaticHistoryFallback: a navigation to a path the app routes itself
// gets index.html; anything else that is no file is the BFF's JSON 404.
func TestStaticHistoryFallback(t *testing.T) {
	e := spaEnv(t, spaDir(t, true), nil)
	b := e.browser()
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		index  bool   // index.html, 200, no-cache
		status int    // else this JSON error
		code   string // and this error code
	}{
		{"deep link navigation", "GET", "/orders/42", navigation, true, 0, ""},
		{"deep link with a trailing slash", "GET", "/orders/42/", navigation, true, 0, ""},
		{"Sec-Fetch-Dest document alone", "GET", "/orders/42", hdr("Sec-Fetch-Dest", "document"), true, 0, ""},
		{"Sec-Fetch-Mode navigate alone", "GET", "/orders/42", hdr("Sec-Fetch-Mode", "navigate"), true, 0, ""},
		{"no fetch metadata, Accept lists text/html", "GET", "/orders/42", hdr("Accept", "application/xhtml+xml, TEXT/HTML;q=0.9"), true, 0, ""},
		{"HEAD navigation", "HEAD", "/orders/42", navigation, true, 0, ""},
		{"directory without index.html", "GET", "/nolist/", navigation, true, 0, ""},
		{"same path as the app's fetch", "GET", "/orders/42", appFetch, false, 404, "not_found"},
		{"fetch metadata wins over Accept", "GET", "/orders/42", hdr("Sec-Fetch-Dest", "empty", "Sec-Fetch-Mode", "cors", "Accept", "text/html"), false, 404, "not_found"},
		{"an image of the path", "GET", "/orders/42", hdr("Sec-Fetch-Dest", "image", "Sec-Fetch-Mode", "no-cors", "Accept", "image/*"), false, 404, "not_found"},
		{"Accept */* is not a navigation", "GET", "/orders/42", hdr("Accept", "*/*"), false, 404, "not_found"},
		{"Accept text/html;q=0 refuses HTML", "GET", "/orders/42", hdr("Accept", "text/html;q=0, application/json"), false, 404, "not_found"},
		{"no headers at all", "GET", "/orders/42", nil, false, 404, "not_found"},
		{"asset-looking miss", "GET", "/static/app.3f2a.js", navigation, false, 404, "not_found"},
		{"favicon miss", "GET", "/favicon.ico", navigation, false, 404, "not_found"},
		{"dot file", "GET", "/.env", navigation, false, 404, "not_found"},
		{"under a dot directory", "GET", "/.well-known/openid-configuration", navigation, false, 404, "not_found"},
		{"POST navigation to a deep link", "POST", "/orders/42", navigation, false, 404, "not_found"},
		{"DELETE of a deep link", "DELETE", "/orders/42", navigation, false, 404, "not_found"},
		{"POST to a file", "POST", "/", navigation, false, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(tt.method, tt.path, tt.header)
			if tt.index {
				isIndex(t, r, tt.method)
				if !strings.Contains(r.Header.Get("Vary"), "Sec-Fetch-Dest") {
					t.Errorf("Vary %q: a cache would give the page to a fetch", r.Header.Get("Vary"))
				}
				return
			}
			if strings.Contains(r.body, "spa index") {
				t.Fatalf("status %d: served index.html", r.StatusCode)
			}
			checkJSONError(t, r, tt.status, tt.code)
			if tt.status == http.StatusMethodNotAllowed && r.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("405 with Allow %q, want GET, HEAD", r.Header.Get("Allow"))
			}
			if r.Header.Get("Content-Security-Policy") == "" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("a miss lost the app's security headers")
			}
		})
	}
	// Files are served as themselves, not as the fallback.
	if r := b.do("GET", "/docs/", navigation); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "docs index") {
		t.Errorf("/docs/: status %d body %q, want the nested index.html", r.StatusCode, r.body)
	}
	if r := b.do("GET", "/app.js", navigation); r.StatusCode != http.StatusOK || r.body != "console.log('plain')" {
		t.Errorf("/app.js: status %d body %q, want the file", r.StatusCode, r.body)
	}
}

// TestStaticFallbackNeedsIndex: without an index.html there is nothing to
// fall back to.
func TestStaticFallbackNeedsIndex(t *testing.T) {
	e := spaEnv(t, spaDir(t, false), nil)
	b := e.browser()
	for _, p := range []string{"/orders/42", "/"} {
		checkJSONError(t, b.do("GET", p, navigation), http.StatusNotFound, "not_found")
	}
	// Positive control: the same directory serves its files.
	if r := b.do("GET", "/docs/", navigation); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "docs index") {
		t.Errorf("/docs/: status %d body %q", r.StatusCode, r.body)
	}
}

// TestStaticFallbackNotForAuthOrRoutes: a navigation under the auth prefix
// or a proxy route is answered by the BFF, never by the app's index.html;
// the same shape of path elsewhere is.
func TestStaticFallbackNotForAuthOrRoutes(t *testing.T) {
	e := spaEnv(t, spaDir(t, true), nil)
	b := e.browser()
	isIndex(t, b.do("GET", "/apis/orders/42", navigation), "GET") // positive control
	isIndex(t, b.do("GET", "/authz/orders/42", navigation), "GET")
	for _, p := range []string{"/auth/orders/42", "/api/orders/42"} {
		r := b.do("GET", p, navigation)
		if strings.Contains(r.body, "spa index") || r.StatusCode == http.StatusOK {
			t.Errorf("%s: status %d body %q, want the BFF's answer", p, r.StatusCode, r.body)
		}
		checkJSONError(t, r, r.StatusCode, "")
	}
	// The route really is the proxy's: a signed-in fetch reaches the API.
	b.signIn("/")
	if r := b.do("GET", "/api/orders/42", e.apiHeaders()); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"path":"/api/orders/42"`) {
		t.Errorf("/api/orders/42 signed in: status %d body %q, want the upstream", r.StatusCode, r.body)
	}
}

// TestStaticCacheControl: index.html and unhashed files are revalidated,
// hashed assets are immutable; Last-Modified stays.
func TestStaticCacheControl(t *testing.T) {
	e := spaEnv(t, spaDir(t, true), nil)
	b := e.browser()
	tests := []struct {
		path  string
		cache string
	}{
		{"/", noCache},
		{"/docs/", noCache},
		{hashedAsset, immutable},
		{"/assets/app.3f2a9c1b.js", immutable},
		{"/assets/chunk-5FJ2ZQXW.css", immutable},
		{"/assets/vendor-library.js", noCache},
		{"/app.js", noCache},
		{"/favicon.svg", noCache},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := b.get(tt.path)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", r.StatusCode, r.body)
			}
			if cc := r.Header.Get("Cache-Control"); cc != tt.cache {
				t.Errorf("Cache-Control %q, want %q", cc, tt.cache)
			}
			if r.Header.Get("Last-Modified") == "" {
				t.Error("no Last-Modified")
			}
		})
	}
	// /index.html is the index too, whatever http.FileServer answers.
	if r := b.get("/index.html"); r.Header.Get("Cache-Control") != noCache {
		t.Errorf("/index.html: status %d Cache-Control %q, want %q", r.StatusCode, r.Header.Get("Cache-Control"), noCache)
	}
}

// TestStaticCSP: StaticCSP "" is the safe default, "off" sends none, any
// other value is sent as given; for StaticDir and for any Static handler.
func TestStaticCSP(t *testing.T) {
	const custom = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
	dir := spaDir(t, true)
	for _, tt := range []struct {
		name, csp, want string
	}{
		{"default", "", defaultCSP},
		{"off", "off", ""},
		{"custom", custom, custom},
	} {
		for _, static := range []string{"static_dir", "handler"} {
			t.Run(tt.name+"/"+static, func(t *testing.T) {
				e := newEnv(t, envOptions{config: func(c *server.Config) {
					c.StaticCSP = tt.csp
					if static == "static_dir" {
						c.Static, c.StaticDir = nil, dir
					}
				}})
				b := e.browser()
				for _, p := range []string{"/", "/orders/42"} {
					r := b.do("GET", p, navigation)
					if r.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d", p, r.StatusCode)
					}
					if got := r.Header.Values("Content-Security-Policy"); len(got) > 1 || strings.Join(got, "") != tt.want {
						t.Errorf("%s: CSP %q, want %q", p, got, tt.want)
					}
					if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") != "strict-origin-when-cross-origin" {
						t.Errorf("%s: nosniff %q Referrer-Policy %q", p, r.Header.Get("X-Content-Type-Options"), r.Header.Get("Referrer-Policy"))
					}
				}
			})
		}
	}
}

// TestStaticDemoPage: the demo's page (a Static handler of its own) gets the
// BFF's headers but neither the history fallback nor the cache rules; with
// static_csp off it sets its own policy.
func TestStaticDemoPage(t *testing.T) {
	for _, csp := range []string{"", "off"} {
		t.Run("csp="+csp, func(t *testing.T) {
			e := newEnv(t, envOptions{config: func(c *server.Config) { c.Static, c.StaticCSP = demo.Page(), csp }})
			b := e.browser()
			r := b.do("GET", "/", navigation)
			if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "<html") {
				t.Fatalf("/: status %d body %.80q", r.StatusCode, r.body)
			}
			got := r.Header.Get("Content-Security-Policy")
			if csp == "" && got != defaultCSP || csp == "off" && (got == "" || got == defaultCSP) {
				t.Errorf("CSP %q with static_csp %q", got, csp)
			}
			if r.Header.Get("Referrer-Policy") == "" {
				t.Error("no Referrer-Policy on the demo page")
			}
			if r := b.do("GET", "/orders/42", navigation); r.StatusCode != http.StatusNotFound || strings.Contains(r.body, "<html") {
				t.Errorf("/orders/42: status %d; the fallback is for static_dir only", r.StatusCode)
			}
		})
	}
}
