package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

var (
	// ErrNoRoute means no route matches the request path (404).
	ErrNoRoute = errors.New("proxy: no route")
	// ErrBadPath means the path has dot segments (400).
	ErrBadPath = errors.New("proxy: path with dot segments")
	// ErrMethod means a method no route forwards: TRACE, CONNECT (405).
	ErrMethod = errors.New("proxy: method not forwarded")
	// ErrUpstream means the upstream could not be reached or failed (502).
	ErrUpstream = errors.New("proxy: upstream unavailable")
	// ErrUpgrade means a protocol upgrade other than WebSocket (400).
	ErrUpgrade = errors.New("proxy: only WebSocket upgrades are forwarded")
	// ErrBodyTimeout means the request body arrived too slowly (408).
	ErrBodyTimeout = errors.New("proxy: request body too slow")
	// ErrDerived wraps a failure to obtain a route's derived token; the
	// wrapped oauth error says whose fault it is.
	ErrDerived = errors.New("proxy: no token for the route's upstream")
)

// Sessions loads and stores the sealed session. *session.Store is one.
type Sessions interface {
	Load(r *http.Request) (*session.Session, error)
	Save(h http.Header, r *http.Request, s *session.Session) error
	Clear(h http.Header, r *http.Request)
}

var (
	_ Refresher = (*oauth.Client)(nil)
	_ Deriver   = (*oauth.Client)(nil)
	_ Sessions  = (*session.Store)(nil)
)

// Config configures a Proxy. Fields without a stated default are required.
type Config struct {
	Routes    []Route
	Sessions  Sessions
	Refresher Refresher
	// Owner, when set, routes each session's refresh to the instance that
	// owns it (several instances); nil refreshes locally.
	Owner Owner
	// RefreshMargin: the token is refreshed when it expires within this;
	// zero means 60 s. Keep it well under the provider's token lifetime.
	RefreshMargin time.Duration
	// SuccessorGrace is how long the tokens that replaced a refresh token
	// are kept for requests still carrying the old cookie; zero means 30 s,
	// negative disables the cache.
	SuccessorGrace time.Duration
	// PublicURL is the origin the browser sees; it sets X-Forwarded-Host
	// and X-Forwarded-Proto, never the request's own Host.
	PublicURL *url.URL
	// TrustedProxies are the peers whose X-Forwarded-For is kept (and
	// appended to); from any other peer it is replaced.
	TrustedProxies []netip.Prefix
	// IsBFFCookie reports the names of the BFF's own cookies, which never
	// reach an upstream, in either direction. It must hold for every name
	// the session cookie reader takes as its own (crypto.InNamespace: any
	// NAME.<suffix>, not only canonical chunk names), or an upstream could
	// set one the reader refuses and so sign the user out.
	IsBFFCookie func(name string) bool
	// Transport to the upstreams; nil means a clone of
	// http.DefaultTransport with MaxIdleConnsPerHost idle connections.
	Transport http.RoundTripper
	// MaxIdleConnsPerHost for the default transport; zero means 128
	// (Go's default of 2 makes a busy proxy re-dial on most requests).
	MaxIdleConnsPerHost int
	// ErrorHandler writes every error response (no route, no session,
	// refresh failed, upstream down). The response may already carry a
	// refreshed session cookie; keep it.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// OnRefresh, when set, is called after every refresh attempt (metrics),
	// including a forced refresh skipped inside its cooldown
	// (OutcomeCooldown, nil).
	OnRefresh func(o Outcome, err error)
	// OnSessionEnded, when set, is called when the provider refused a
	// refresh and the session ended (its cookies are already being
	// cleared): the server revokes the session id everywhere, so that a
	// copy of the cookie dies too. At most once per request, on the
	// request's goroutine: keep it quick.
	OnSessionEnded func(r *http.Request, s *session.Session)
	// ForcedRefreshCooldown bounds refreshes forced by an upstream's
	// 401 invalid_token: at most one per session per cooldown (a successor
	// already cached is still used; inside the cooldown the upstream's 401
	// goes to the client). Zero means 30 s; negative disables forced
	// refreshes: a 401 invalid_token always goes to the client.
	ForcedRefreshCooldown time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DPoP holds the keys the sessions' DPoP-bound tokens are bound to;
	// nil: no DPoP (a bound token then cannot be used and is refreshed).
	DPoP *oauth.DPoPKeys
	// Deriver obtains the derived tokens of routes with a Resource,
	// Audience, Scopes or TokenClient; required when a route has one.
	Deriver Deriver
	// DerivedCacheEntries bounds the derived-token cache; zero means 10,000.
	DerivedCacheEntries int
}

// Proxy is an http.Handler for the configured routes.
type Proxy struct {
	cfg       Config
	fwdHost   []string                 // X-Forwarded-Host value, from PublicURL
	fwdProto  []string                 // X-Forwarded-Proto value, from PublicURL
	routes    atomic.Pointer[[]*route] // longest path first; swapped by SetRoutes
	transport http.RoundTripper
	refresh   *refresher
	cooldown  *cooldown // nil: forced refreshes are off
	log       *slog.Logger
	now       func() time.Time
	nonces    nonces // upstreams' DPoP-Nonce values
	derived   *derivedStore
}

