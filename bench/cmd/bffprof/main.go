// Command bffprof is the BFF's server package with net/http/pprof on a side
// listener, for CPU profiles of the proxied path. It is not `bff serve`: it
// takes the few settings the benchmark uses from flags and the environment
// (BFF_OIDC_CLIENT_SECRET, BFF_KEYS_SECRETS) and builds server.Config
// directly, with the same defaults `bff serve` gets from an equivalent YAML
// file, and the same http.Server limits as main.go.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "net/http/pprof" // served only on -pprof

	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	public := flag.String("public-url", "http://localhost:8080", "public URL")
	issuer := flag.String("issuer", "", "provider issuer (required)")
	clientID := flag.String("client-id", "bff", "client id")
	upstream := flag.String("upstream", "", "upstream of the /api/ route (required)")
	pprofAddr := flag.String("pprof", "127.0.0.1:6060", "serve /debug/pprof/ on this address")
	flag.Parse()

	secret, err := keys.ParseSecret(os.Getenv("BFF_KEYS_SECRETS"))
	if err != nil {
		log.Fatalf("bffprof: BFF_KEYS_SECRETS: %v", err)
	}
	up, err := url.Parse(*upstream)
	if err != nil || up.Host == "" {
		log.Fatalf("bffprof: -upstream must be an absolute URL")
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(server.Config{
		PublicURL: *public,
		OIDC: oauth.Config{
			Issuer: *issuer, ClientID: *clientID, ClientSecret: os.Getenv("BFF_OIDC_CLIENT_SECRET"),
			Scopes: []string{"openid", "profile", "email", "offline_access"}, PostLogoutRedirectURL: *public + "/",
		},
		Secrets:  [][]byte{secret},
		Rotation: 24 * time.Hour,
		Lifetime: 8 * time.Hour,
		Routes:   []proxy.Route{{Path: "/api/", Upstream: up, Token: proxy.TokenUser}},
		Logger:   logger,
	})
	if err != nil {
		log.Fatalf("bffprof: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go srv.Run(ctx)
	go func() { log.Print(http.ListenAndServe(*pprofAddr, http.DefaultServeMux)) }()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("bffprof: %v", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	go hs.Serve(ln)
	fmt.Printf("READY %s\n", ln.Addr())
	<-ctx.Done()
	hs.Close()
}
