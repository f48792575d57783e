package main

import "net/http"

// debugHandler serves /debug/ on the metrics listener when set (only by a
// build with -tags pprof, see pprof.go).
var debugHandler http.Handler

// metricsMux is the handler of metrics_listen: the metrics, plus /debug/
// in a pprof build.
func metricsMux(metrics http.Handler) http.Handler {
	if debugHandler == nil {
		return metrics
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/", debugHandler)
	mux.Handle("/", metrics)
	return mux
}