type route struct {
	Route
	rp *httputil.ReverseProxy
}

// copyBuffers recycles the 32 KB buffers ReverseProxy copies bodies
// through; without a pool every request allocates one, most of the proxy's
// garbage.
var copyBuffers bufferPool

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// New validates cfg and builds the reverse proxies.
func New(cfg Config) (*Proxy, error) {
	if cfg.Sessions == nil || cfg.Refresher == nil || cfg.ErrorHandler == nil || cfg.PublicURL == nil {
		return nil, errors.New("proxy: sessions, refresher, error handler and public URL are required")
	}
	if cfg.IsBFFCookie == nil {
		return nil, errors.New("proxy: IsBFFCookie is required")
	}
	if u := cfg.PublicURL; (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("proxy: public URL must be an absolute http(s) URL")
	}
	if cfg.RefreshMargin <= 0 {
		cfg.RefreshMargin = 60 * time.Second
	}
	if cfg.SuccessorGrace == 0 {
		cfg.SuccessorGrace = 30 * time.Second
	}
	if cfg.ForcedRefreshCooldown == 0 {
		cfg.ForcedRefreshCooldown = 30 * time.Second
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = 128
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, now: cfg.Now,
		fwdHost: []string{cfg.PublicURL.Host}, fwdProto: []string{cfg.PublicURL.Scheme}}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.refresh = newRefresher(cfg.Refresher, cfg.Owner, cfg.SuccessorGrace, p.now)
	p.derived = newDerivedStore(cfg.DerivedCacheEntries)
	if cfg.ForcedRefreshCooldown > 0 {
		p.cooldown = newCooldown(cfg.ForcedRefreshCooldown, maxCooldowns)
	}
	p.transport = cfg.Transport
	if p.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 4 * cfg.MaxIdleConnsPerHost
		t.MaxIdleConnsPerHost = cfg.MaxIdleConnsPerHost
		p.transport = t
	}
	p.transport = retryTransport{p.transport}
	if err := p.SetRoutes(cfg.Routes); err != nil {
		return nil, err
	}
	return p, nil
}

// SetRoutes validates routes and replaces the route table atomically; on
// error the old table stays. Requests in flight finish on the old routes;
// refreshes in flight are not disturbed.
func (p *Proxy) SetRoutes(routes []Route) error {
	seen := map[string]bool{}
	table := make([]*route, 0, len(routes))
	for _, r := range routes {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r.Path] {
			return fmt.Errorf("proxy: route %s is configured twice", r.Path)
		}
		seen[r.Path] = true
		rt := &route{Route: r}
		if rt.derives() && p.cfg.Deriver == nil {
			return fmt.Errorf("proxy: route %s needs derived tokens and there is no deriver", r.Path)
		}
		rt.rp = &httputil.ReverseProxy{
			Rewrite:        p.rewriter(rt),
			Transport:      p.transport,
			BufferPool:     &copyBuffers,
			ModifyResponse: p.responseModifier(rt),
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				p.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrUpstream, err))
			},
			ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		}
		table = append(table, rt)
	}
	slices.SortFunc(table, func(a, b *route) int { return len(b.Path) - len(a.Path) })
	p.routes.Store(&table)
	return nil
}

// Routes returns the current routes, longest path first.
func (p *Proxy) Routes() []Route {
	table := *p.routes.Load()
	out := make([]Route, len(table))
	for i, rt := range table {
		out[i] = rt.Route
	}
	return out
}

// RouteFor returns the route serving path.
func (p *Proxy) RouteFor(path string) (Route, bool) {
	if rt := p.match(path); rt != nil {
		return rt.Route, true
	}
	return Route{}, false
}

// Match reports whether a route serves path.
func (p *Proxy) Match(path string) bool { return p.match(path) != nil }

// RoutePath is the configured path of the route serving path, or "" (for
// metrics labels: bounded by the configuration).
func (p *Proxy) RoutePath(path string) string {
	if rt := p.match(path); rt != nil {
		return rt.Path
	}
	return ""
}

func (p *Proxy) match(path string) *route {
	for _, rt := range *p.routes.Load() {
		if rt.matches(path) {
			return rt
		}
	}
	return nil
}

