package proxy_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
)

func TestRouting(t *testing.T) {
	routes := func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{
			{Path: "/api/", Upstream: up.url(t, "/one")},
			{Path: "/api/v2/", Upstream: up.url(t, "/two"), StripPrefix: true},
			{Path: "/slash/", Upstream: up.url(t, ""), StripPrefix: true},
			{Path: "/noslash", Upstream: up.url(t, ""), StripPrefix: true},
			{Path: "/based/", Upstream: up.url(t, "/base/"), StripPrefix: true},
			{Path: "/", Upstream: up.url(t, "/root"), Token: proxy.TokenNone},
		}
	}
	tests := []struct {
		name    string
		target  string
		wantURI string // RequestURI at the upstream
		wantErr error
	}{
		{name: "prefix match, base path joined", target: "/api/x", wantURI: "/one/api/x"},
		{name: "longest prefix wins", target: "/api/v2/x", wantURI: "/two/x"},
		{name: "longer prefix needs its trailing slash", target: "/api/v2", wantURI: "/one/api/v2"},
		{name: "query string kept", target: "/api/x?a=1&b=%20c&a=2", wantURI: "/one/api/x?a=1&b=%20c&a=2"},
		{name: "encoded slash kept", target: "/api/a%2Fb", wantURI: "/one/api/a%2Fb"},
		{name: "strip with trailing slash", target: "/slash/a/b", wantURI: "/a/b"},
		{name: "strip with trailing slash, route root", target: "/slash/", wantURI: "/"},
		{name: "strip with trailing slash, encoded slash kept", target: "/slash/a%2Fb?q=1", wantURI: "/a%2Fb?q=1"},
		{name: "strip without trailing slash", target: "/noslash/a", wantURI: "/a"},
		{name: "strip without trailing slash, bare prefix", target: "/noslash", wantURI: "/"},
		{name: "strip onto a base path", target: "/based/x/y", wantURI: "/base/x/y"},
		{name: "catch-all route", target: "/elsewhere", wantURI: "/root/elsewhere"},
		{name: "prefix without slash ends at a segment boundary", target: "/noslashy", wantURI: "/root/noslashy"},

		{name: "dot-dot segment", target: "/api/../x", wantErr: proxy.ErrBadPath},
		{name: "dot segment", target: "/api/./x", wantErr: proxy.ErrBadPath},
		{name: "encoded dot-dot", target: "/api/%2e%2e/x", wantErr: proxy.ErrBadPath},
		{name: "mixed-case encoded dot-dot", target: "/api/.%2E/x", wantErr: proxy.ErrBadPath},
		{name: "dot-dot with encoded slash", target: "/api/..%2fadmin", wantErr: proxy.ErrBadPath},
		{name: "trailing dot-dot", target: "/api/x/..", wantErr: proxy.ErrBadPath},
		{name: "trailing dot", target: "/api/x/.", wantErr: proxy.ErrBadPath},
		{name: "dot-dot escaping a stripped prefix", target: "/slash/../admin", wantErr: proxy.ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, routes)
			w := h.get(tt.target)
			if tt.wantErr != nil {
				h.wantErr(w, tt.wantErr)
				if n := len(h.up.requests()); n != 0 {
					t.Errorf("%d requests reached the upstream", n)
				}
				return
			}
			h.wantOK(w)
			if got := h.up.last(t).RequestURI; got != tt.wantURI {
				t.Errorf("upstream RequestURI %q, want %q", got, tt.wantURI)
			}
		})
	}
}

func TestNoRoute(t *testing.T) {
	tests := []struct {
		name   string
		target string
	}{
		{name: "other prefix", target: "/other/x"},
		{name: "route path without its trailing slash", target: "/api"},
		{name: "case differs", target: "/API/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if h.p.Match(tt.target) {
				t.Errorf("Match(%q) = true", tt.target)
			}
			w := h.get(tt.target)
			h.wantErr(w, proxy.ErrNoRoute)
			if loads, _, _ := h.sess.counts(); loads != 0 {
				t.Errorf("Sessions.Load called %d times for an unrouted path", loads)
			}
			if n := len(h.up.requests()); n != 0 {
				t.Errorf("%d requests reached the upstream", n)
			}
		})
	}
	t.Run("RoutePath is the longest configured prefix", func(t *testing.T) {
		h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
			cfg.Routes = []proxy.Route{
				{Path: "/api/", Upstream: up.url(t, "")},
				{Path: "/api/v2/", Upstream: up.url(t, "")},
			}
		})
		for path, want := range map[string]string{"/api/x": "/api/", "/api/v2/x": "/api/v2/", "/api/v2": "/api/", "/other": "", "/api": ""} {
			if got := h.p.RoutePath(path); got != want {
				t.Errorf("RoutePath(%q) = %q, want %q", path, got, want)
			}
		}
	})
	t.Run("Match of a routed path", func(t *testing.T) {
		h := newHarness(t, nil)
		if !h.p.Match("/api/x") {
			t.Error(`Match("/api/x") = false`)
		}
	})
}

