package server

import (
	"testing"
	"time"
)

// TestAllowance: received bytes earn time at rate bytes per second, the
// fraction of a second included.
func TestAllowance(t *testing.T) {
	for _, tt := range []struct {
		received, rate int64
		want           time.Duration
	}{
		{0, 1024, 0},
		{1024, 1024, time.Second},
		{1536, 1024, 1500 * time.Millisecond},
		{1, 4, 250 * time.Millisecond},
		{10, 0, 0}, // no rate: no allowance
		{10, -1, 0},
	} {
		if got := allowance(tt.received, tt.rate); got != tt.want {
			t.Errorf("allowance(%d, %d) = %s, want %s", tt.received, tt.rate, got, tt.want)
		}
	}
}
