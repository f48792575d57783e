// Command bareproxy is the benchmark's floor: an httputil.ReverseProxy with
// Rewrite and SetURL and nothing else, on a transport with the settings the
// BFF's proxy gives its own (a clone of http.DefaultTransport with
// MaxIdleConnsPerHost 128 and MaxIdleConns 512), behind an http.Server with
// the BFF's header limit. It forwards every request as is, cookies included.
//
// With -pprof it also serves net/http/pprof on that address (for profiles).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "net/http/pprof" // served only on -pprof
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "upstream base URL (required)")
	pprofAddr := flag.String("pprof", "", "serve /debug/pprof/ on this address")
	idle := flag.Int("max-idle-conns-per-host", 128, "transport idle pool per host (the BFF's default)")
	flag.Parse()

	up, err := url.Parse(*upstream)
	if err != nil || up.Host == "" {
		log.Fatalf("bareproxy: -upstream must be an absolute URL")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * *idle
	t.MaxIdleConnsPerHost = *idle
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(up) },
		Transport: t,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("bareproxy: %v", err)
	}
	if *pprofAddr != "" {
		go func() { log.Print(http.ListenAndServe(*pprofAddr, http.DefaultServeMux)) }()
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	go srv.Serve(ln)
	fmt.Printf("READY %s\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
