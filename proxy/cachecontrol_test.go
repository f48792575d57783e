package proxy_test

import (
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/bff-project/bff/proxy"
)

// TestPrivateCache: through the BFF the browser authenticates with a cookie,
// so a shared cache (a CDN, nginx proxy_cache) in front of it must never
// reuse one user's response for another. On routes that send a bearer the
// response is made private and varies on Cookie; on TokenNone routes the
// upstream's caching headers pass untouched (the control: the same headers
// would otherwise be rewritten).
func TestPrivateCache(t *testing.T) {
	routes := func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{
			{Path: "/api/", Upstream: up.url(t, "")},
			{Path: "/opt/", Upstream: up.url(t, ""), Token: proxy.TokenOptional},
			{Path: "/pub/", Upstream: up.url(t, ""), Token: proxy.TokenNone},
		}
	}
	cdn := map[string][]string{
		"CDN-Cache-Control":            {"max-age=600"},
		"Surrogate-Control":            {"max-age=600"},
		"Cloudflare-CDN-Cache-Control": {"max-age=600"},
	}
	tests := []struct {
		name      string
		target    string // "" means /api/x
		noSess    bool
		headers   map[string][]string // set by the upstream
		wantCC    []string            // nil: no Cache-Control
		wantVary  []string
		wantOther map[string][]string // further headers, nil values: absent
	}{
		{name: "absent: private added", wantCC: []string{"private"}, wantVary: []string{"Cookie"}},
		{name: "empty: private", headers: map[string][]string{"Cache-Control": {""}},
			wantCC: []string{"private"}, wantVary: []string{"Cookie"}},
		{name: "public max-age: public dropped, max-age kept",
			headers: map[string][]string{"Cache-Control": {"public, max-age=600"}},
			wantCC:  []string{"max-age=600, private"}, wantVary: []string{"Cookie"}},
		{name: "shared-cache directives dropped, the others kept",
			headers: map[string][]string{"Cache-Control": {"max-age=600, s-maxage=3600, proxy-revalidate, must-revalidate, no-cache, stale-while-revalidate=30"}},
			wantCC:  []string{"max-age=600, must-revalidate, no-cache, stale-while-revalidate=30, private"}, wantVary: []string{"Cookie"}},
		{name: "directive names are case-insensitive",
			headers: map[string][]string{"Cache-Control": {"PUBLIC, S-MAXAGE=60, Max-Age=5, Proxy-Revalidate"}},
			wantCC:  []string{"Max-Age=5, private"}, wantVary: []string{"Cookie"}},
		{name: "several lines joined",
			headers: map[string][]string{"Cache-Control": {"public", "max-age=60", " "}},
			wantCC:  []string{"max-age=60, private"}, wantVary: []string{"Cookie"}},
		{name: "no-store kept as is",
			headers: map[string][]string{"Cache-Control": {"no-store"}},
			wantCC:  []string{"no-store"}, wantVary: []string{"Cookie"}},
		{name: "private kept as is",
			headers: map[string][]string{"Cache-Control": {"private, max-age=60"}},
			wantCC:  []string{"private, max-age=60"}, wantVary: []string{"Cookie"}},
		{name: "private with public and s-maxage: only private stays",
			headers: map[string][]string{"Cache-Control": {"public, private, s-maxage=60"}},
			wantCC:  []string{"private"}, wantVary: []string{"Cookie"}},
		// private="field" keeps only those fields out of a shared cache
		// (RFC 9111 section 5.2.2.7): the rest is still shareable.
		{name: "qualified private is not private",
			headers: map[string][]string{"Cache-Control": {`private="Set-Cookie", max-age=60`}},
			wantCC:  []string{"max-age=60, private"}, wantVary: []string{"Cookie"}},
		{name: "a quoted comma is not a separator",
			headers: map[string][]string{"Cache-Control": {`no-cache="X-Foo, public, X-Bar", public`}},
			wantCC:  []string{`no-cache="X-Foo, public, X-Bar", private`}, wantVary: []string{"Cookie"}},
		{name: "an escaped quote does not end the string",
			headers: map[string][]string{"Cache-Control": {`ext="a\", public, b", max-age=1`}},
			wantCC:  []string{`ext="a\", public, b", max-age=1, private`}, wantVary: []string{"Cookie"}},
		{name: "Vary merged", headers: map[string][]string{"Vary": {"Accept-Encoding"}},
			wantCC: []string{"private"}, wantVary: []string{"Accept-Encoding, Cookie"}},
		{name: "Vary lines merged", headers: map[string][]string{"Vary": {"Accept", "Origin, Accept-Language"}},
			wantCC: []string{"private"}, wantVary: []string{"Accept, Origin, Accept-Language, Cookie"}},
		{name: "Vary already has Cookie", headers: map[string][]string{"Vary": {"Accept, cookie"}},
			wantCC: []string{"private"}, wantVary: []string{"Accept, cookie"}},
		{name: "Vary star left alone", headers: map[string][]string{"Vary": {"*"}},
			wantCC: []string{"private"}, wantVary: []string{"*"}},
		{name: "CDN cache headers dropped, others kept",
			headers: merge(cdn, map[string][]string{"X-Other": {"1"}}),
			wantCC:  []string{"private"}, wantVary: []string{"Cookie"},
			wantOther: map[string][]string{"CDN-Cache-Control": nil, "Surrogate-Control": nil, "Cloudflare-CDN-Cache-Control": nil, "X-Other": {"1"}}},
		{name: "optional route without a session: private too", target: "/opt/x", noSess: true,
			headers: merge(cdn, map[string][]string{"Cache-Control": {"public, max-age=600"}}),
			wantCC:  []string{"max-age=600, private"}, wantVary: []string{"Cookie"},
			wantOther: map[string][]string{"CDN-Cache-Control": nil}},
		{name: "optional route with a session", target: "/opt/x",
			headers: map[string][]string{"Cache-Control": {"public, max-age=600"}},
			wantCC:  []string{"max-age=600, private"}, wantVary: []string{"Cookie"}},
		{name: "token none: untouched", target: "/pub/x",
			headers: merge(cdn, map[string][]string{"Cache-Control": {"public, s-maxage=600"}, "Vary": {"Accept"}}),
			wantCC:  []string{"public, s-maxage=600"}, wantVary: []string{"Accept"},
			wantOther: cdn},
		{name: "token none without caching headers: none added", target: "/pub/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, routes)
			if tt.noSess {
				h.sess.sess = nil
			}
			h.up.handler = func(w http.ResponseWriter, r *http.Request) {
				for k, vs := range tt.headers {
					w.Header()[http.CanonicalHeaderKey(k)] = vs
				}
				io.WriteString(w, "ok")
			}
			target := tt.target
			if target == "" {
				target = "/api/x"
			}
			w := h.get(target)
			h.wantOK(w)
			got := w.Result().Header
			if v := got.Values("Cache-Control"); !slices.Equal(v, tt.wantCC) {
				t.Errorf("Cache-Control %q, want %q", v, tt.wantCC)
			}
			if v := got.Values("Vary"); !slices.Equal(v, tt.wantVary) {
				t.Errorf("Vary %q, want %q", v, tt.wantVary)
			}
			for k, want := range tt.wantOther {
				if v := got.Values(k); !slices.Equal(v, want) {
					t.Errorf("%s %q, want %q", k, v, want)
				}
			}
		})
	}
}

func merge(ms ...map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
