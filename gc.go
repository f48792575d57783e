package main

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// defaultGOGC is the garbage collector's target the BFF runs with unless the
// environment sets GOGC and while its live heap is small. The BFF's live
// heap is a few megabytes, so at Go's default of 100 it collects every few
// hundred requests, and each cycle's idle mark workers take CPU from
// whatever shares the machine (the upstream, the balancer). At 400 the heap
// may grow to five times the live heap before a collection: ~15 MiB instead
// of ~5 with an empty revocation list. Measured in bench/README.md.
// GOMEMLIMIT, when set, caps the heap either way.
const defaultGOGC = 400

// gcHeadroom bounds what defaultGOGC may add: a live heap that is large (a
// revocation list of 400k entries is ~36 MiB) gets the GOGC that lets the
// heap grow by about this much, down to Go's 100, instead of four times
// itself (RSS 225 MiB at 400k entries with a fixed 400).
const gcHeadroom = 64 << 20

// gcPercentFor is the GOGC for a live heap of live bytes: defaultGOGC while
// that lets the heap grow by no more than gcHeadroom, then less, never under
// Go's default 100.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return defaultGOGC
	}
	return int(min(defaultGOGC, max(100, gcHeadroom*100/live)))
}

// tuneGC applies defaultGOGC when GOGC is not set, and logs what the
// collector runs with. It reports whether the BFF chose (and so may adjust
// with adaptGC) the percent.
func tuneGC(getenv func(string) string, log *slog.Logger) bool {
	if v := getenv("GOGC"); v != "" {
		log.Info("garbage collector", "gogc", v, "from", "GOGC")
		return false
	}
	debug.SetGCPercent(defaultGOGC)
	log.Info("garbage collector", "gogc", defaultGOGC, "from", "default", "headroom_mib", gcHeadroom>>20)
	return true
}

// adaptGC sets (with set: debug.SetGCPercent) the GOGC gcPercentFor gives
// for the live heap after the last collection: at once, after a collection
// that also returns free memory to the system (the revocation list was just
// loaded: what is live now is what stays, and loading it left garbage), then
// every interval, until stop is called.
func adaptGC(interval time.Duration, set func(int) int, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		cur := defaultGOGC
		debug.FreeOSMemory()
		for first := true; ; first = false {
			if !first {
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return // not in this runtime: keep what is set
			}
			if next := gcPercentFor(sample[0].Value.Uint64()); next != cur {
				set(next)
				log.Debug("garbage collector", "gogc", next, "live_mib", sample[0].Value.Uint64()>>20)
				cur = next
			}
		}
	}()
	return func() { close(done) }
}
