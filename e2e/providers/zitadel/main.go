// Command zitadel runs the example OpenID provider of github.com/zitadel/oidc
// (example/server) for the BFF's interop matrix.
//
// This main exists because the example's own derives its issuer from the
// port it listens on (http://localhost:PORT/), while the matrix puts a TCP
// gate in front of every provider (to simulate outages): the issuer must be
// the gate's URL and the listener another port. Everything else is the
// example's: its storage (users, 5-minute access tokens, rotating refresh
// tokens), its login page and its OP options (exampleop.SetupServer).
//
// Environment:
//
//	ISSUER         the issuer, exactly as discovery states it (the gate's URL)
//	LISTEN         host:port to listen on
//	CLIENT_ID      the one client, a storage.WebClient (client_secret_basic)
//	CLIENT_SECRET
//	REDIRECT_URI   its redirect URIs, comma-separated
//
// There is no post-logout redirect URI: the example's Client answers
// PostLogoutRedirectURIs with an empty list, and its globs are unexported.
package main

import (
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{AddSource: true, Level: slog.LevelDebug}))
	env := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			logger.Error("missing environment variable", "name", name)
			os.Exit(2)
		}
		return v
	}
	issuer, listen := env("ISSUER"), env("LISTEN")
	storage.RegisterClients(storage.WebClient(env("CLIENT_ID"), env("CLIENT_SECRET"), strings.Split(env("REDIRECT_URI"), ",")...))
	// The example's users; the first one's login name is test-user@<issuer host>.
	stor := storage.NewStorage(storage.NewUserStore(issuer))
	router := exampleop.SetupServer(issuer, stor, logger, false)
	logger.Info("server listening", "issuer", issuer, "listen", listen)
	err := (&http.Server{Addr: listen, Handler: router}).ListenAndServe()
	logger.Error("server terminated", "error", err)
	os.Exit(1)
}