// TestDotSegmentVariants covers path forms that common upstream servers
// resolve as a parent directory although no segment is exactly "..".
func TestDotSegmentVariants(t *testing.T) {
	tests := []struct {
		name   string
		target string
	}{
		// Tomcat/Spring drop ";params" from each segment before resolving
		// dot segments, so "..;" is "..".
		{name: "dot-dot with path parameter", target: "/api/..;/admin"},
		{name: "encoded dot-dot with path parameter", target: "/api/%2e%2e;x=1/admin"},
		// IIS and some Windows-hosted servers treat "\" as "/".
		{name: "dot-dot with backslash", target: `/api/..%5cadmin`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.wantErr(h.get(tt.target), proxy.ErrBadPath)
		})
	}
}

func TestNewValidation(t *testing.T) {
	up := func(raw string) *url.URL {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	good := proxy.Route{Path: "/api/", Upstream: up("http://127.0.0.1:1")}
	base := func() proxy.Config {
		return proxy.Config{
			Routes:       []proxy.Route{good},
			Sessions:     &fakeSessions{},
			Refresher:    &fakeRefresher{},
			PublicURL:    up("https://app.example.com"),
			IsBFFCookie:  isBFFCookie,
			ErrorHandler: func(http.ResponseWriter, *http.Request, error) {},
		}
	}
	route := func(r proxy.Route) func(*proxy.Config) {
		return func(c *proxy.Config) { c.Routes = []proxy.Route{r} }
	}
	tests := []struct {
		name    string
		edit    func(*proxy.Config)
		wantErr bool
	}{
		{name: "valid", edit: func(*proxy.Config) {}},
		{name: "no routes", edit: func(c *proxy.Config) { c.Routes = nil }},
		{name: "empty token means user", edit: route(proxy.Route{Path: "/a/", Upstream: up("https://api.example:8443/v1")})},
		{name: "every token mode", edit: func(c *proxy.Config) {
			c.Routes = []proxy.Route{
				{Path: "/u/", Upstream: up("https://h"), Token: proxy.TokenUser},
				{Path: "/o/", Upstream: up("https://h"), Token: proxy.TokenOptional},
				{Path: "/n/", Upstream: up("http://h"), Token: proxy.TokenNone},
			}
		}},

		{name: "path without leading slash", edit: route(proxy.Route{Path: "api/", Upstream: good.Upstream}), wantErr: true},
		{name: "empty path", edit: route(proxy.Route{Path: "", Upstream: good.Upstream}), wantErr: true},
		{name: "nil upstream", edit: route(proxy.Route{Path: "/a/"}), wantErr: true},
		{name: "upstream without scheme", edit: route(proxy.Route{Path: "/a/", Upstream: up("//api.example/x")}), wantErr: true},
		{name: "upstream host parsed as scheme", edit: route(proxy.Route{Path: "/a/", Upstream: up("api.example:8080")}), wantErr: true},
		{name: "upstream relative path", edit: route(proxy.Route{Path: "/a/", Upstream: up("/x")}), wantErr: true},
		{name: "upstream without host", edit: route(proxy.Route{Path: "/a/", Upstream: up("http:///x")}), wantErr: true},
		{name: "upstream with other scheme", edit: route(proxy.Route{Path: "/a/", Upstream: up("ftp://api.example/")}), wantErr: true},
		{name: "upstream with query", edit: route(proxy.Route{Path: "/a/", Upstream: up("http://api.example/?k=1")}), wantErr: true},
		{name: "upstream with fragment", edit: route(proxy.Route{Path: "/a/", Upstream: up("http://api.example/#f")}), wantErr: true},
		{name: "upstream with userinfo", edit: route(proxy.Route{Path: "/a/", Upstream: up("http://user:secretpw@api.example/")}), wantErr: true},
		{name: "upstream with user only", edit: route(proxy.Route{Path: "/a/", Upstream: up("http://user@api.example/")}), wantErr: true},
		{name: "unknown token mode", edit: route(proxy.Route{Path: "/a/", Upstream: good.Upstream, Token: "admin"}), wantErr: true},
		{name: "token mode case differs", edit: route(proxy.Route{Path: "/a/", Upstream: good.Upstream, Token: "User"}), wantErr: true},
		{name: "duplicate path", edit: func(c *proxy.Config) {
			c.Routes = []proxy.Route{good, {Path: "/api/", Upstream: up("http://other"), Token: proxy.TokenNone}}
		}, wantErr: true},
		{name: "no sessions", edit: func(c *proxy.Config) { c.Sessions = nil }, wantErr: true},
		{name: "no refresher", edit: func(c *proxy.Config) { c.Refresher = nil }, wantErr: true},
		{name: "no error handler", edit: func(c *proxy.Config) { c.ErrorHandler = nil }, wantErr: true},
		{name: "no public URL", edit: func(c *proxy.Config) { c.PublicURL = nil }, wantErr: true},
		{name: "relative public URL", edit: func(c *proxy.Config) { c.PublicURL = up("/app") }, wantErr: true},
		{name: "public URL with other scheme", edit: func(c *proxy.Config) { c.PublicURL = up("ftp://app.example.com") }, wantErr: true},
		{name: "no IsBFFCookie", edit: func(c *proxy.Config) { c.IsBFFCookie = nil }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.edit(&cfg)
			p, err := proxy.New(cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "proxy: ") {
					t.Errorf("error %q is not prefixed with the package name", err)
				}
				if strings.Contains(err.Error(), "secretpw") {
					t.Errorf("error %q reveals the upstream's password", err)
				}
				if p != nil {
					t.Error("New returned a Proxy with an error")
				}
			}
		})
	}
}

