package main

import (
	"fmt"
	"runtime/debug"
)

// Set at release with -ldflags "-X main.version=... -X main.commit=...
// -X main.date=...": a build from a clone takes them from its build info.
var version, commit, date string

// versionLine describes the build: version, commit, build (or commit) date
// and Go version, each "unknown" when neither ldflags nor the build info say.
func versionLine(info *debug.BuildInfo, ok bool) string {
	v, c, d, g := version, commit, date, "unknown"
	modified := false
	if ok {
		g = info.GoVersion
		if v == "" && info.Main.Version != "" {
			v = info.Main.Version // "(devel)" from a clone, vX.Y.Z from go install module@vX.Y.Z
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.time":
				if d == "" {
					d = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if commit == "" && modified {
		c += "+modified"
	}
	or := func(s string) string {
		if s == "" || s == "+modified" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("bff %s (commit %s, date %s, %s)", or(v), or(c), or(d), g)
}
