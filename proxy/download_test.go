package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/bff-project/bff/proxy"
)

// Header sets as Chromium sends them (recorded from Chromium 156).
var (
	chromiumNavigation = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}, "Sec-Fetch-User": {"?1"}}
	chromiumIframe     = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"iframe"}}
	chromiumFetch      = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Dest": {"empty"}}
	chromiumImage      = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Dest": {"image"}}
)

// TestDownloadNavigation: the answer to a navigation is forced to be a
// download (Content-Disposition: attachment, nosniff, a CSP sandbox), so an
// upstream's HTML never renders on the app's origin, keeping the upstream's
// file name. The same upstream answer to a fetch or an image load passes
// untouched (the control: the rewrite is keyed on the navigation).
func TestDownloadNavigation(t *testing.T) {
	tests := []struct {
		name   string
		path   string      // "" means /dl/report
		req    http.Header // the browser's Fetch Metadata
		cd     []string    // upstream Content-Disposition; nil: none
		csp    []string    // upstream Content-Security-Policy
		wantCD []string
		forced bool // nosniff and sandbox added
	}{
		{name: "inline with a file name", req: chromiumNavigation, cd: []string{`inline; filename="report.html"`},
			wantCD: []string{"attachment; filename=report.html"}, forced: true},
		{name: "attachment kept with its file name", req: chromiumNavigation, cd: []string{`attachment; filename="a b.csv"`},
			wantCD: []string{`attachment; filename="a b.csv"`}, forced: true},
		{name: "no Content-Disposition", req: chromiumNavigation, wantCD: []string{"attachment"}, forced: true},
		{name: "inline without a file name", req: chromiumNavigation, cd: []string{"inline"}, wantCD: []string{"attachment"}, forced: true},
		{name: "filename* (RFC 8187) kept", req: chromiumNavigation, cd: []string{`inline; filename*=UTF-8''r%C3%A9sum%C3%A9.html`},
			wantCD: []string{`attachment; filename*=utf-8''r%C3%A9sum%C3%A9.html`}, forced: true},
		{name: "malformed: plain attachment", req: chromiumNavigation, cd: []string{`inline; filename="unterminated`},
			wantCD: []string{"attachment"}, forced: true},
		{name: "two lines: one attachment", req: chromiumNavigation, cd: []string{"inline", `attachment; filename="x.html"`},
			wantCD: []string{"attachment"}, forced: true},
		{name: "upstream CSP kept, sandbox added", req: chromiumNavigation, csp: []string{"default-src 'self'"},
			wantCD: []string{"attachment"}, forced: true},
		{name: "iframe", req: chromiumIframe, cd: []string{"inline"}, wantCD: []string{"attachment"}, forced: true},
		{name: "nested-navigate", req: http.Header{"Sec-Fetch-Mode": {"nested-navigate"}}, wantCD: []string{"attachment"}, forced: true},
		{name: "object destination without navigate mode", req: http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Dest": {"object"}},
			wantCD: []string{"attachment"}, forced: true},
		{name: "embed destination", req: http.Header{"Sec-Fetch-Dest": {"embed"}}, wantCD: []string{"attachment"}, forced: true},
		{name: "mode in upper case", req: http.Header{"Sec-Fetch-Mode": {"NAVIGATE"}}, wantCD: []string{"attachment"}, forced: true},
		{name: "route without Downloads: forced too", path: "/api/x", req: chromiumNavigation, cd: []string{"inline"},
			wantCD: []string{"attachment"}, forced: true},
		// Controls: the same upstream answer, not to a navigation.
		{name: "fetch: untouched", req: chromiumFetch, cd: []string{`inline; filename="report.html"`},
			wantCD: []string{`inline; filename="report.html"`}},
		{name: "image: untouched", req: chromiumImage, cd: []string{"inline"}, wantCD: []string{"inline"}},
		{name: "no Fetch Metadata: untouched", req: http.Header{}, cd: []string{"inline"}, wantCD: []string{"inline"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
				cfg.Routes = []proxy.Route{
					{Path: "/api/", Upstream: up.url(t, "")},
					{Path: "/dl/", Upstream: up.url(t, ""), Downloads: true},
				}
			})
			h.up.handler = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Header()["Content-Disposition"] = tc.cd
				w.Header()["Content-Security-Policy"] = tc.csp
				w.Write([]byte("<script>alert(document.domain)</script>"))
			}
			path := tc.path
			if path == "" {
				path = "/dl/report"
			}
			r := httptest.NewRequest(http.MethodGet, path, nil)
			for k, v := range tc.req {
				r.Header[k] = v
			}
			w := h.serve(r)
			h.wantOK(w)
			if got := w.Header().Values("Content-Disposition"); !slices.Equal(got, tc.wantCD) {
				t.Errorf("Content-Disposition %q, want %q", got, tc.wantCD)
			}
			if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q changed", got)
			}
			nosniff := w.Header().Get("X-Content-Type-Options") == "nosniff"
			csp := w.Header().Values("Content-Security-Policy")
			sandbox := slices.Contains(csp, "sandbox")
			if nosniff != tc.forced || sandbox != tc.forced {
				t.Errorf("nosniff %v, sandbox %v (CSP %q), want both %v", nosniff, sandbox, csp, tc.forced)
			}
			for _, v := range tc.csp {
				if !slices.Contains(csp, v) {
					t.Errorf("upstream CSP %q dropped: %q", v, csp)
				}
			}
		})
	}
}

// TestIsNavigation: the predicate the server's anti-forgery and the
// proxy's forced download share, on what Chromium sends.
func TestIsNavigation(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want bool
	}{
		{"Chromium navigation", chromiumNavigation, true},
		{"Chromium iframe", chromiumIframe, true},
		{"frame", http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"frame"}}, true},
		{"fencedframe", http.Header{"Sec-Fetch-Dest": {"fencedframe"}}, true},
		{"one of two values", http.Header{"Sec-Fetch-Mode": {"cors", "navigate"}}, true},
		{"Chromium fetch", chromiumFetch, false},
		{"Chromium image", chromiumImage, false},
		{"Chromium EventSource", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Dest": {"empty"}}, false},
		{"WebSocket", http.Header{"Sec-Fetch-Mode": {"websocket"}, "Sec-Fetch-Dest": {"websocket"}}, false},
		{"script", http.Header{"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Dest": {"script"}}, false},
		{"none", http.Header{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := proxy.IsNavigation(tc.h); got != tc.want {
				t.Errorf("IsNavigation(%v) = %v, want %v", tc.h, got, tc.want)
			}
		})
	}
}
