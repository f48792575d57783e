package server

// An internal test (like returnto_test.go): it shortens otherBodyTimeout,
// which the server_test harness cannot reach. The BFF is built the way the
// harness builds it, with a provider that is never contacted: no case here
// signs in (the routes send no token).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

const (
	testBodyTimeout = 300 * time.Millisecond // routes' and otherBodyTimeout in these tests
	testBodyMinRate = 10 << 10               // bytes per second
	streamEvents    = 8                      // events the streaming upstream sends, 100ms apart
)

// deadlineEnv is a BFF on a real TCP listener in front of an upstream that
// reports what it received.
type deadlineEnv struct {
	t        *testing.T
	addr     string // the BFF's host:port
	url      string
	upstream chan upstreamBody // one per request the upstream got
}

type upstreamBody struct {
	n   int
	err error
}

func newDeadlineEnv(t *testing.T) *deadlineEnv {
	t.Helper()
	old := otherBodyTimeout
	otherBodyTimeout = testBodyTimeout
	t.Cleanup(func() { otherBodyTimeout = old })

	e := &deadlineEnv{t: t, upstream: make(chan upstreamBody, 16)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		e.upstream <- upstreamBody{len(b), err}
		if err != nil {
			return
		}
		if strings.HasPrefix(r.URL.Path, "/stream/") {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range streamEvents {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"received":%d}`, len(b))
	}))
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)

	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	public := "http://" + ts.Listener.Addr().String()
	route := func(path string, timeout time.Duration) proxy.Route {
		return proxy.Route{Path: path, Upstream: upURL, Token: proxy.TokenNone, BodyTimeout: timeout, BodyMinRate: testBodyMinRate}
	}
	s, err := New(Config{
		PublicURL: public,
		OIDC:      oauth.Config{Issuer: "http://127.0.0.1:1", ClientID: "bff-test", ClientSecret: "client-secret"},
		Secrets:   [][]byte{[]byte("0123456789abcdef0123456789ABCDEF-test-master")},
		Routes: []proxy.Route{
			route("/api/", testBodyTimeout),
			route("/stream/", testBodyTimeout),
			route("/unlimited/", -1),
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.Config.Handler = s.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	e.addr, e.url = ts.Listener.Addr().String(), public
	return e
}

// exchange is one request sent by hand on a TCP connection.
type exchange struct {
	resp    *http.Response
	body    string
	elapsed time.Duration // from the first body byte to the response
	sent    int           // body bytes sent by the time the response came
	conn    net.Conn
	br      *bufio.Reader
}

// send writes head, then body in pieces of piece bytes every interval,
// while reading the response; it stops sending when the response comes.
func (e *deadlineEnv) send(head string, body []byte, piece int, every time.Duration) *exchange {
	t := e.t
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var sent atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; i < len(body); i += piece {
			p := body[i:min(i+piece, len(body))]
			sent.Add(int64(len(p))) // before: the answer may come before Write returns
			if _, err := conn.Write(p); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
		}
	}()
	x := &exchange{conn: conn, br: bufio.NewReader(conn)}
	x.resp, err = http.ReadResponse(x.br, nil)
	x.elapsed, x.sent = time.Since(start), int(sent.Load())
	close(stop)
	<-stopped
	if err != nil {
		t.Fatalf("reading the response: %v (after %v, %d bytes sent)", err, x.elapsed, x.sent)
	}
	b, err := io.ReadAll(x.resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	x.body = string(b)
	return x
}

// head is a request head with a Content-Length body.
func head(method, path string, n int, extra ...string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: bff.test\r\nX-CSRF: 1\r\nContent-Type: application/x-www-form-urlencoded\r\n%sContent-Length: %d\r\n\r\n",
		method, path, strings.Join(extra, ""), n)
}

func errorCode(t *testing.T, x *exchange) string {
	t.Helper()
	var v struct{ Error string }
	if err := json.Unmarshal([]byte(x.body), &v); err != nil {
		t.Fatalf("status %d, body %q: not a JSON error", x.resp.StatusCode, x.body)
	}
	return v.Error
}

func TestBodyDeadline(t *testing.T) {
	e := newDeadlineEnv(t)
	form := []byte("logout_token=" + strings.Repeat("x", 67)) // 80 bytes
	upload := bytes.Repeat([]byte("u"), 64<<10)
	tests := []bodyCase{
		{
			// The handler passes the read's error on; classify puts a
			// body timeout first.
			name: "trickle to back-channel logout is cut", path: "/auth/backchannel-logout", body: form,
			piece: 1, every: 50 * time.Millisecond, cut: true, status: http.StatusRequestTimeout, code: "request_timeout",
		},
		{
			name: "back-channel logout sent at once is read", path: "/auth/backchannel-logout", body: form,
			piece: len(form), status: http.StatusServiceUnavailable, code: "temporarily_unavailable", // provider not ready
		},
		{
			name: "trickle to a body never read is cut", path: "/_bff/refresh", body: form,
			piece: 1, every: 50 * time.Millisecond, cut: true, status: http.StatusNotFound, code: "not_found",
		},
		{
			name: "body never read, sent at once", path: "/_bff/refresh", body: form,
			piece: len(form), status: http.StatusNotFound, code: "not_found", reuse: true,
		},
		{
			name: "trickle to a route is cut", path: "/api/upload", body: form,
			piece: 1, every: 50 * time.Millisecond, cut: true, status: http.StatusRequestTimeout, code: "request_timeout",
			upstream: upstreamIncomplete,
		},
		{
			name: "upload at a fair rate outlasts the timeout", path: "/api/upload", body: upload,
			piece: 4 << 10, every: 50 * time.Millisecond, status: http.StatusOK, // 80 KB/s for 0.8s
			upstream: upstreamComplete,
		},
		{
			name: "route without a limit waits for a trickle", path: "/unlimited/upload", body: form[:10],
			piece: 1, every: 60 * time.Millisecond, status: http.StatusOK,
			upstream: upstreamComplete,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, e) })
	}
}

type upstreamWant int

const (
	upstreamNone upstreamWant = iota // the request is not proxied
	upstreamComplete
	upstreamIncomplete
)

type bodyCase struct {
	name, path string
	body       []byte
	piece      int
	every      time.Duration
	cut        bool // answered before the whole body was sent, within the limit
	status     int
	code       string // JSON error code, for an error status
	upstream   upstreamWant
	reuse      bool // the connection then serves another request, after the timeout
}

func (tt bodyCase) run(t *testing.T, e *deadlineEnv) {
	e.t = t
	for len(e.upstream) > 0 {
		<-e.upstream
	}
	sendTime := time.Duration((len(tt.body)+tt.piece-1)/tt.piece-1) * tt.every
	x := e.send(head(http.MethodPost, tt.path, len(tt.body)), tt.body, tt.piece, tt.every)
	t.Logf("answered after %v, %d of %d bytes sent", x.elapsed.Round(time.Millisecond), x.sent, len(tt.body))
	if x.resp.StatusCode != tt.status {
		t.Fatalf("status %d, want %d; body %s", x.resp.StatusCode, tt.status, x.body)
	}
	if tt.code != "" {
		if got := errorCode(t, x); got != tt.code {
			t.Errorf("error %q, want %q", got, tt.code)
		}
	}
	if tt.cut {
		// The limit is testBodyTimeout after the first read, plus what 80
		// bytes earn at a route's rate (8 ms); the client would take 4 s.
		if x.sent >= len(tt.body) || x.elapsed > testBodyTimeout+time.Second {
			t.Errorf("answered after %v with %d of %d bytes sent; want the body cut within %v", x.elapsed, x.sent, len(tt.body), testBodyTimeout)
		}
		if x.elapsed < testBodyTimeout-50*time.Millisecond {
			t.Errorf("answered after %v, before the timeout of %v", x.elapsed, testBodyTimeout)
		}
		// What is left of the body must not be read as a next request.
		if !x.resp.Close {
			t.Errorf("connection kept after a cut body")
		}
	} else if x.sent != len(tt.body) || x.elapsed < sendTime {
		t.Errorf("answered after %v with %d of %d bytes sent; want the whole body read (%v)", x.elapsed, x.sent, len(tt.body), sendTime)
	}
	if tt.reuse {
		// A deadline left for the server's discard of an unread body does
		// not outlive the request: the server sets its own for the next.
		time.Sleep(testBodyTimeout + 100*time.Millisecond)
		x.conn.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(x.conn, "GET /healthz HTTP/1.1\r\nHost: bff.test\r\n\r\n")
		resp, err := http.ReadResponse(x.br, nil)
		if err != nil || x.resp.Close {
			t.Fatalf("next request on the connection: %v (first answer closed it: %v)", err, x.resp.Close)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("next request on the connection: status %d", resp.StatusCode)
		}
	}
	switch tt.upstream {
	case upstreamNone:
		select {
		case got := <-e.upstream:
			t.Errorf("upstream got a request: %+v", got)
		default:
		}
	case upstreamComplete, upstreamIncomplete:
		select {
		case got := <-e.upstream:
			complete := got.err == nil && got.n == len(tt.body)
			if complete != (tt.upstream == upstreamComplete) {
				t.Errorf("upstream got %d of %d bytes (err %v), complete %v; want complete %v", got.n, len(tt.body), got.err, complete, tt.upstream == upstreamComplete)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("upstream never got the request")
		}
	}
}

// TestBodyDeadlineDefault: at the default timeout of the BFF's own
// endpoints (not the tests' 300 ms), a back-channel logout whose body
// arrives in pieces over a second is read whole: the default is seconds,
// not zero. The cut at 300 ms in TestBodyDeadline is the control.
func TestBodyDeadlineDefault(t *testing.T) {
	def := otherBodyTimeout
	e := newDeadlineEnv(t) // restores def when the test ends
	otherBodyTimeout = def
	if def < 5*time.Second {
		t.Errorf("otherBodyTimeout %v: a provider's logout token on a slow link gets less than 5 s", def)
	}
	form := []byte("logout_token=" + strings.Repeat("x", 67))
	bodyCase{
		name: "slow back-channel logout at the default timeout", path: "/auth/backchannel-logout", body: form,
		piece: 20, every: 350 * time.Millisecond, status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
	}.run(t, e)
}

// A handler that has read the whole body and then streams its answer for
// longer than the body timeout is not cut: no deadline is left on the
// connection once the body has ended (Go's server then reads it in the
// background, and a deadline firing there would cancel the request).
func TestBodyDeadlineSparesStreamedResponse(t *testing.T) {
	e := newDeadlineEnv(t)
	tests := []struct {
		name string
		body io.Reader
	}{
		{"content-length body", strings.NewReader(`{"q":1}`)},
		{"chunked body", io.MultiReader(strings.NewReader(`{"q":1}`))}, // unknown length
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.url+"/stream/events", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-CSRF", "1")
			start := time.Now()
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			events := 0
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					events++
				}
			}
			elapsed := time.Since(start)
			if err := sc.Err(); err != nil || events != streamEvents {
				t.Fatalf("got %d of %d events in %v, err %v: the stream was cut", events, streamEvents, elapsed, err)
			}
			if elapsed < 2*testBodyTimeout {
				t.Fatalf("stream took %v, not longer than the body timeout %v: the test proves nothing", elapsed, testBodyTimeout)
			}
			if got := <-e.upstream; got.err != nil || got.n != 7 {
				t.Errorf("upstream got %d bytes, err %v", got.n, got.err)
			}
		})
	}
}

// A chunked request body, with or without a Content-Length beside it, is
// answered with Connection: close and the connection is closed (RFC 9112
// section 6.1); a Content-Length body keeps the connection for the next
// request.
func TestChunkedBodyClosesConnection(t *testing.T) {
	e := newDeadlineEnv(t)
	const chunked = "5\r\nhello\r\n0\r\n\r\n"
	tests := []struct {
		name      string
		head      string
		body      string
		wantClose bool
	}{
		{"content-length and chunked", head(http.MethodPost, "/api/x", 5, "Transfer-Encoding: chunked\r\n"), chunked, true},
		{"chunked", strings.Replace(head(http.MethodPost, "/api/x", 0), "Content-Length: 0", "Transfer-Encoding: chunked", 1), chunked, true},
		{"content-length", head(http.MethodPost, "/api/x", 5), "hello", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			x := e.send(tt.head, []byte(tt.body), len(tt.body), 0)
			if x.resp.StatusCode != http.StatusOK || x.body != `{"received":5}` {
				t.Fatalf("status %d, body %s; want the request served", x.resp.StatusCode, x.body)
			}
			<-e.upstream
			if x.resp.Close != tt.wantClose { // Connection: close (ReadResponse removes the header)
				t.Errorf("Connection: close %v, want %v", x.resp.Close, tt.wantClose)
			}
			// Then the same connection: closed by the server, or served again.
			x.conn.SetDeadline(time.Now().Add(2 * time.Second))
			if tt.wantClose {
				if _, err := x.br.ReadByte(); err != io.EOF {
					t.Errorf("read after the response: %v, want EOF (connection closed)", err)
				}
				return
			}
			if _, err := io.WriteString(x.conn, head(http.MethodPost, "/api/x", 5)+"hello"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(x.br, nil)
			if err != nil {
				t.Fatalf("second request on the connection: %v", err)
			}
			resp.Body.Close()
			<-e.upstream
			if resp.StatusCode != http.StatusOK {
				t.Errorf("second request: status %d", resp.StatusCode)
			}
		})
	}
}

// A request without a body is not wrapped and costs no allocation. The
// middleware is called alone: gin's own pooled context allocates under the
// race detector, which empties sync.Pools at random.
func TestBodyLimitsWithoutBodyAllocatesNothing(t *testing.T) {
	limits := (&Server{}).bodyLimits() // a request without a body never reaches the Server's parts
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder()) // fresh: its handler index is an int8
		c.Request = httptest.NewRequest(method, "/x", nil)
		if n := testing.AllocsPerRun(100, func() { limits(c) }); n != 0 {
			t.Errorf("%s without a body: %v allocations, want 0", method, n)
		}
		if c.Request.Body != http.NoBody {
			t.Errorf("%s without a body: body wrapped", method)
		}
	}
}
