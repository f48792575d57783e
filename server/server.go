package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/revocation"
	"github.com/bff-project/bff/session"
)

// Config is everything the server needs, already parsed. main fills it from
// the YAML file and the environment.
type Config struct {
	// PublicURL is the origin the browser sees (scheme://host[:port]). The
	// callback URL, the allowed Origin and every absolute URL come from it,
	// never from the request's Host. Required.
	PublicURL string
	// Prefix of the auth endpoints; empty means "/auth".
	Prefix string
	// OIDC configures the relying party. RedirectURL is derived from
	// PublicURL and Prefix when empty.
	OIDC oauth.Config
	// Secrets are the master secrets; the first seals. Required.
	Secrets [][]byte
	// Rotation is the epoch length of derived keys; zero means 24h.
	Rotation time.Duration
	// CookieName of the session; empty means "__Host-Http-bff".
	CookieName string
	// Lifetime is the absolute session lifetime; zero means 8h.
	Lifetime time.Duration
	// SameSite is http.SameSiteLaxMode (zero) or http.SameSiteStrictMode.
	SameSite http.SameSite
	// SessionCache bounds the cache of opened sessions; zero means 4096,
	// negative disables it.
	SessionCache int
	// RefreshMargin and SuccessorGrace: see proxy.Config.
	RefreshMargin  time.Duration
	SuccessorGrace time.Duration
	// CSRFHeader must be present with value CSRFValue on state-changing and
	// proxied requests; empty means "X-CSRF" and "1".
	CSRFHeader, CSRFValue string
	// Routes to proxy.
	Routes []proxy.Route
	// UpstreamIdleConns is the proxy's idle keep-alive connections per
	// upstream host; zero means 128.
	UpstreamIdleConns int
	// TrustedProxies whose X-Forwarded-For and X-Request-Id are believed.
	TrustedProxies []netip.Prefix
	// SnapshotFile persists the revocation list; empty keeps it in memory
	// (main never leaves it empty unless told revocation.in_memory).
	SnapshotFile string
	// MaxSingleUse bounds the values remembered as used once (sign-in
	// states, logout-token ids, internal request ids); when full the ones
	// that expire first are evicted, a new one is never refused. Zero
	// means 200,000.
	MaxSingleUse int
	// Cluster, when set, replicates the revocation list to the other
	// instances; nil runs a single instance.
	Cluster *cluster.Config
	// InternalURL is how the other instances reach this one's listener
	// (scheme://host:port), to forward a session's refresh to its owner.
	// Empty disables forwarding (each instance refreshes for itself).
	InternalURL string
	// Static serves everything that is neither an auth endpoint nor a
	// route (the app's files). When nil, StaticDir's files are served; when
	// both are empty, such requests get 404.
	Static http.Handler
	// StaticDir is a directory of app files (index.html for "/").
	StaticDir string
	// StaticCSP is the Content-Security-Policy sent with the app's files:
	// "" means the safe default, "off" none (the balancer or CDN sets it),
	// anything else is sent as given.
	StaticCSP string
	// LoginParams are the query parameters /auth/login passes on to the
	// provider's authorization request; nil means prompt, max_age,
	// login_hint and acr_values. Each value is validated.
	LoginParams []string
	// LoginErrorPath is the same-origin path a navigation lands on when a
	// sign-in fails or is cancelled, with ?login_error=CODE; empty means
	// the flow's returnTo (or "/" when the flow is unknown).
	LoginErrorPath string
	// IdleTimeout ends a session not used for this long (sliding); zero
	// means no idle timeout. At least 5 s when set.
	IdleTimeout time.Duration
	// Persistent makes the session cookies expire with the session; false
	// (the default) writes browser-session cookies, which end when the
	// browser closes, the absolute lifetime still applying.
	Persistent bool
	// SessionCompress chooses when session payloads are DEFLATE-compressed
	// (session.compress; the zero value is auto).
	SessionCompress session.Compression
	// SessionJSON seals session payloads as JSON (session.encoding: json),
	// readable by builds before the binary payload: for rolling upgrades.
	SessionJSON bool
	// PublicMetrics also serves /metrics on the main handler. Off by
	// default: the metrics (Go version, counts of sign-ins, logouts and
	// refusals) are for operators, so main serves MetricsHandler only on
	// its own listener (metrics_listen).
	PublicMetrics bool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// AccessLogger writes the one line per request; nil means Logger. main
	// gives it a buffered writer that Logger's lines flush.
	AccessLogger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the BFF.
type Server struct {
	cfg          Config
	public       *url.URL
	origin       string
	log          *slog.Logger
	accessLogger *slog.Logger
	now          func() time.Time
	ring         *keys.Ring
	sealer       *crypto.Sealer
	sessions     countingSessions
	metrics      *metrics
	revoked      *revocation.List
	cluster      *cluster.Cluster // nil for a single instance
	owner        *owner           // nil for a single instance
	idp          *oauth.Client
	proxy        *proxy.Proxy
	engine       *gin.Engine
	once         onceStore // single-use values, on every instance
}

// New validates cfg and wires the BFF. It does not contact the provider:
// Run does, until discovery succeeds.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.accessLogger = cfg.AccessLogger; s.accessLogger == nil {
		s.accessLogger = s.log
	}
	if s.now == nil {
		s.now = time.Now
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || (pub.Scheme != "https" && pub.Scheme != "http") || pub.Host == "" || (pub.Path != "" && pub.Path != "/") || pub.RawQuery != "" {
		return nil, errors.New("server: public_url must be an origin like https://app.example.com")
	}
	pub.Path = ""
	s.public, s.origin = pub, pub.Scheme+"://"+pub.Host
	if s.cfg.Prefix == "" {
		s.cfg.Prefix = "/auth"
	}
	if !strings.HasPrefix(s.cfg.Prefix, "/") || strings.HasSuffix(s.cfg.Prefix, "/") {
		return nil, errors.New("server: prefix must start and not end with /")
	}
	if err := checkLoginConfig(cfg.LoginParams, cfg.LoginErrorPath); err != nil {
		return nil, err
	}
	if s.cfg.CookieName == "" {
		s.cfg.CookieName = "__Host-Http-bff"
	}
	if s.cfg.Lifetime <= 0 {
		s.cfg.Lifetime = DefaultLifetime
	}
	if s.cfg.CSRFHeader == "" {
		s.cfg.CSRFHeader, s.cfg.CSRFValue = "X-CSRF", "1"
	}
	if s.cfg.SameSite == 0 || s.cfg.SameSite == http.SameSiteDefaultMode {
		s.cfg.SameSite = http.SameSiteLaxMode
	}
	if s.cfg.SameSite != http.SameSiteLaxMode && s.cfg.SameSite != http.SameSiteStrictMode {
		return nil, errors.New("server: same_site must be lax or strict")
	}

	s.ring, err = keys.New(keys.Config{Secrets: cfg.Secrets, Rotation: cfg.Rotation, Window: s.cfg.Lifetime, Now: s.now})
	if err != nil {
		return nil, err
	}
	s.sealer, err = crypto.NewSealer(crypto.Config{Ring: s.ring})
	if err != nil {
		return nil, err
	}
	chunker, err := crypto.NewChunker(crypto.ChunkConfig{Name: s.cfg.CookieName, SameSite: s.cfg.SameSite})
	if err != nil {
		return nil, err
	}
	if cfg.IdleTimeout < 0 || (cfg.IdleTimeout > 0 && cfg.IdleTimeout < 5*time.Second) {
		return nil, errors.New("server: session.idle_timeout must be at least 5s (or 0 for none)")
	}
	// Cookies ignore ports: two BFFs on localhost:8080 and localhost:8081
	// with the default name sign each other out.
	if s.cfg.CookieName == "__Host-Http-bff" && proxy.IsLoopback(pub.Hostname()) {
		s.log.Warn("cookies ignore ports: another app on this host with the same session.cookie_name shares and overwrites these cookies; set session.cookie_name per app",
			"public_url", s.origin)
	}
	s.revoked, err = revocation.New(revocation.Config{SnapshotFile: cfg.SnapshotFile, MaxOnce: cfg.MaxSingleUse, Now: s.now})
	if err != nil {
		return nil, err
	}
	s.once = s.revoked // the cluster's, once it exists
	s.metrics = newMetrics(s.revoked)
	if cfg.Cluster != nil {
		if s.owner, err = newOwner(s, cfg.Cluster.Secret); err != nil {
			return nil, err
		}
	}
	store, err := session.NewStore(session.Config{
		Sealer: s.sealer, Chunker: chunker, Revoker: s.revoked, Now: s.now, CacheEntries: cfg.SessionCache,
		IdleTimeout: cfg.IdleTimeout, Persistent: cfg.Persistent, JSONPayload: cfg.SessionJSON,
		Compress: cfg.SessionCompress,
		OnSave: func(n int) {
			s.metrics.sessions.WithLabelValues("sealed").Inc()
			s.metrics.cookieSize.Observe(float64(n))
		},
		OverBudget: func(n int, sess *session.Session) {
			s.metrics.overBudget.Inc()
			s.log.Warn("session cookies over budget; a load balancer may refuse them", "bytes", n, "session", sess)
		},
	})
	if err != nil {
		return nil, err
	}
	s.sessions = countingSessions{store, s.metrics}
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bff_session_cache_entries", Help: "Opened sessions cached (keyed by a SHA-256 of the cookie).",
	}, func() float64 { return float64(store.CacheLen()) }))
	for _, r := range []string{"hit", "open"} {
		s.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bff_session_cookie_lookups_total", Help: "Session cookies looked up: answered by the cache (hit) or decrypted (open).",
			ConstLabels: prometheus.Labels{"result": r},
		}, func() float64 {
			hits, opens := store.Lookups()
			return float64(map[string]uint64{"hit": hits, "open": opens}[r])
		}))
	}
	oc := cfg.OIDC
	if oc.RedirectURL == "" {
		oc.RedirectURL = s.origin + s.cfg.Prefix + "/callback"
	}
	if oc.Now == nil {
		oc.Now = s.now
	}
	if oc.HTTPClient == nil {
		oc.HTTPClient = s.providerClient()
	}
	s.idp, err = oauth.New(oc)
	if err != nil {
		return nil, err
	}
	s.proxy, err = proxy.New(proxy.Config{
		Routes:              cfg.Routes,
		Sessions:            s.sessions,
		Refresher:           s.idp,
		RefreshMargin:       cfg.RefreshMargin,
		SuccessorGrace:      cfg.SuccessorGrace,
		PublicURL:           s.public,
		TrustedProxies:      cfg.TrustedProxies,
		IsBFFCookie:         s.isBFFCookie,
		ErrorHandler:        s.fail,
		OnRefresh:           s.observeRefresh,
		OnSessionEnded:      s.refreshRefused,
		Owner:               ownerOrNil(s.owner),
		MaxIdleConnsPerHost: cfg.UpstreamIdleConns,
		Logger:              s.log,
		Now:                 s.now,
		DPoP:                cfg.OIDC.DPoP,
		Deriver:             s.idp,
	})
	if err != nil {
		return nil, err
	}
	if err := validStaticCSP(cfg.StaticCSP); err != nil {
		return nil, err
	}
	if s.cfg.Static == nil && s.cfg.StaticDir != "" {
		if st, err := os.Stat(s.cfg.StaticDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("server: static_dir %s is not a directory", s.cfg.StaticDir)
		}
		s.cfg.Static = staticDir(s.cfg.StaticDir)
	}
	s.engine = s.routes()
	// Last, once everything else is valid: the cluster binds its ports.
	if cfg.Cluster != nil {
		cc := *cfg.Cluster
		cc.Logger = s.log
		cc.OnReceive = func(n int) { s.metrics.gossipReceived.Add(float64(n)) }
		cc.OnDrop = func() { s.metrics.gossipDropped.Inc() }
		if cc.Meta == nil {
			cc.Meta = []byte(cfg.InternalURL)
		}
		if s.cluster, err = cluster.New(cc, s.revoked); err != nil {
			return nil, err
		}
		s.once = s.cluster
		s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bff_cluster_members", Help: "Live cluster members, this one included.",
		}, func() float64 { return float64(len(s.cluster.Members())) }))
	}
	return s, nil
}

