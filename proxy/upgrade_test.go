package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
)

// TestUpgradeRequest: only a WebSocket upgrade is forwarded; any other
// (h2c, TLS, several protocols at once) is refused before the session is
// read, on every route. The forwarded rows are the control.
func TestUpgradeRequest(t *testing.T) {
	routes := func(cfg *proxy.Config, up *upstream) {
		cfg.Routes = []proxy.Route{
			{Path: "/api/", Upstream: up.url(t, "")},
			{Path: "/pub/", Upstream: up.url(t, ""), Token: proxy.TokenNone},
		}
	}
	tests := []struct {
		name        string
		target      string // "" means /api/x
		connection  []string
		upgrade     []string
		refused     bool
		wantUpgrade string // at the upstream, when forwarded
	}{
		{name: "h2c", connection: []string{"Upgrade, HTTP2-Settings"}, upgrade: []string{"h2c"}, refused: true},
		{name: "h2c on a token-none route", target: "/pub/x", connection: []string{"Upgrade"}, upgrade: []string{"h2c"}, refused: true},
		{name: "upgrade token in a second Connection line", connection: []string{"keep-alive", "upgrade"}, upgrade: []string{"TLS/1.2"}, refused: true},
		{name: "no Upgrade header", connection: []string{"Upgrade"}, refused: true},
		{name: "empty Upgrade header", connection: []string{"Upgrade"}, upgrade: []string{""}, refused: true},
		{name: "websocket and another protocol", connection: []string{"Upgrade"}, upgrade: []string{"websocket, h2c"}, refused: true},
		{name: "websocket and another protocol on two lines", connection: []string{"Upgrade"}, upgrade: []string{"websocket", "h2c"}, refused: true},
		{name: "another protocol first", connection: []string{"Upgrade"}, upgrade: []string{"h2c", "websocket"}, refused: true},
		{name: "websocket with a version", connection: []string{"Upgrade"}, upgrade: []string{"websocket/13"}, refused: true},

		{name: "websocket", connection: []string{"Upgrade"}, upgrade: []string{"websocket"}, wantUpgrade: "websocket"},
		{name: "websocket, other case, among Connection tokens", connection: []string{"keep-alive, upgrade"}, upgrade: []string{" WebSocket "}, wantUpgrade: "WebSocket"},
		{name: "websocket on a token-none route", target: "/pub/x", connection: []string{"Upgrade"}, upgrade: []string{"websocket"}, wantUpgrade: "websocket"},
		// Without "Connection: upgrade" there is no upgrade: Upgrade is a
		// hop-by-hop header and does not reach the upstream.
		{name: "Upgrade without Connection: upgrade", upgrade: []string{"h2c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, routes)
			target := tt.target
			if target == "" {
				target = "/api/x"
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.Header["Connection"] = tt.connection
			r.Header["Upgrade"] = tt.upgrade
			w := h.serve(r)
			loads, _, _ := h.sess.counts()
			if tt.refused {
				h.wantErr(w, proxy.ErrUpgrade)
				if n := len(h.up.requests()); n != 0 {
					t.Errorf("%d requests reached the upstream", n)
				}
				if loads != 0 {
					t.Errorf("the session was loaded %d times before the refusal", loads)
				}
				return
			}
			h.wantOK(w) // the test upstream answers 200 to a handshake
			if got := h.up.last(t).Header.Get("Upgrade"); got != tt.wantUpgrade {
				t.Errorf("upstream got Upgrade %q, want %q", got, tt.wantUpgrade)
			}
			if wantLoads := map[bool]int{true: 0, false: 1}[tt.target == "/pub/x"]; loads != wantLoads {
				t.Errorf("session loaded %d times, want %d", loads, wantLoads)
			}
		})
	}
}

// rawUpstream answers every connection with a fixed response head, then
// sends rawMarker and echoes what it reads: a tunnel, once switched.
type rawUpstream struct {
	l    net.Listener
	head string
	mu   sync.Mutex
	reqs []*http.Request
	wg   sync.WaitGroup
}

const rawMarker = "RAW-BYTES-FROM-UPSTREAM"

func newRawUpstream(t *testing.T, head string) *rawUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{l: l, head: head}
	var conns []net.Conn
	u.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			conns = append(conns, c)
			u.mu.Unlock()
			u.wg.Go(func() { u.serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		u.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, req)
	u.mu.Unlock()
	if _, err := io.WriteString(c, u.head+rawMarker); err != nil {
		return
	}
	io.Copy(c, br)
}

func (u *rawUpstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// TestUpgradeResponse: an upstream's 101 is tunnelled only when it switches
// to the protocol the client asked for (ReverseProxy's own check, kept by
// the proxy): a 101 to a request that asked for no upgrade, or to another
// protocol, never lets raw bytes through. A genuine WebSocket switch is the
// control: its raw bytes do pass, both ways.
func TestUpgradeResponse(t *testing.T) {
	const (
		switchWS   = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
		switchH2C  = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
		switchNone = "HTTP/1.1 101 Switching Protocols\r\n\r\n"
	)
	tests := []struct {
		name      string
		websocket bool // the client asks for a WebSocket upgrade
		head      string
		tunnel    bool
	}{
		{name: "websocket switched to websocket", websocket: true, head: switchWS, tunnel: true},
		{name: "no upgrade asked, h2c switched", head: switchH2C},
		{name: "no upgrade asked, websocket switched", head: switchWS},
		{name: "no upgrade asked, 101 without Upgrade", head: switchNone},
		{name: "websocket asked, h2c switched", websocket: true, head: switchH2C},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := newRawUpstream(t, tt.head)
			h := newHarness(t, func(cfg *proxy.Config, up *upstream) {
				cfg.Routes = []proxy.Route{{Path: "/api/", Upstream: up.url(t, "")}}
				cfg.Routes[0].Upstream.Host = raw.l.Addr().String()
			})
			front := httptest.NewServer(h.p)
			t.Cleanup(front.Close)

			c, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			req := "GET /api/x HTTP/1.1\r\nHost: app.example.com\r\n"
			if tt.websocket {
				req += "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			}
			if _, err := io.WriteString(c, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if raw.requests() != 1 {
				t.Fatalf("upstream saw %d requests, want 1", raw.requests())
			}
			if !tt.tunnel {
				if resp.StatusCode != errStatus {
					t.Errorf("status %d, want the ErrorHandler's %d", resp.StatusCode, errStatus)
				}
				h.wantErr(nil, proxy.ErrUpstream)
				// Whatever follows the refusal must not be the upstream's bytes.
				resp.Body.Close()
				c.SetDeadline(time.Now().Add(200 * time.Millisecond))
				rest, _ := io.ReadAll(br)
				if strings.Contains(string(rest), rawMarker) {
					t.Errorf("the upstream's raw bytes reached the client: %q", rest)
				}
				return
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			got := make([]byte, len(rawMarker))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != rawMarker {
				t.Fatalf("tunnel read %q, %v; want %q", got, err, rawMarker)
			}
			if _, err := io.WriteString(c, "ping"); err != nil {
				t.Fatal(err)
			}
			echo := make([]byte, 4)
			if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "ping" {
				t.Fatalf("echo %q, %v", echo, err)
			}
			if errs := h.errors(); len(errs) != 0 {
				t.Errorf("ErrorHandler got %v", errs)
			}
		})
	}
}
