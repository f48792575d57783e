package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

// TestUpstreamDiesMidBody: an upstream that dies after part of its body
// makes the proxy abort the response (http.ErrAbortHandler): the client's
// connection is cut, so it cannot take the partial body for a whole one,
// and the BFF logs no "panic serving request" for it. The complete answer
// of the same upstream is the control.
func TestUpstreamDiesMidBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		if r.URL.Path == "/dying/whole" {
			w.Write([]byte(strings.Repeat("x", 1000)))
			return
		}
		w.Write([]byte(strings.Repeat("x", 100)))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		c.Routes = append(c.Routes, proxy.Route{Path: "/dying/", Upstream: upURL, Token: proxy.TokenNone})
	}})
	b := e.browser()
	get := func(path string) (int, int, error) {
		req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
		for k, v := range e.apiHeaders() {
			req.Header[k] = v
		}
		resp, err := b.bff.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, len(b), err
	}
	if status, n, err := get("/dying/whole"); status != http.StatusOK || n != 1000 || err != nil {
		t.Fatalf("whole answer: %d, %d bytes, %v", status, n, err)
	}
	status, n, err := get("/dying/cut")
	if err == nil {
		t.Errorf("a body cut at %d of 1000 bytes read without error (status %d)", n, status)
	}
	time.Sleep(100 * time.Millisecond) // the handler's log lines
	if strings.Contains(e.logs.String(), "panic serving request") {
		t.Errorf("an aborted proxy response was logged as a panic:\n%s", e.logs)
	}
}