// Handler is the BFF's HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// MetricsHandler serves the Prometheus metrics.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// Ready reports whether the server can serve: the provider's metadata is
// loaded and, in a cluster, the join (with its full revocation sync) is done.
func (s *Server) Ready() bool {
	return s.idp.Ready() && (s.cluster == nil || s.cluster.Ready())
}

// revoke records a revocation, on every instance when clustered.
func (s *Server) revoke(e revocation.Entry) error {
	if s.cluster != nil {
		err := s.cluster.Revoke(e)
		if err == nil {
			s.metrics.gossipSent.Inc()
		}
		return err
	}
	_, err := s.revoked.Add(e)
	return err
}

// refreshRefused revokes a session whose refresh the provider refused: its
// cookies are being cleared, but a copy of them would otherwise keep working
// while its access token lasts.
func (s *Server) refreshRefused(r *http.Request, sess *session.Session) {
	if err := s.revoke(revocation.Entry{Kind: revocation.KindSession, Key: sess.ID, Expiry: sess.ExpiryTime()}); err != nil {
		s.log.Error("refresh refused: session could not be revoked", "session", sess, "err", err)
		return
	}
	s.metrics.revocation.WithLabelValues("refresh_refused").Inc()
}

// Close leaves the cluster cleanly (so the others stop counting on this
// instance). Call it after the HTTP server has drained.
func (s *Server) Close() error {
	var err error
	if s.cluster != nil {
		err = s.cluster.Leave(leaveTimeout)
	}
	return errors.Join(err, s.revoked.Close())
}

