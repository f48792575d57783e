package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBodyDeadlineCause: when the request's context ends, the body's
// deadline is the cause from its very instant on (a connection's read
// deadline fails reads from that instant too), so the proxy answers 408,
// not the server's own reason; before it, or with no deadline set, the
// server's reason stands.
func TestBodyDeadlineCause(t *testing.T) {
	base := time.Now()
	parent, cancel := context.WithCancelCause(context.Background())
	serverReason := errors.New("client went away")
	cancel(serverReason)
	for _, tc := range []struct {
		name     string
		deadline time.Duration // after base; 0: none
		at       time.Duration // after base
		timeout  bool
	}{
		{"before the deadline", time.Second, time.Second - time.Nanosecond, false},
		{"at the deadline", time.Second, time.Second, true},
		{"after the deadline", time.Second, time.Second + time.Nanosecond, true},
		{"no deadline", 0, time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &deadlineBody{base: base}
			b.deadline.Store(int64(tc.deadline))
			err := b.cause(parent, base.Add(tc.at))
			if got := errors.Is(err, errBodyTimeout); got != tc.timeout {
				t.Errorf("cause %v: body timeout %v, want %v", err, got, tc.timeout)
			}
			if !tc.timeout && !errors.Is(err, serverReason) {
				t.Errorf("cause %v, want the server's reason", err)
			}
		})
	}
}
