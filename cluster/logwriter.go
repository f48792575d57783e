package cluster

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logWriter routes memberlist's log lines ("[LEVEL] memberlist: ...") to
// slog, at most logBurst warnings per second: anyone who can reach the
// gossip port can make memberlist complain about undecryptable packets, and
// that must not flood the logs.
//
// It is also how dropped traffic is counted: memberlist drops a packet or
// stream it cannot decrypt (wrong cluster key, garbage, no encryption) and
// says so only in its log, offering no hook. Each line that reports an
// inbound packet or stream refused (or dropped for overload) calls onDrop,
// before any rate limit.
type logWriter struct {
	log     *slog.Logger
	limiter *lineLimiter
	onDrop  func() // may be nil
}

const logBurst = 10

// refusals are the phrases of memberlist v0.7.0's log lines for inbound
// traffic it drops (net.go, label.go, net_transport.go). A test sends such
// traffic and fails if an upgrade rewords them.
var refusals = []string{
	"Decrypt packet failed", // UDP: not encrypted with the cluster key
	"failed to receive:",    // TCP: undecryptable, unencrypted, oversized
	"failed to receive and remove the stream label header", // TCP
	"with unacceptable label",                              // packet or stream
	"double packet label header",
	"double stream label header",
	"cannot decode label",
	"label header cannot be empty",
	"UDP packet too short",
	"invalid checksum for UDP packet",
	"missing message type byte",
	"Received invalid msgType",
	") not supported", // "msg type (%d) not supported", "Message type (%d) not supported"
	"Failed to decode",
	"Failed to decompress payload",
	"Failed to receive user message",
	"Failed to read remote state",
	"handler queue full, dropping message", // overload: genuine gossip lost
}

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	if strings.HasPrefix(line, "[ERR]") || strings.HasPrefix(line, "[WARN]") {
		level = slog.LevelWarn
		if w.onDrop != nil && refused(line) {
			w.onDrop()
		}
		if !w.limiter.allow(time.Now()) {
			return len(p), nil
		}
	}
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

// refused reports whether a memberlist log line reports dropped inbound
// traffic.
func refused(line string) bool {
	for _, r := range refusals {
		if strings.Contains(line, r) {
			return true
		}
	}
	return false
}

var _ io.Writer = logWriter{}

// lineLimiter allows logBurst lines per second.
type lineLimiter struct {
	mu     sync.Mutex
	second int64
	n      int
}

func (l *lineLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second, l.n = s, 0
	}
	l.n++
	return l.n <= logBurst
}