// Run does the server's background work until ctx ends: it loads the
// provider's metadata, retrying with backoff until that succeeds (the server
// answers 503 on /readyz and sign-in until then), then sweeps expired
// revocation entries now and then.
func (s *Server) Run(ctx context.Context) error {
	if s.cluster != nil {
		// Run logs a join that found no peer itself and then serves with
		// the local list; its only error is ctx's, at stop.
		go s.cluster.Run(ctx)
	}
	if err := s.discover(ctx); err != nil {
		return err
	}
	s.sweep(ctx)
	return nil
}

func (s *Server) discover(ctx context.Context) error {
	delay := 500 * time.Millisecond
	for {
		err := s.idp.Discover(ctx)
		if err == nil {
			c, _ := s.idp.Capabilities()
			s.log.Info("identity provider ready", "issuer", s.idp.Issuer(), "auth_method", c.TokenAuthMethod,
				"iss_parameter", c.IssParameter, "end_session", c.EndSession, "revocation", c.Revocation,
				"userinfo", c.UserInfo, "backchannel_logout", c.BackchannelLogout, "par", c.PAR, "dpop", c.DPoP && c.DPoPOffered)
			return nil
		}
		s.log.Warn("identity provider discovery failed; retrying", "issuer", s.idp.Issuer(), "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// sweep drops expired revocation entries every ten minutes.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.revoked.Sweep(); err != nil {
				s.log.Error("revocation sweep failed", "err", err)
			}
		}
	}
}

