package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/session"
)

func TestHeaderHygiene(t *testing.T) {
	trusted := func(cfg *proxy.Config, up *upstream) {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	}
	withRoutes := func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{
			{Path: "/api/", Upstream: up.url(t, "")},
			{Path: "/opt/", Upstream: up.url(t, ""), Token: proxy.TokenOptional},
			{Path: "/pub/", Upstream: up.url(t, ""), Token: proxy.TokenNone},
		}
	}
	tests := []struct {
		name    string
		edit    func(*proxy.Config, *upstream)
		noSess  bool
		target  string
		remote  string
		host    string
		headers map[string][]string
		check   func(t *testing.T, got seen)
	}{
		{
			name:    "inbound Authorization replaced by the bearer",
			headers: map[string][]string{"Authorization": {"Basic dXNlcjpwdw==", "Bearer evil"}},
			check: func(t *testing.T, got seen) {
				if b := bearer(t, got); b != "Bearer AT-old" {
					t.Errorf("Authorization %q, want the session's bearer", b)
				}
			},
		},
		{
			name:    "token none sends no Authorization",
			edit:    withRoutes,
			target:  "/pub/x",
			headers: map[string][]string{"Authorization": {"Bearer evil"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("Authorization"); len(v) != 0 {
					t.Errorf("Authorization %q reached the upstream", v)
				}
			},
		},
		{
			name:    "optional without session sends no Authorization",
			edit:    withRoutes,
			noSess:  true,
			target:  "/opt/x",
			headers: map[string][]string{"Authorization": {"Bearer evil"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("Authorization"); len(v) != 0 {
					t.Errorf("Authorization %q reached the upstream", v)
				}
			},
		},
		{
			name:    "optional with session sends the bearer",
			edit:    withRoutes,
			target:  "/opt/x",
			headers: map[string][]string{"Authorization": {"Bearer evil"}},
			check: func(t *testing.T, got seen) {
				if b := bearer(t, got); b != "Bearer AT-old" {
					t.Errorf("Authorization %q", b)
				}
			},
		},
		{
			name: "BFF cookies removed, others kept, across Cookie lines",
			headers: map[string][]string{"Cookie": {
				"a=1; " + sessionCookie + ".0=cookie-secret",
				sessionCookie + ".1=cookie-secret;b=2 ; " + sessionCookie + "-login.abc=cookie-secret",
				"c=3",
			}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("Cookie"); !slices.Equal(v, []string{"a=1; b=2; c=3"}) {
					t.Errorf("Cookie %q, want [a=1; b=2; c=3]", v)
				}
			},
		},
		{
			name:    "only BFF cookies: no Cookie header at all",
			headers: map[string][]string{"Cookie": {sessionCookie + ".0=cookie-secret; " + sessionCookie + ".1=cookie-secret"}},
			check: func(t *testing.T, got seen) {
				if v, ok := got.Header["Cookie"]; ok {
					t.Errorf("Cookie %q reached the upstream", v)
				}
			},
		},
		{
			// The bare base name is outside the namespace: the cookie reader
			// ignores it, so it is another app's cookie.
			name:    "cookies outside the namespace are kept: a longer name, the bare base name",
			headers: map[string][]string{"Cookie": {sessionCookie + "x=1; " + sessionCookie + "=2; " + sessionCookie + ".0=cookie-secret"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("Cookie"); !slices.Equal(v, []string{sessionCookie + "x=1; " + sessionCookie + "=2"}) {
					t.Errorf("Cookie %q", v)
				}
			},
		},
		{
			name:    "X-Forwarded-For replaced from an untrusted peer",
			edit:    trusted,
			remote:  "192.0.2.7:4444",
			headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4", "5.6.7.8"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"192.0.2.7"}) {
					t.Errorf("X-Forwarded-For %q, want [192.0.2.7]", v)
				}
			},
		},
		{
			name:    "X-Forwarded-For replaced when nothing is trusted",
			remote:  "10.1.2.3:4444",
			headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"10.1.2.3"}) {
					t.Errorf("X-Forwarded-For %q, want [10.1.2.3]", v)
				}
			},
		},
		{
			name:    "X-Forwarded-For appended from a trusted peer",
			edit:    trusted,
			remote:  "10.1.2.3:4444",
			headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4", "5.6.7.8"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"1.2.3.4, 5.6.7.8, 10.1.2.3"}) {
					t.Errorf("X-Forwarded-For %q", v)
				}
			},
		},
		{
			name:    "trusted IPv4-mapped IPv6 peer",
			edit:    trusted,
			remote:  "[::ffff:10.1.2.3]:4444",
			headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"1.2.3.4, ::ffff:10.1.2.3"}) {
					t.Errorf("X-Forwarded-For %q", v)
				}
			},
		},
		{
			name:    "trusted IPv6 peer",
			edit:    trusted,
			remote:  "[fd00::1]:4444",
			headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"1.2.3.4, fd00::1"}) {
					t.Errorf("X-Forwarded-For %q", v)
				}
			},
		},
		{
			name:    "unparsable peer address: no X-Forwarded-For",
			edit:    trusted,
			remote:  "garbage",
			headers: map[string][]string{"X-Forwarded-For": {"1.2.3.4"}},
			check: func(t *testing.T, got seen) {
				if v, ok := got.Header["X-Forwarded-For"]; ok {
					t.Errorf("X-Forwarded-For %q", v)
				}
			},
		},
		{
			name:    "empty cookie parts dropped",
			headers: map[string][]string{"Cookie": {"a=1;; ;b=2;", ";"}},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("Cookie"); !slices.Equal(v, []string{"a=1; b=2"}) {
					t.Errorf("Cookie %q", v)
				}
			},
		},
		{
			name:   "trusted peer without X-Forwarded-For",
			edit:   trusted,
			remote: "10.1.2.3:4444",
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-For"); !slices.Equal(v, []string{"10.1.2.3"}) {
					t.Errorf("X-Forwarded-For %q", v)
				}
			},
		},
		{
			name:   "X-Forwarded-Host and -Proto from PublicURL, Forwarded dropped",
			edit:   trusted,
			remote: "10.1.2.3:4444", // even from a trusted peer
			host:   "evil.example",
			headers: map[string][]string{
				"X-Forwarded-Host":  {"evil.example"},
				"X-Forwarded-Proto": {"http"},
				"Forwarded":         {"for=1.2.3.4;host=evil.example;proto=http"},
			},
			check: func(t *testing.T, got seen) {
				if v := got.Header.Values("X-Forwarded-Host"); !slices.Equal(v, []string{"app.example.com"}) {
					t.Errorf("X-Forwarded-Host %q", v)
				}
				if v := got.Header.Values("X-Forwarded-Proto"); !slices.Equal(v, []string{"https"}) {
					t.Errorf("X-Forwarded-Proto %q", v)
				}
				if v, ok := got.Header["Forwarded"]; ok {
					t.Errorf("Forwarded %q reached the upstream", v)
				}
				if strings.Contains(got.Host, "evil") {
					t.Errorf("upstream Host %q is the request's", got.Host)
				}
			},
		},
		{
			name: "hop-by-hop headers removed",
			headers: map[string][]string{
				"Connection":          {"X-Secret-Hop"},
				"X-Secret-Hop":        {"1"},
				"Proxy-Authorization": {"Basic dXNlcjpwdw=="},
			},
			check: func(t *testing.T, got seen) {
				for _, k := range []string{"X-Secret-Hop", "Proxy-Authorization"} {
					if v, ok := got.Header[k]; ok {
						t.Errorf("%s %q reached the upstream", k, v)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.edit)
			if tt.noSess {
				h.sess.sess = nil
			}
			target := tt.target
			if target == "" {
				target = "/api/x"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tt.remote != "" {
				r.RemoteAddr = tt.remote
			}
			if tt.host != "" {
				r.Host = tt.host
			}
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			before := r.Header.Clone()
			h.wantOK(h.serve(r))
			tt.check(t, h.up.last(t))
			if !equalHeader(before, r.Header) {
				t.Errorf("inbound headers changed: %v -> %v", before, r.Header)
			}
		})
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestUpstreamSetCookie(t *testing.T) {
	tests := []struct {
		name       string
		upstream   []string
		refresh    bool // the session needs a refresh: the proxy adds its own cookie
		wantCookie []string
	}{
		{
			name:       "BFF names dropped, others pass",
			upstream:   []string{sessionCookie + ".0=evil; Path=/", "app=1; Path=/", sessionCookie + "-login.x=evil", " " + sessionCookie + ".1 =evil", "theme=dark"},
			wantCookie: []string{"app=1; Path=/", "theme=dark"},
		},
		{
			name:       "only BFF names: no Set-Cookie",
			upstream:   []string{sessionCookie + ".0=evil"},
			wantCookie: nil,
		},
		{
			name:       "no BFF names: untouched",
			upstream:   []string{"a=1", "b=2; HttpOnly"},
			wantCookie: []string{"a=1", "b=2; HttpOnly"},
		},
		{
			name:       "refreshed session cookie kept, upstream's BFF cookie dropped",
			upstream:   []string{sessionCookie + ".0=evil", "app=1"},
			refresh:    true,
			wantCookie: []string{savedMarker, "app=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if tt.refresh {
				h.sess.sess = newSession(10 * time.Second)
			}
			h.up.handler = func(w http.ResponseWriter, r *http.Request) {
				for _, c := range tt.upstream {
					w.Header().Add("Set-Cookie", c)
				}
				io.WriteString(w, "ok")
			}
			w := h.get("/api/x")
			h.wantOK(w)
			got := w.Result().Header.Values("Set-Cookie")
			if !slices.Equal(got, tt.wantCookie) {
				t.Errorf("Set-Cookie %q, want %q", got, tt.wantCookie)
			}
		})
	}
}

func TestTokenModes(t *testing.T) {
	routes := func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{
			{Path: "/user/", Upstream: up.url(t, "")}, // empty mode: user
			{Path: "/opt/", Upstream: up.url(t, ""), Token: proxy.TokenOptional},
			{Path: "/none/", Upstream: up.url(t, ""), Token: proxy.TokenNone},
		}
	}
	tests := []struct {
		name       string
		target     string
		sess       *session.Session
		loadErr    error
		wantErr    error  // at the ErrorHandler; nil means forwarded
		wantBearer string // at the upstream
		wantLoads  int
		wantClears int
	}{
		{name: "user with session", target: "/user/x", sess: newSession(time.Hour), wantBearer: "Bearer AT-old", wantLoads: 1},
		{name: "user without session", target: "/user/x", wantErr: session.ErrNoSession, wantLoads: 1},
		{name: "user with invalid session", target: "/user/x", loadErr: session.ErrInvalid, wantErr: session.ErrInvalid, wantLoads: 1, wantClears: 1},
		{name: "user with expired session", target: "/user/x", loadErr: session.ErrExpired, wantErr: session.ErrExpired, wantLoads: 1, wantClears: 1},
		{name: "user with revoked session", target: "/user/x", loadErr: session.ErrRevoked, wantErr: session.ErrRevoked, wantLoads: 1, wantClears: 1},
		{name: "optional with session", target: "/opt/x", sess: newSession(time.Hour), wantBearer: "Bearer AT-old", wantLoads: 1},
		{name: "optional without session", target: "/opt/x", wantLoads: 1},
		{name: "optional with invalid session", target: "/opt/x", loadErr: session.ErrInvalid, wantLoads: 1, wantClears: 1},
		{name: "none with session", target: "/none/x", sess: newSession(time.Hour)},
		{name: "none with invalid session", target: "/none/x", loadErr: session.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, routes)
			h.sess.sess, h.sess.err = tt.sess, tt.loadErr
			w := h.get(tt.target)
			loads, saves, clears := h.sess.counts()
			if loads != tt.wantLoads || clears != tt.wantClears || saves != 0 {
				t.Errorf("Load/Save/Clear called %d/%d/%d times, want %d/0/%d", loads, saves, clears, tt.wantLoads, tt.wantClears)
			}
			if tt.wantClears > 0 && !slices.Contains(w.Result().Header.Values("Set-Cookie"), clearedMarker) {
				t.Errorf("the deletion cookie is not on the response: %q", w.Result().Header.Values("Set-Cookie"))
			}
			if h.ref.Calls() != 0 {
				t.Errorf("Refresher called %d times", h.ref.Calls())
			}
			if tt.wantErr != nil {
				h.wantErr(w, tt.wantErr)
				if n := len(h.up.requests()); n != 0 {
					t.Errorf("%d requests reached the upstream", n)
				}
				return
			}
			h.wantOK(w)
			if b := bearer(t, h.up.last(t)); b != tt.wantBearer {
				t.Errorf("Authorization %q, want %q", b, tt.wantBearer)
			}
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{{Path: "/api/", Upstream: up.url(t, "")}}
		cfg.Routes[0].Upstream.Host = addr
	})
	w := h.get("/api/x")
	err = h.wantErr(w, proxy.ErrUpstream)
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("error %v does not wrap the dial error", err)
	}
	if strings.Contains(err.Error(), "AT-old") {
		t.Errorf("error %q carries the token", err)
	}
}

