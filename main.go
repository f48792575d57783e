// Command bff is a stateless Backend-for-Frontend: the browser app's
// confidential OpenID Connect client and API proxy, keeping every token out of
// page script in sealed HttpOnly cookies. See README.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/bff-project/bff/config"
	"github.com/bff-project/bff/demo"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
)

const usage = `usage: bff [command] [flags]

commands:
  serve -config bff.yaml   run the BFF (the default command)
  demo                     run the BFF with an embedded identity provider, API and page
  keygen                   print a fresh master secret (base64, 32 bytes)
  check -config bff.yaml   validate a config and print what it would do, without secrets
  version                  print the version, commit, build date and Go version

Every config field can also be set as BFF_<UPPER_SNAKE_PATH>, e.g. BFF_OIDC_CLIENT_SECRET.
"bff COMMAND -h" lists a command's flags.
`

// synopses are the first lines of each command's -h.
var synopses = map[string]string{
	"serve":   "serve [-config bff.yaml]\n\nRuns the BFF. The config file defaults to $BFF_CONFIG; every field can also be set\nas BFF_<UPPER_SNAKE_PATH>.",
	"check":   "check [-config bff.yaml] [-online]\n\nValidates a config, prints what the BFF would do (no secrets) and what the provider\noffers, without binding a port. With -online an unreachable provider fails the check too,\nand the provider's signing keys are fetched.",
	"demo":    "demo [flags]\n\nRuns the BFF with an embedded identity provider, a sample API and a sample page; with\n-static-dir and -route, your own app and API behind it instead.",
	"keygen":  "keygen [-jwk ALG]\n\nPrints a fresh master secret (base64, 32 bytes) for keys.secrets; with -jwk, a JWK set\nwith one new private key for oidc.client_key_file (kid: its RFC 7638 thumbprint).",
	"version": "version\n\nPrints the version, commit, build date and Go version.",
}

// commandFlags is a fresh flag set of cmd's flags, nil for an unknown
// command; demo's values are read from the returned options.
func commandFlags(cmd string) (*flag.FlagSet, *demoOptions) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch cmd {
	case "serve", "check":
		fs.String("config", "", "path to the YAML config file (default $BFF_CONFIG)")
		if cmd == "check" {
			fs.Bool("online", false, "fail when the provider cannot be reached, and fetch its signing keys (JWKS)")
		}
	case "demo":
		return fs, newDemoOptions(fs)
	case "keygen":
		fs.String("jwk", "", "print a JWK set with one new private key of this algorithm (ES256, ES384, EdDSA, PS256, RS256) instead")
	case "version":
	default:
		return nil, nil
	}
	return fs, nil
}

// commandHelp prints cmd's usage and flags when args ask for it (-h,
// -help, --help) and reports whether it did.
func commandHelp(cmd string, args []string, stdout io.Writer) bool {
	fs, _ := commandFlags(cmd)
	if fs == nil || !errors.Is(fs.Parse(args), flag.ErrHelp) {
		return false
	}
	fmt.Fprintf(stdout, "usage: bff %s\n", synopses[cmd])
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(stdout, "\nflags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	return true
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bff:", err)
		os.Exit(1)
	}
}

// run is the whole program, testable: args without the program name, getenv
// for the environment, stdout for what commands print.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd, args = args[0], args[1:]
	}
	if commandHelp(cmd, args, stdout) {
		return nil
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout)
	case "check":
		return check(args, getenv, stdout)
	case "demo":
		return runDemo(ctx, args, stdout)
	case "keygen", "version":
		fs, _ := commandFlags(cmd)
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%s: %w\n%s", cmd, err, usage)
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))
		}
		if cmd == "version" {
			info, ok := debug.ReadBuildInfo()
			fmt.Fprintln(stdout, versionLine(info, ok))
			return nil
		}
		if alg := fs.Lookup("jwk").Value.String(); alg != "" {
			set, err := newClientKey(alg)
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			fmt.Fprintln(stdout, set)
			return nil
		}
		s, err := keys.NewSecret()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, s)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

func configFlag(name string, args []string) (string, error) {
	fs, _ := commandFlags(name)
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", name, err, usage)
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	return fs.Lookup("config").Value.String(), nil
}

// load parses name's flags (args) and loads the config file they name
// (default $BFF_CONFIG), overlaid with the environment.
func load(name string, args []string, getenv func(string) string) (*config.Config, error) {
	path, err := configFlag(name, args)
	if err != nil {
		return nil, err
	}
	return config.Load(path, getenv)
}