// ownerOrNil keeps a nil *owner from becoming a non-nil proxy.Owner.
func ownerOrNil(o *owner) proxy.Owner {
	if o == nil || len(o.s.cfg.InternalURL) == 0 {
		return nil
	}
	return o
}

// isBFFCookie reports every cookie the BFF reads as its own: the whole
// session namespace NAME.<anything> (the chunk reader refuses a session with
// any malformed name in it, so an upstream that could set NAME.00 could sign
// the user out) and the login cookies.
func (s *Server) isBFFCookie(name string) bool {
	return crypto.InNamespace(s.cfg.CookieName, name) || strings.HasPrefix(name, s.loginPrefix())
}

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.accessLog(), s.recovery(), s.bodyLimits())

	auth := e.Group(s.cfg.Prefix, noStore())
	auth.GET("/login", s.login)
	auth.GET("/callback", s.callback)
	auth.GET("/user", s.sameOrigin(false), s.user)
	auth.POST("/logout", s.sameOrigin(true), s.logout)
	auth.GET("/end-session", s.endSession)
	auth.POST("/backchannel-logout", s.backchannelLogout)
	if s.cfg.OIDC.ClientKeys != nil {
		auth.GET("/jwks.json", s.clientJWKS)
	}
	e.POST(internalRefreshPath, noStore(), s.internalRefresh)
	e.GET("/healthz", noStore(), func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", noStore(), s.readyz)
	if s.cfg.PublicMetrics {
		e.GET("/metrics", gin.WrapH(s.metrics.handler()))
	}
	e.NoMethod(func(c *gin.Context) { s.abort(c, errMethod) })
	e.NoRoute(s.fallback)
	return e
}

