package main

import (
	"bytes"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
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
			tuneGC(func(k string) string {
				if k == "GOGC" {
					return tt.env
				}
				return ""
			}, slog.New(slog.NewTextHandler(&out, nil)))
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent %d, want %d", got, tt.want)
			}
			if !strings.Contains(out.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", out.String(), tt.wantLog)
			}
		})
	}
}
