package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/proxy"
)

// otherBodyTimeout bounds every body no proxy route serves (back-channel
// logout, internal refresh, a stray POST to the app): those are a few
// kilobytes, so size earns no extra time. A variable so tests can shorten it.
var otherBodyTimeout = 10 * time.Second

// bodyLimits bounds how long a request body may take to arrive, and closes
// connections whose framing is ambiguous.
//
// Deadline: the whole body must have arrived by start + timeout +
// received/minRate seconds, start being the first read, as Apache's
// mod_reqtimeout counts: a long upload at a fair rate goes on, a trickle is
// cut. It is enforced with a read deadline on the connection, set before
// each read of the body; a read past it fails with an error wrapping
// errBodyTimeout (408, also through the proxy, whose error wraps the read's).
// Once the body has ended the deadline is cleared and never set again:
// after EOF the server reads the connection in the background (to notice a
// client that goes away), and a deadline firing there would cancel the
// request while the handler still streams its response. When the handler
// returns before the body ended, the deadline stays: the server then reads
// and discards what is left of the body (up to 256 KB) before it answers,
// and that read must be bounded too; for a body never read at all, a
// deadline of now + timeout is set for it. The server sets its own deadlines
// again before it reads the next request.
//
// A request without a body (GET, HEAD, a WebSocket handshake, which RFC
// 6455 makes a GET without a body) is not wrapped and costs nothing. An
// upgrade request that does carry a body is bounded like any other:
// skipping on the Upgrade header alone would let any client opt out.
//
// Framing: a request with both Content-Length and Transfer-Encoding:
// chunked must be answered and its connection closed (RFC 9112 section
// 6.1), but net/http drops the Content-Length of a chunked request before a
// handler sees it, so the two cannot be told apart. Every request with a
// chunked body is therefore answered with Connection: close. Browsers do not
// send chunked HTTP/1.1 request bodies, and a load balancer that streams
// chunked uploads only opens a new connection. HTTP/2 has no chunked
// framing and is not affected.
func (s *Server) bodyLimits() gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		chunked := slices.Contains(r.TransferEncoding, "chunked")
		if chunked {
			c.Writer.Header().Set("Connection", "close")
		}
		if r.ContentLength == 0 && !chunked {
			c.Next()
			return
		}
		timeout, rate, proxied := otherBodyTimeout, int64(0), false
		if c.FullPath() == "" { // not an auth or internal endpoint, which come first
			var rt proxy.Route
			// Route validation filled in the defaults (30 s, 1024 B/s).
			if rt, proxied = s.proxy.RouteFor(r.URL.Path); proxied {
				timeout, rate = rt.BodyTimeout, rt.BodyMinRate
			}
		}
		if timeout < 0 {
			c.Next()
			return
		}
		b := &deadlineBody{body: r.Body, rc: http.NewResponseController(c.Writer), timeout: timeout, rate: rate, base: time.Now()}
		r.Body = b
		defer b.handlerDone()
		if proxied {
			// A read past the deadline also makes the server cancel the
			// request's context, and the proxy's transport, which reads
			// the body, would then report context.Canceled (a 502) rather
			// than the read's error. So the context the proxy sees ends
			// when the server's does, with errBodyTimeout as the cause when
			// the deadline was what ended it. (Other handlers read the
			// body themselves and get the read's error.)
			parent := r.Context()
			ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
			stop := context.AfterFunc(parent, func() { cancel(b.cause(parent, time.Now())) })
			defer func() { stop(); cancel(context.Canceled) }()
			c.Request = r.WithContext(ctx)
		}
		c.Next()
	}
}

// deadlineBody is a request body whose reads are bounded by a deadline on
// the connection. Read is called by one goroutine at a time (the handler's
// or the proxy transport's); handlerDone may run concurrently with it.
type deadlineBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	rate    int64 // bytes per second; 0 gives no allowance for size

	base     time.Time    // when the request came in
	deadline atomic.Int64 // the connection's read deadline, as time since base; 0: none
	read     atomic.Bool  // a read has started

	start       time.Time // of the first read
	received    int64
	err         error // once set (EOF, timeout), returned without reading
	unsupported bool  // the writer cannot set deadlines (not a server connection)
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.start.IsZero() {
		b.start = time.Now()
		b.read.Store(true)
	}
	b.setDeadline(b.start.Add(b.timeout + allowance(b.received, b.rate)))
	n, err := b.body.Read(p)
	b.received += int64(n)
	switch {
	case err == io.EOF:
		b.err = err
		b.setDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w: %w", errBodyTimeout, err)
		b.err = err
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// handlerDone bounds the server's discard of a body the handler never read.
// A body read in part keeps the deadline of its last read.
func (b *deadlineBody) handlerDone() {
	if !b.read.Load() {
		t := time.Now().Add(b.timeout)
		b.deadline.Store(int64(t.Sub(b.base)))
		b.rc.SetReadDeadline(t)
	}
}

func (b *deadlineBody) setDeadline(t time.Time) {
	if b.unsupported {
		return
	}
	d := int64(0)
	if !t.IsZero() {
		d = int64(t.Sub(b.base))
	}
	b.deadline.Store(d)
	if err := b.rc.SetReadDeadline(t); errors.Is(err, http.ErrNotSupported) {
		b.unsupported = true
	}
}

// cause is why the request's context ended, at now: the body's deadline,
// when it has passed (at its instant, as for the connection's), else the
// server's reason (the client went away, the handler returned).
func (b *deadlineBody) cause(parent context.Context, now time.Time) error {
	if d := b.deadline.Load(); d != 0 && now.Sub(b.base) >= time.Duration(d) {
		return fmt.Errorf("%w: %w", errBodyTimeout, os.ErrDeadlineExceeded)
	}
	return context.Cause(parent)
}

// allowance is the time received bytes earn at rate bytes per second.
func allowance(received, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(received/rate)*time.Second + time.Duration(received%rate)*time.Second/time.Duration(rate)
}