// TestPlainHTTPUpstream: a route that sends a bearer token refuses a
// plain-http upstream that is not on loopback, unless InsecureUpstream says
// so; the accepted rows are the control.
func TestPlainHTTPUpstream(t *testing.T) {
	tests := []struct {
		upstream string
		token    proxy.TokenMode
		insecure bool
		wantErr  bool
	}{
		{upstream: "http://api.example", wantErr: true},
		{upstream: "http://api.example:8080/v1", token: proxy.TokenOptional, wantErr: true},
		{upstream: "http://10.0.0.7", wantErr: true},
		{upstream: "http://0.0.0.0:8080", wantErr: true},
		{upstream: "http://[::]:8080", wantErr: true},
		{upstream: "http://[fe80::1%25eth0]:8080", wantErr: true},
		{upstream: "http://localhost.example", wantErr: true},
		{upstream: "http://localhost.", wantErr: true}, // only the exact name counts
		{upstream: "http://api.local", wantErr: true},

		{upstream: "http://api.example", token: proxy.TokenNone},
		{upstream: "http://api.example", insecure: true},
		{upstream: "http://10.0.0.7", token: proxy.TokenOptional, insecure: true},
		{upstream: "https://api.example"},
		{upstream: "https://10.0.0.7:8443"},
		{upstream: "http://localhost:8080"},
		{upstream: "http://LocalHost"},
		{upstream: "http://127.0.0.1:8080"},
		{upstream: "http://127.1.2.3"},
		{upstream: "http://[::1]:8080"},
		{upstream: "http://[::ffff:127.0.0.1]:8080"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s token=%q insecure=%v", tt.upstream, tt.token, tt.insecure)
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(tt.upstream)
			if err != nil {
				t.Fatal(err)
			}
			_, err = proxy.New(proxy.Config{
				Routes:       []proxy.Route{{Path: "/api/", Upstream: u, Token: tt.token, InsecureUpstream: tt.insecure}},
				Sessions:     &fakeSessions{},
				Refresher:    &fakeRefresher{},
				PublicURL:    &url.URL{Scheme: "https", Host: "app.example.com"},
				IsBFFCookie:  isBFFCookie,
				ErrorHandler: func(http.ResponseWriter, *http.Request, error) {},
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				for _, want := range []string{"proxy: ", "/api/", "https", "insecure_upstream: true"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			}
		})
	}
}

// TestRouteBodyLimits: the body limits are validated, and Routes returns
// them with their defaults filled in.
func TestRouteBodyLimits(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		minRate     int64
		wantTimeout time.Duration
		wantMinRate int64
		wantErr     bool
	}{
		{name: "defaults", wantTimeout: 30 * time.Second, wantMinRate: 1024},
		{name: "custom", timeout: 2 * time.Minute, minRate: 100, wantTimeout: 2 * time.Minute, wantMinRate: 100},
		{name: "off", timeout: -1, wantTimeout: -1, wantMinRate: 1024},
		{name: "negative rate", minRate: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.p.Routes()[0]
			r.BodyTimeout, r.BodyMinRate = tt.timeout, tt.minRate
			err := h.p.SetRoutes([]proxy.Route{r})
			if (err != nil) != tt.wantErr {
				t.Fatalf("SetRoutes: err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "proxy: route /api/") {
					t.Errorf("error %q does not name the route", err)
				}
				return
			}
			got := h.p.Routes()[0]
			if got.BodyTimeout != tt.wantTimeout || got.BodyMinRate != tt.wantMinRate {
				t.Errorf("Routes: BodyTimeout %v BodyMinRate %d, want %v %d", got.BodyTimeout, got.BodyMinRate, tt.wantTimeout, tt.wantMinRate)
			}
			if rf, ok := h.p.RouteFor("/api/x"); !ok || rf.BodyTimeout != tt.wantTimeout || rf.BodyMinRate != tt.wantMinRate {
				t.Errorf("RouteFor: %v %d %v, want %v %d", rf.BodyTimeout, rf.BodyMinRate, ok, tt.wantTimeout, tt.wantMinRate)
			}
		})
	}
}
