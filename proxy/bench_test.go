package proxy_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// benchUpstream is a tiny upstream: 200 and two bytes.
func benchUpstream(b *testing.B) *url.URL {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	b.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// benchTransport has the settings proxy.New gives its default transport.
func benchTransport(b *testing.B) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * 128
	t.MaxIdleConnsPerHost = 128
	b.Cleanup(t.CloseIdleConnections)
	return t
}

// benchRequest is the same inbound request for both benchmarks: an API call
// carrying a session cookie and an app cookie.
func benchRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/items?page=2", nil)
	r.Header.Set("Cookie", "app=1; "+sessionCookie+".0=cookie-secret")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("X-CSRF", "1")
	return r
}

func runBench(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	// Warm the connection pool.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, benchRequest())
	if w.Code != http.StatusOK {
		b.Fatalf("warm-up: status %d", w.Code)
	}
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, benchRequest())
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkProxyBare is the baseline: httputil.ReverseProxy with Rewrite and
// SetURL, nothing else.
func BenchmarkProxyBare(b *testing.B) {
	up := benchUpstream(b)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(up) },
		Transport: benchTransport(b),
	}
	runBench(b, rp)
}

// BenchmarkProxySignedIn is this Proxy on a signed-in request whose token
// needs no refresh: session load, header hygiene, bearer injection.
func BenchmarkProxySignedIn(b *testing.B) { benchSignedIn(b, "") }

// BenchmarkProxySignedInDPoP is BenchmarkProxySignedIn with a DPoP-bound
// token: the difference is the cost of a fresh proof (an ES256 or Ed25519
// signature) per request.
func BenchmarkProxySignedInDPoP(b *testing.B) {
	b.Run("ES256", func(b *testing.B) { benchSignedIn(b, "ES256") })
	b.Run("EdDSA", func(b *testing.B) { benchSignedIn(b, "EdDSA") })
}

func benchSignedIn(b *testing.B, dpop string) {
	up := benchUpstream(b)
	clk := newClock()
	sess := newSession(time.Hour)
	var keys *oauth.DPoPKeys
	if dpop != "" {
		var k any
		var err error
		if dpop == "EdDSA" {
			_, k, err = ed25519.GenerateKey(rand.Reader)
		} else {
			k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			b.Fatal(err)
		}
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "d", Algorithm: dpop}}})
		if keys, err = oauth.ParseDPoPKeys(set); err != nil {
			b.Fatal(err)
		}
		sess.DPoPKey = keys.Binding()
	}
	p, err := proxy.New(proxy.Config{
		Routes:       []proxy.Route{{Path: "/api/", Upstream: up}},
		DPoP:         keys,
		Sessions:     &fakeSessions{sess: sess},
		Refresher:    &fakeRefresher{tokens: newTokens()},
		PublicURL:    &url.URL{Scheme: "https", Host: "app.example.com"},
		IsBFFCookie:  isBFFCookie,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { b.Errorf("ErrorHandler: %v", err) },
		Transport:    benchTransport(b),
		Now:          clk.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	runBench(b, p)
}
