//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
)

// Built with `-tags pprof` (bench/profile.sh does), the metrics listener
// also serves /debug/pprof/. Never in a release build: the profiles show
// memory, and the metrics listener may be reachable by more than operators.
func init() { debugHandler = http.DefaultServeMux }
