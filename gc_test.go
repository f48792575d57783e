package main

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestTuneGC(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		want     int // the percent in force after tuneGC
		wantLog  string
		previous int
	}{
		{name: "unset: the BFF's default", env: "", previous: 100, want: defaultGOGC, wantLog: "gogc=400 from=default"},
		{name: "GOGC set: left to the runtime", env: "150", previous: 150, want: 150, wantLog: "gogc=150 from=GOGC"},
		{name: "GOGC=off set: left to the runtime", env: "off", previous: -1, want: -1, wantLog: "gogc=off from=GOGC"},
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What the runtime would have read from GOGC at start.
			debug.SetGCPercent(tt.previous)
			var out bytes.Buffer
			chose := tuneGC(func(k string) string {
				if k == "GOGC" {
					return tt.env
				}
				return ""
			}, slog.New(slog.NewTextHandler(&out, nil)))
			if chose != (tt.env == "") {
				t.Errorf("tuneGC reports it chose: %v", chose)
			}
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent %d, want %d", got, tt.want)
			}
			if !strings.Contains(out.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", out.String(), tt.wantLog)
			}
		})
	}
}

// The default applies while the heap it allows stays within gcHeadroom over
// the live heap; a larger live heap (a full revocation list) gets less, down
// to Go's default.
func TestGCPercentFor(t *testing.T) {
	for _, tt := range []struct {
		live uint64
		want int
	}{
		{0, defaultGOGC},
		{5 << 20, defaultGOGC},
		{gcHeadroom / 4, defaultGOGC},
		{gcHeadroom/4 + 1<<20, 376},
		{36 << 20, 177},
		{gcHeadroom, 100},
		{1 << 30, 100},
	} {
		if got := gcPercentFor(tt.live); got != tt.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tt.live>>20, got, tt.want)
		}
	}
}

// adaptGC lowers the percent for a live heap over gcHeadroom/4.
func TestAdaptGC(t *testing.T) {
	ballast := make([]byte, 48<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	runtime.GC()
	set := make(chan int, 1)
	stop := adaptGC(5*time.Millisecond, func(p int) int {
		select {
		case set <- p:
		default:
		}
		return 0
	}, slog.New(slog.DiscardHandler))
	defer stop()
	select {
	case got := <-set:
		if got >= defaultGOGC || got < 100 {
			t.Errorf("with ~48 MiB live, GOGC %d; want under %d and at least 100", got, defaultGOGC)
		}
	case <-time.After(5 * time.Second):
		t.Error("adaptGC set nothing with ~48 MiB live")
	}
	runtime.KeepAlive(ballast)
}
