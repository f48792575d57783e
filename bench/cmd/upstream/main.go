// Command upstream is the benchmark's tiny API: every request on -addr gets
// 200 and a small JSON body. It counts the requests it served and, among
// them, those that carried `Authorization: Bearer` with a JWT-shaped token
// (three non-empty base64url segments). GET /stats on -stats-addr (a port the
// load generator never hits) answers {"total":N,"bearer":M}.
//
// It does not verify the token: the benchmark only proves that every measured
// request reached the upstream with a bearer, not that the token is valid
// (the end-to-end tests do that).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var body = []byte(`{"items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"}],"page":2}` + "\n")

type counters struct {
	total  atomic.Int64
	bearer atomic.Int64
}

func (c *counters) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.total.Add(1)
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && jwtShaped(tok) {
		c.bearer.Add(1)
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	w.Write(body)
}

// jwtShaped reports whether tok is three dot-separated base64url segments,
// the first two non-empty.
func jwtShaped(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the API")
	statsAddr := flag.String("stats-addr", "127.0.0.1:0", "listen address of GET /stats")
	flag.Parse()

	c := &counters{}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	sln, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	stats := http.NewServeMux()
	stats.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{"total": c.total.Load(), "bearer": c.bearer.Load()})
	})
	go (&http.Server{Handler: stats, ReadHeaderTimeout: 5 * time.Second}).Serve(sln)
	go (&http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 32 << 10}).Serve(ln)
	fmt.Printf("READY %s %s\n", ln.Addr(), sln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
