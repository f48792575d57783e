package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMetricsMux(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(name)) })
	}
	tests := []struct {
		name  string
		debug http.Handler
		path  string
		want  string
	}{
		{"release build: metrics only", nil, "/metrics", "metrics"},
		{"release build: no /debug/", nil, "/debug/pprof/", "metrics"},
		{"pprof build: metrics", named("debug"), "/metrics", "metrics"},
		{"pprof build: /debug/", named("debug"), "/debug/pprof/", "debug"},
	}
	defer func(h http.Handler) { debugHandler = h }(debugHandler)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debugHandler = tt.debug
			rec := httptest.NewRecorder()
			metricsMux(named("metrics")).ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("%s served by %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
