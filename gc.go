package main

import (
	"log/slog"
	"runtime/debug"
)

// defaultGOGC is the garbage collector's target the BFF runs with unless the
// environment sets GOGC. The BFF's live heap is a few megabytes, so at Go's
// default of 100 it collects every few hundred requests, and each cycle's idle
// mark workers take CPU from whatever shares the machine (the upstream, the
// balancer). At 400 the heap may grow to five times the live heap before a
// collection: ~15 MiB instead of ~5 with an empty revocation list, ~55 MiB
// with 100k entries. Measured in bench/README.md. GOMEMLIMIT, when set, caps
// the heap either way.
const defaultGOGC = 400

// tuneGC applies defaultGOGC when GOGC is not set, and logs what the
// collector runs with.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	if v := getenv("GOGC"); v != "" {
		log.Info("garbage collector", "gogc", v, "from", "GOGC")
		return
	}
	debug.SetGCPercent(defaultGOGC)
	log.Info("garbage collector", "gogc", defaultGOGC, "from", "default")
}
