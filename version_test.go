package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	info := func(v string, settings ...string) *debug.BuildInfo {
		b := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/bff-project/bff", Version: v}}
		for i := 0; i+1 < len(settings); i += 2 {
			b.Settings = append(b.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return b
	}
	tests := []struct {
		name    string
		ldflags [3]string // version, commit, date
		info    *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"go install module@version", [3]string{}, info("v1.2.3"), true,
			"bff v1.2.3 (commit unknown, date unknown, go1.26.8)"},
		{"built from a clone", [3]string{}, info("(devel)", "vcs.revision", "abc123", "vcs.time", "2026-11-30T03:00:00Z", "vcs.modified", "false"), true,
			"bff (devel) (commit abc123, date 2026-11-30T03:00:00Z, go1.26.8)"},
		{"clone with local changes", [3]string{}, info("(devel)", "vcs.revision", "abc123", "vcs.modified", "true"), true,
			"bff (devel) (commit abc123+modified, date unknown, go1.26.8)"},
		{"release ldflags win", [3]string{"v2.0.0", "def456", "2026-12-01"}, info("(devel)", "vcs.revision", "abc123", "vcs.modified", "true"), true,
			"bff v2.0.0 (commit def456, date 2026-12-01, go1.26.8)"},
		{"no build info", [3]string{}, nil, false, "bff unknown (commit unknown, date unknown, unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := [3]string{version, commit, date}
			version, commit, date = tt.ldflags[0], tt.ldflags[1], tt.ldflags[2]
			defer func() { version, commit, date = old[0], old[1], old[2] }()
			if got := versionLine(tt.info, tt.ok); got != tt.want {
				t.Errorf("versionLine = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersionCommand: `bff version` prints one line naming this binary's Go
// version (the test binary's build info).
func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, noEnv, &out); err != nil {
		t.Fatalf("version: %v", err)
	}
	if s := out.String(); !strings.HasPrefix(s, "bff ") || !strings.Contains(s, runtime.Version()) || strings.Count(s, "\n") != 1 {
		t.Errorf("version printed %q, want one line with %s", s, runtime.Version())
	}
}
