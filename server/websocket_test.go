package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

// TestWebSocketCounted: a WebSocket handshake that the upstream accepts
// leaves on the hijacked connection, so no status is written through the
// handler: the access log and bff_http_requests_total must still say 101.
func TestWebSocketCounted(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("upstream hijack: %v", err)
			return
		}
		defer conn.Close()
		// RFC 6455's example key and its accept value.
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
		buf.Flush()
	}))
	t.Cleanup(ws.Close)
	wsURL, _ := url.Parse(ws.URL)
	e := newEnv(t, envOptions{config: func(c *server.Config) {
		c.Routes = append(c.Routes, proxy.Route{Path: "/ws/", Upstream: wsURL, Token: proxy.TokenNone})
	}})
	r := e.browser().do(http.MethodGet, "/ws/socket", http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Origin": {e.cfg.PublicURL},
	})
	if r.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: status %d, want 101; body %s", r.StatusCode, r.body)
	}
	// The upstream closed the socket, so the handler returns; wait for its
	// access log line, then read the metric.
	const logged = `"msg":"request","id":`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(e.logs.String(), `"path":"/ws/socket"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the handshake:\n%s", e.logs)
		}
	}
	n := 0
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		if strings.Contains(line, logged) && strings.Contains(line, `"path":"/ws/socket"`) {
			if n++; !strings.Contains(line, `"status":101`) {
				t.Errorf("access log %s, want status 101", line)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d access log lines for the handshake, want 1:\n%s", n, e.logs)
	}
	if got := metricValue(t, e.srv, `bff_http_requests_total{code="1xx",route="/ws/"}`); got != 1 {
		t.Errorf(`bff_http_requests_total{code="1xx",route="/ws/"} = %v, want 1`, got)
	}
}
