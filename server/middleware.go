package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/proxy"
)

// noStore marks auth responses as uncacheable and locks them down: they are
// JSON or redirects, never something to frame or sniff.
func noStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		c.Next()
	}
}

// recovery turns a panic into a JSON 500 without a stack trace to the client.
func (s *Server) recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", c.Request.URL.Path, "panic", fmt.Sprint(v))
				if !c.Writer.Written() {
					s.abort(c, errPanic)
				}
			}
		}()
		c.Next()
	}
}

// accessLog assigns a request id (kept from a trusted proxy, else new), sends
// it upstream and back, and logs one line per request: never the query
// string, a header value or a cookie.
func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		r := c.Request
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 || !proxy.TrustedPeer(s.cfg.TrustedProxies, r.RemoteAddr) || !printable(id) {
			id = newRequestID()
			r.Header.Set("X-Request-Id", id)
		}
		c.Writer.Header().Set("X-Request-Id", id)
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = s.proxy.RoutePath(r.URL.Path)
			if route == "" {
				route = "other"
			}
		}
		elapsed := time.Since(start)
		s.metrics.observeRequest(route, c.Writer.Status(), elapsed)
		if h := s.accessLogger.Handler(); h.Enabled(r.Context(), slog.LevelInfo) {
			// Straight to the handler: Logger.LogAttrs would walk the stack
			// for a source position that no handler here prints.
			rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
			rec.AddAttrs(
				slog.String("id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", c.Writer.Status()),
				slog.Int("bytes", c.Writer.Size()),
				slog.Int64("duration_us", elapsed.Microseconds()),
				slog.String("peer", hostOnly(r.RemoteAddr)),
			)
			h.Handle(r.Context(), rec)
		}
	}
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	var h [24]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}