// ServeHTTP forwards r along its route, with the session's access token.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := p.match(r.URL.Path)
	if rt == nil {
		p.cfg.ErrorHandler(w, r, ErrNoRoute)
		return
	}
	if hasDotSegment(r.URL.Path) {
		p.cfg.ErrorHandler(w, r, ErrBadPath)
		return
	}
	if r.Method == http.MethodTrace || r.Method == http.MethodConnect {
		// Never reflect a request carrying the user's bearer.
		p.cfg.ErrorHandler(w, r, ErrMethod)
		return
	}
	if upgradeRefused(r.Header) {
		p.cfg.ErrorHandler(w, r, ErrUpgrade)
		return
	}
	f := &forward{p: p, w: w, r: r, rt: rt}
	if rt.Token == TokenClient {
		t, err := p.derivedFor(r.Context(), rt, nil, false)
		if err != nil {
			p.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrDerived, err))
			return
		}
		f.g = tokensGrant(t)
	} else if rt.Token != TokenNone {
		s, err := p.cfg.Sessions.Load(r)
		switch {
		case err == nil:
			s, err = p.fresh(w, r, s)
			if err != nil {
				if rt.Token == TokenOptional && errors.Is(err, oauth.ErrReauthRequired) {
					break // the session ended (cookies cleared): go on signed out
				}
				p.cfg.ErrorHandler(w, r, err)
				return
			}
			f.s = s
			if f.g, err = p.grantFor(r.Context(), rt, s); err != nil {
				p.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrDerived, err))
				return
			}
		case rt.Token == TokenOptional && errors.Is(err, session.ErrNoSession):
		default:
			if !errors.Is(err, session.ErrNoSession) {
				p.cfg.Sessions.Clear(w.Header(), r)
			}
			if rt.Token != TokenOptional {
				p.cfg.ErrorHandler(w, r, err)
				return
			}
		}
	}
	// ReverseProxy writes through f, which keeps an upstream's 1xx from
	// the client and from the headers set so far (informational.go).
	rt.rp.ServeHTTP(f, r.WithContext(context.WithValue(r.Context(), forwardKey{}, f)))
}

// forward is one proxied request's state, handed from ServeHTTP to the
// rewriter (the bearer) and to the transport (the retry): one allocation.
type forward struct {
	p       *Proxy
	w       http.ResponseWriter
	r       *http.Request
	s       *session.Session // nil: no session, no bearer, no retry
	rt      *route
	g       grant // the token the upstream gets; zero: none
	retried atomic.Bool
	inTrip  atomic.Bool // the transport is in a round trip (see informational.go)
}

type forwardKey struct{}

// rewriter builds the outbound request from the read-only inbound one.
func (p *Proxy) rewriter(rt *route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		if rt.StripPrefix {
			prefix := strings.TrimSuffix(rt.Path, "/")
			pr.Out.URL.Path = "/" + strings.TrimLeft(strings.TrimPrefix(pr.Out.URL.Path, prefix), "/")
			if pr.Out.URL.RawPath != "" {
				pr.Out.URL.RawPath = "/" + strings.TrimLeft(strings.TrimPrefix(pr.Out.URL.RawPath, prefix), "/")
			}
		}
		pr.SetURL(rt.Upstream)
		// Deletions first, so that the cloned header map has room for what
		// is added after. ReverseProxy drops Forwarded and
		// X-Forwarded-For/Host/Proto; the rest of the family is just as
		// believable to some upstreams, and so are the headers that
		// frameworks take as the request's real path (see spoofable).
		for name := range pr.Out.Header {
			if strings.HasPrefix(name, "X-Forwarded-") || spoofable[name] {
				delete(pr.Out.Header, name)
			}
		}
		delete(pr.Out.Header, "Authorization")
		delete(pr.Out.Header, "Dpop") // only the BFF proves possession
		stripCookies(pr.Out.Header, p.cfg.IsBFFCookie)
		// What httputil.ProxyRequest.SetXForwarded does, with the inbound
		// X-Forwarded-For kept only from a trusted proxy, and without
		// building Host and Proto values that are replaced below.
		if client, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			xff := client
			if p.trusted(pr.In.RemoteAddr) {
				if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
					xff = strings.Join(prior, ", ") + ", " + client
				}
			}
			pr.Out.Header["X-Forwarded-For"] = []string{xff}
		}
		// Shared, never-modified value slices: the transport only reads them.
		pr.Out.Header["X-Forwarded-Host"] = p.fwdHost
		pr.Out.Header["X-Forwarded-Proto"] = p.fwdProto
		if f, _ := pr.In.Context().Value(forwardKey{}).(*forward); f != nil && f.g.token != "" {
			p.authorize(pr.Out.Header, rt, f.g, pr.Out.Method, pr.Out.URL)
		}
	}
}

// spoofable are request headers a client could set to make an upstream
// believe something the BFF did not check: the client's address (the BFF
// sets X-Forwarded-For itself) or the request's path. Symfony, Zend and IIS
// route by X-Original-URL / X-Rewrite-URL: a client sending
// "X-Original-URL: /admin" to /api/x would reach a path outside the route,
// past the prefix match and the dot-segment check.
var spoofable = map[string]bool{
	"Forwarded": true, "X-Real-Ip": true, "True-Client-Ip": true, "X-Client-Ip": true,
	"X-Cluster-Client-Ip": true, "Cf-Connecting-Ip": true, "Fastly-Client-Ip": true, "X-Originating-Ip": true,
	"X-Original-Url": true, "X-Rewrite-Url": true, "X-Original-Uri": true,
}

func (p *Proxy) trusted(remoteAddr string) bool {
	return TrustedPeer(p.cfg.TrustedProxies, remoteAddr)
}

// TrustedPeer reports whether remoteAddr (host:port, as in
// http.Request.RemoteAddr) is inside one of the trusted prefixes.
func TrustedPeer(trusted []netip.Prefix, remoteAddr string) bool {
	if len(trusted) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, pfx := range trusted {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}
