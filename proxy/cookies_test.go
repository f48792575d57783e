package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bff-project/bff/proxy"
)

// TestUpstreamSetCookieNames: an upstream must not set (or delete) a cookie
// the BFF's cookie reader would take as its own, which would sign the user
// out. The name is read as a browser does (RFC 6265bis section 5.6): the
// pair is what precedes the first ';', the name what precedes its first '='
// (whitespace trimmed), and a pair without '=' is a nameless cookie whose
// value the browser sends back bare, where the reader sees it as a name.
// Cookie names are case-sensitive, in browsers and in the reader:
// "__host-http-bff.0" is another cookie, and passes.
func TestUpstreamSetCookieNames(t *testing.T) {
	tests := []struct {
		name string
		sc   string
		drop bool
	}{
		{name: "canonical chunk", sc: sessionCookie + ".0=evil; Path=/", drop: true},
		{name: "second chunk", sc: sessionCookie + ".1=evil", drop: true},
		{name: "leading zero index", sc: sessionCookie + ".00=evil; Path=/", drop: true},
		{name: "letter index", sc: sessionCookie + ".x=evil", drop: true},
		{name: "signed index", sc: sessionCookie + ".+1=evil", drop: true},
		{name: "empty index", sc: sessionCookie + ".=evil", drop: true},
		{name: "deletion", sc: sessionCookie + ".0=; Max-Age=0; Path=/", drop: true},
		{name: "leading spaces", sc: "   " + sessionCookie + ".0=evil", drop: true},
		{name: "leading tab, space before =", sc: "\t" + sessionCookie + ".0 =evil", drop: true},
		{name: "nameless, no attributes", sc: sessionCookie + ".0", drop: true},
		{name: "nameless with attributes", sc: sessionCookie + ".0; Path=/; Secure", drop: true},
		{name: "nameless with spaces", sc: "  " + sessionCookie + ".x  ; Path=/", drop: true},
		// "=NAME.0=v" is a nameless cookie whose value the browser sends
		// back as "NAME.0=v": the reader's name.
		{name: "empty name, value holding one of ours", sc: "=" + sessionCookie + ".0=evil; Path=/", drop: true},
		{name: "blank name, value holding one of ours", sc: " = " + sessionCookie + ".1=evil", drop: true},
		{name: "login cookie", sc: sessionCookie + "-login.abc=evil; Path=/", drop: true},
		{name: "nameless login cookie", sc: sessionCookie + "-login.abc; Path=/", drop: true},

		{name: "other cookie", sc: "app=1; Path=/"},
		{name: "case differs: another cookie", sc: "__host-http-bff.0=x"},
		{name: "bare base name: outside the namespace", sc: sessionCookie + "=x"},
		{name: "longer name", sc: sessionCookie + "x.0=x"},
		{name: "our name in the value of a named cookie", sc: "app=" + sessionCookie + ".0"},
		{name: "our name in an attribute", sc: "app=1; Path=/" + sessionCookie + ".0"},
		{name: "nameless other cookie", sc: "flag; Path=/"},
		{name: "empty name, other value", sc: "=app=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A stub transport hands the header values over exactly as
			// written (an HTTP parser would trim leading whitespace).
			h := newHarness(t, func(cfg *proxy.Config, _ *upstream) {
				cfg.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return &http.Response{
						StatusCode: http.StatusOK,
						Header:     http.Header{"Set-Cookie": {tt.sc, "theme=dark"}},
						Body:       io.NopCloser(strings.NewReader("ok")),
						Request:    r,
					}, nil
				})
			})
			w := h.get("/api/x")
			h.wantOK(w)
			want := []string{tt.sc, "theme=dark"}
			if tt.drop {
				want = want[1:]
			}
			if got := w.Result().Header.Values("Set-Cookie"); !slices.Equal(got, want) {
				t.Errorf("Set-Cookie %q, want %q", got, want)
			}
			if logged := strings.Contains(h.logs.String(), "dropped"); logged != tt.drop {
				t.Errorf("warning logged: %v, want %v", logged, tt.drop)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClearSiteData: Clear-Site-Data: "cookies" from an upstream would wipe
// the BFF's session; it is dropped on every route and logged without its
// value. The same response's other headers pass (the control).
func TestClearSiteData(t *testing.T) {
	routes := func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{
			{Path: "/api/", Upstream: up.url(t, "")},
			{Path: "/pub/", Upstream: up.url(t, ""), Token: proxy.TokenNone},
		}
	}
	for _, target := range []string{"/api/x", "/pub/x"} {
		t.Run(target, func(t *testing.T) {
			h := newHarness(t, routes)
			h.up.handler = func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Clear-Site-Data"] = []string{`"cookies", "x-csd-marker"`, `"*"`}
				w.Header().Set("X-Other", "kept")
				io.WriteString(w, "ok")
			}
			w := h.get(target)
			h.wantOK(w)
			if v, ok := w.Result().Header["Clear-Site-Data"]; ok {
				t.Errorf("Clear-Site-Data %q reached the client", v)
			}
			if v := w.Result().Header.Get("X-Other"); v != "kept" {
				t.Errorf("X-Other %q, want kept", v)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, "Clear-Site-Data") {
				t.Errorf("no warning logged:\n%s", logs)
			}
			if strings.Contains(logs, "x-csd-marker") {
				t.Errorf("the header's value was logged:\n%s", logs)
			}
		})
	}
}

// TestStripCookieParts: the request direction reads Cookie parts as the
// cookie reader does: a part without '=' is a name, so a bare chunk name is
// stripped as well.
func TestStripCookieParts(t *testing.T) {
	tests := []struct {
		name   string
		cookie []string
		want   []string // nil: no Cookie header
	}{
		{name: "bare chunk name", cookie: []string{"a=1; " + sessionCookie + ".0; b=2"}, want: []string{"a=1; b=2"}},
		{name: "bare chunk name with spaces", cookie: []string{" \t" + sessionCookie + ".0 \t;b=2"}, want: []string{"b=2"}},
		{name: "non-canonical indexes", cookie: []string{sessionCookie + ".00=v; " + sessionCookie + ".x=v; " + sessionCookie + ".+1=v; c=3"}, want: []string{"c=3"}},
		{name: "login cookie", cookie: []string{sessionCookie + "-login.ab=v; c=3"}, want: []string{"c=3"}},
		{name: "only ours", cookie: []string{sessionCookie + ".0", sessionCookie + ".1=v"}},
		{name: "case differs: kept", cookie: []string{"__host-http-bff.0=v; " + sessionCookie + ".0=v"}, want: []string{"__host-http-bff.0=v"}},
		{name: "other bare names kept", cookie: []string{"flag; " + sessionCookie + "; c=3"}, want: []string{"flag; " + sessionCookie + "; c=3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
			r.Header["Cookie"] = tt.cookie
			h.wantOK(h.serve(r))
			got, ok := h.up.last(t).Header["Cookie"]
			if tt.want == nil {
				if ok {
					t.Errorf("Cookie %q reached the upstream", got)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Cookie %q, want %q", got, tt.want)
			}
		})
	}
}
