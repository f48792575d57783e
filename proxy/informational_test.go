package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
)

// scriptedUpstream answers every request on its listener with the given bytes.
func scriptedUpstream(t *testing.T, answer string) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, answer)
				time.Sleep(100 * time.Millisecond)
			}()
		}
	}()
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestInformationalResponses: an upstream's 103 Early Hints neither reaches
// the browser (its headers would skip every response filter: a Set-Cookie in
// the BFF's namespace) nor wipes what the BFF set before proxying (the
// refreshed session's cookie: losing it loses the rotated refresh token).
func TestInformationalResponses(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		status int
	}{
		{"early hints, then 200", "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\nSet-Cookie: " + sessionCookie + ".0=evil\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", http.StatusOK},
		{"two 1xx, then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", http.StatusOK},
		{"unasked 100 Continue, then 200", "HTTP/1.1 100 Continue\r\nSet-Cookie: " + sessionCookie + ".0=evil\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", http.StatusOK},
		// Positive control: without a 1xx the same checks hold trivially.
		{"no 1xx", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := scriptedUpstream(t, tt.answer)
			// The access token is inside the refresh margin: the proxy
			// refreshes and sets the new session cookie before forwarding.
			h := newHarness(t, func(c *proxy.Config, _ *upstream) {
				c.Routes = []proxy.Route{{Path: "/api/", Upstream: up}}
			})
			h.sess.sess = newSession(30 * time.Second)
			srv := httptest.NewServer(h.p)
			t.Cleanup(srv.Close)

			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "GET /api/x HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
			raw, _ := io.ReadAll(conn)
			got := string(raw)
			if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
				t.Fatalf("the client's first status line is not the final 200:\n%s", got)
			}
			if strings.Contains(got, "HTTP/1.1 10") || strings.Contains(got, "evil") || strings.Contains(got, "Link:") {
				t.Errorf("an informational response or its headers reached the client:\n%s", got)
			}
			if !strings.Contains(got, "Set-Cookie: "+savedMarker) {
				t.Errorf("the refreshed session cookie was lost:\n%s", got)
			}
			if _, saves, _ := h.sess.counts(); saves != 1 {
				t.Errorf("%d session saves, want 1 (the refresh)", saves)
			}
		})
	}
}