func TestUpstreamStatusPassesThrough(t *testing.T) {
	h := newHarness(t, nil)
	h.up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "nope")
	}
	w := h.get("/api/x")
	if w.Code != http.StatusForbidden || w.Body.String() != "nope" {
		t.Errorf("got %d %q, want the upstream's 403 nope", w.Code, w.Body)
	}
	if errs := h.errors(); len(errs) != 0 {
		t.Errorf("an upstream answer went to the ErrorHandler: %v", errs)
	}
}

func TestStreaming(t *testing.T) {
	next := make(chan struct{})
	var closeNext = func() {
		select {
		case <-next:
		default:
			close(next)
		}
	}
	h := newHarness(t, nil)
	h.up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	}
	front := httptest.NewServer(h.p)
	t.Cleanup(front.Close)
	t.Cleanup(closeNext) // runs first: never leave the upstream blocked

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/api/events", nil)
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	readEvent := func() string {
		t.Helper()
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v (got %q)", err, ev.String())
			}
			if line == "\n" {
				return ev.String()
			}
			ev.WriteString(line)
		}
	}
	// The upstream holds the second event until the first has arrived: a
	// proxy that buffers would time out here.
	if ev := readEvent(); ev != "data: one\n" {
		t.Fatalf("first event %q", ev)
	}
	closeNext()
	if ev := readEvent(); ev != "data: two\n" {
		t.Fatalf("second event %q", ev)
	}
}

// TestUntrustedForwardingHeaders: doc.go promises that untrusted
// X-Forwarded-* values do not reach an upstream; frameworks read more of them
// than For/Host/Proto (Spring and ASP.NET: X-Forwarded-Prefix and -Port;
// nginx real_ip and many apps: X-Real-IP), and some route by a path header
// (X-Original-URL) instead of the path the BFF matched.
func TestUntrustedForwardingHeaders(t *testing.T) {
	for _, name := range []string{"X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Real-Ip", "True-Client-Ip",
		"X-Client-Ip", "X-Cluster-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Originating-Ip",
		// Path overrides: an upstream framework would route by them.
		"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
			r.RemoteAddr = "192.0.2.7:4444"
			r.Header.Set(name, "evil")
			h.wantOK(h.serve(r))
			if v, ok := h.up.last(t).Header[name]; ok {
				t.Errorf("%s %q from an untrusted peer reached the upstream", name, v)
			}
		})
	}
}