func check(args []string, getenv func(string) string, stdout io.Writer) error {
	c, err := load("check", args, getenv)
	if err != nil {
		return err
	}
	fs, _ := commandFlags("check")
	fs.Parse(args) // load parsed them already
	online := fs.Lookup("online").Value.String() == "true"
	return c.Check(context.Background(), stdout, os.Environ(), online)
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c, err := load("serve", args, getenv)
	if err != nil {
		return err
	}
	sc := c.Server
	logger := newLogger(c.Log, stdout)
	if flush := c.Log.AccessFlush; flush > 0 {
		// The access log goes through a buffer that every other line
		// flushes first (see lineWriter); both loggers share it, so the
		// order of lines holds.
		lw := newLineWriter(stdout, 64<<10)
		logger = newLogger(c.Log, lw.Urgent())
		sc.AccessLogger = newLogger(c.Log, lw)
		fctx, stop := context.WithCancel(context.Background())
		flushed := make(chan struct{})
		go func() {
			defer close(flushed)
			lw.run(fctx, flush)
		}()
		defer func() { stop(); <-flushed }()
	}
	sc.Logger = logger
	chooseGC := tuneGC(getenv, logger)
	for _, name := range config.UnknownEnv(os.Environ()) {
		logger.Warn("environment variable names no config field; ignored (a typo?)", "name", name)
	}
	if sc.SnapshotFile == "" {
		logger.Warn("revocation.in_memory is set: logouts are kept in memory only, and a restart undoes them")
	}
	srv, err := server.New(sc)
	if err != nil {
		return err
	}
	if chooseGC {
		// After server.New: the revocation list is loaded.
		defer adaptGC(10*time.Second, debug.SetGCPercent, logger)()
	}
	var certs *certLoader
	if c.TLSCertFile != "" {
		if certs, err = newCertLoader(c.TLSCertFile, c.TLSKeyFile); err != nil {
			return err
		}
	}
	// SIGHUP reloads the master secrets, the routes and the TLS certificate,
	// or keeps the old ones and says why.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			reload(c, args, getenv, srv, certs, logger)
		}
	}()
	if c.MetricsListen != "" {
		ln, err := net.Listen("tcp", c.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		ms := &http.Server{Handler: metricsMux(srv.MetricsHandler()), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(ln)
		defer ms.Close()
		logger.Info("metrics listening", "addr", ln.Addr().String())
	}
	if c.AdminToken != "" {
		h, err := srv.AdminHandler(c.AdminToken)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", c.AdminListen)
		if err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		as := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
		go as.Serve(ln)
		defer as.Close()
		logger.Info("admin API listening", "addr", ln.Addr().String())
	}
	return listenAndServe(ctx, c.Listen, srv, certs, logger)
}

// reload re-reads the configuration and applies what can change while
// running. Anything wrong keeps the running configuration.
func reload(running *config.Config, args []string, getenv func(string) string, srv *server.Server, certs *certLoader, log *slog.Logger) {
	next, err := load("serve", args, getenv)
	if err == nil {
		if field := config.RestartField(running, next); field != "" {
			err = fmt.Errorf("reload: %s changed; that needs a restart", field)
		}
	}
	if err == nil {
		err = srv.Reload(next.Server)
	}
	if err != nil {
		log.Error("reload refused; keeping the running configuration", "err", err)
	}
	if certs != nil {
		if err := certs.load(); err != nil {
			log.Error("TLS certificate reload failed; keeping the old one", "err", err)
		} else {
			log.Info("TLS certificate reloaded")
		}
	}
}

// newLogger is a logger of l's format and level that writes to w.
func newLogger(l config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// listenAndServe serves until ctx ends, then drains in-flight requests for up
// to 20 seconds.
func listenAndServe(ctx context.Context, addr string, srv *server.Server, certs *certLoader, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}

	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Room for the session chunks and the app's own cookies, not Go's
		// default of 1 MB that no load balancer in front would accept.
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	defer func() { cancel(); <-ran }() // no background logging after return
	go func() {
		defer close(ran)
		srv.Run(runCtx)
	}()
	errc := make(chan error, 1)
	go func() {
		if certs != nil {
			hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		// A stream or long poll that outlives the drain is cut; that is
		// the end of an orderly stop, not a failure.
		log.Warn("drain timed out; closing the remaining connections", "err", err)
		hs.Close()
	}
	if err := srv.Close(); err != nil {
		log.Warn("leaving the cluster", "err", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runDemo starts the embedded provider and API and the BFF in front of the
// sample page, all on loopback.
func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := commandFlags("demo")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("demo: %w\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
	}
	var ownRoutes []proxy.Route
	for _, r := range o.routes {
		rt, err := parseDemoRoute(r)
		if err != nil {
			return err
		}
		ownRoutes = append(ownRoutes, rt)
	}
	public, err := demoPublicURL(*o.addr, *o.public)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))
	clientSecret, err := keys.NewSecret()
	if err != nil {
		return err
	}
	master, err := keys.NewSecret()
	if err != nil {
		return err
	}
	masterBytes, _ := keys.ParseSecret(master)
	const clientID = "bff-demo"
	idp, err := demo.StartProvider(ctx, demo.ProviderConfig{
		Addr: *o.idpAddr, Issuer: "http://" + *o.idpAddr, ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		AccessTokenTTL:         *o.ttl,
		Logger:                 log,
	})
	if err != nil {
		return err
	}
	defer idp.Close()
	// Your own API (-route) replaces the sample one; your own files
	// (-static-dir) the sample page.
	routes, apiLine := ownRoutes, "yours: "
	for _, r := range ownRoutes {
		apiLine += r.Path + " -> " + r.Upstream.String() + "  "
	}
	if len(routes) == 0 {
		api, err := demo.StartAPI(ctx, demo.APIConfig{Addr: *o.apiAddr, Issuer: idp.Issuer(), Audience: clientID, Logger: log})
		if err != nil {
			return err
		}
		defer api.Close()
		apiURL, err := url.Parse(api.URL())
		if err != nil {
			return err
		}
		routes, apiLine = []proxy.Route{{Path: "/api/", Upstream: apiURL, Token: proxy.TokenUser}}, api.URL()
	}
	sc := server.Config{
		PublicURL:     public,
		OIDC:          oauth.Config{Issuer: idp.Issuer(), ClientID: clientID, ClientSecret: clientSecret, PostLogoutRedirectURL: public + "/"},
		Secrets:       [][]byte{masterBytes},
		Lifetime:      8 * time.Hour,
		RefreshMargin: 30 * time.Second,
		Routes:        routes,
		Static:        demo.Page(),
		Logger:        log,
	}
	if *o.staticDir != "" {
		sc.Static, sc.StaticDir = nil, *o.staticDir
	}
	srv, err := server.New(sc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
  BFF demo
  --------
  Open     %s/
  Sign in  user "%s", password "%s"
  Provider %s   API %s
  Access tokens live %s, so you can watch the BFF refresh them. Ctrl-C stops.

  The provider's client, should you point a config of your own at it while this runs
  (a new secret each run): client_id %q, client_secret %q,
  redirect URI %s/auth/callback, post-logout redirect URI %s/

`, public, demo.DefaultUsername, demo.DefaultPassword, idp.Issuer(), strings.TrimSpace(apiLine), *o.ttl, clientID, clientSecret, public, public)
	return listenAndServe(ctx, *o.addr, srv, nil, log)
}

// demoOptions are demo's flags.
type demoOptions struct {
	addr, public, idpAddr, apiAddr, staticDir *string
	ttl                                       *time.Duration
	routes                                    stringList
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseDemoRoute reads -route PREFIX=URL: a route that sends the session's
// access token, like the sample API's.
func parseDemoRoute(s string) (proxy.Route, error) {
	path, upstream, ok := strings.Cut(s, "=")
	u, err := url.Parse(upstream)
	if !ok || !strings.HasPrefix(path, "/") || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return proxy.Route{}, fmt.Errorf("demo: -route %q: want PREFIX=URL, e.g. /api/=http://127.0.0.1:3000", s)
	}
	return proxy.Route{Path: path, Upstream: u, Token: proxy.TokenUser}, nil
}

func newDemoOptions(fs *flag.FlagSet) *demoOptions {
	o := &demoOptions{
		addr:      fs.String("addr", "127.0.0.1:8080", "BFF listen address"),
		public:    fs.String("public-url", "", "origin the browser uses (default http://localhost:PORT of -addr)"),
		idpAddr:   fs.String("idp-addr", demo.DefaultProviderAddr, "demo identity provider address"),
		apiAddr:   fs.String("api-addr", demo.DefaultAPIAddr, "demo API address"),
		ttl:       fs.Duration("access-ttl", 2*time.Minute, "access token lifetime at the demo provider"),
		staticDir: fs.String("static-dir", "", "your app's built files, served instead of the sample page (index.html for /)"),
	}
	fs.Var(&o.routes, "route", "your API as PREFIX=URL (repeatable), instead of the sample API; calls get the user's access token")
	return o
}

// demoPublicURL is -public-url, or the origin a browser on this machine
// uses for -addr: localhost for a loopback or unspecified host (cookies and
// the provider's redirect URI need one name), the host itself otherwise.
func demoPublicURL(addr, public string) (string, error) {
	if public != "" {
		return strings.TrimSuffix(public, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("demo: -addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || host == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