func (s *Server) readyz(c *gin.Context) {
	if !s.idp.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "waiting for the identity provider"})
		return
	}
	if s.cluster != nil && !s.cluster.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "joining the cluster"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// fallback serves proxy routes (after the anti-forgery check) and then the
// static app.
func (s *Server) fallback(c *gin.Context) {
	r := c.Request
	if s.proxy.Match(r.URL.Path) {
		s.serveProxied(c)
		return
	}
	if strings.HasPrefix(r.URL.Path, s.cfg.Prefix+"/") || s.cfg.Static == nil {
		s.abort(c, errNotFound)
		return
	}
	s.serveStatic(c)
}

// serveProxied checks a proxied request against forgery, by its kind and
// its route's mode (checkProxied), and forwards it.
func (s *Server) serveProxied(c *gin.Context) {
	r := c.Request
	rt, _ := s.proxy.RouteFor(r.URL.Path)
	if err := s.checkProxied(r, rt); err != nil {
		s.abort(c, err)
		return
	}
	// NoRoute preset 404. A proxied answer sets its own status, except a
	// WebSocket switch, which goes out on the hijacked connection: preset
	// what the access log and the metrics should then say.
	if requestKind(r) == kindWebSocket {
		c.Status(http.StatusSwitchingProtocols)
	} else {
		c.Status(http.StatusOK)
	}
	s.proxy.ServeHTTP(c.Writer, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"server_error"}`)
	}
	w.Write(append(b, '\n'))
}

// String describes the wiring without secrets (for bff check and start-up).
func (s *Server) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "public URL %s, auth endpoints under %s, issuer %s\n", s.origin, s.cfg.Prefix, s.idp.Issuer())
	fmt.Fprintf(&b, "session cookie %s, lifetime %s, %d master secret(s)\n", s.cfg.CookieName, s.cfg.Lifetime, len(s.cfg.Secrets))
	for _, r := range s.proxy.Routes() {
		fmt.Fprintf(&b, "route %s -> %s (token %s, strip prefix %v)\n", r.Path, r.Upstream.Redacted(), r.Token, r.StripPrefix)
	}
	return b.String()
}

// providerClient talks to the identity provider when Config.OIDC.HTTPClient
// is nil: each call is counted by the metrics, and bounded, so that a
// provider that accepts connections but never answers holds neither
// discovery (readiness) nor a sign-in or refresh for ever.
func (s *Server) providerClient() *http.Client {
	base := http.DefaultTransport
	if c := s.cfg.OIDC.ClientCert; c != nil {
		// mTLS client authentication: every connection to the provider
		// presents the current certificate.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = c.TLSConfig()
		base = t
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: s.metrics.providerTransport(base)}
}

// leaveTimeout bounds telling the cluster this member is going, at stop:
// with the peers up it takes a few gossip rounds (about 200 ms); when they
// are unreachable, waiting longer helps nobody (they notice by probing) and
// would hold the gossip port from a restart.
const leaveTimeout = time.Second

// DefaultLifetime is a session's absolute lifetime when Config.Lifetime is
// zero.
const DefaultLifetime = 8 * time.Hour
