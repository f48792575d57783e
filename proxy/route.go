package proxy

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// TokenMode says whether a route needs a signed-in session.
type TokenMode string

const (
	TokenUser     TokenMode = "user"     // a session is required; the bearer is always sent
	TokenOptional TokenMode = "optional" // the bearer is sent when there is a session
	TokenNone     TokenMode = "none"     // no session is read and no bearer sent
	TokenClient   TokenMode = "client"   // no session is read; the BFF's own client-credentials token is sent
)

// Route maps a path prefix to an upstream.
type Route struct {
	// Path is the prefix matched against the request path, e.g. "/api/".
	// It must start with "/"; the longest matching prefix wins.
	Path string
	// Upstream is the base URL requests are forwarded to (scheme and host,
	// and optionally a base path that the request path is appended to).
	Upstream *url.URL
	// Token is TokenUser, TokenOptional, TokenNone or TokenClient; empty
	// means TokenUser.
	Token TokenMode
	// Resource (an RFC 8707 resource indicator, absolute URI), Audience and
	// Scopes restrict the token this upstream receives: on a user route
	// the session's token exchanged for one for this target (RFC 8693), on
	// a TokenClient route the client-credentials token asked for it. Empty:
	// the session's own token (TokenClient: the provider's default).
	Resource string
	Audience string
	Scopes   []string
	// StripPrefix removes Path from the forwarded path ("/api/x" -> "/x").
	StripPrefix bool
	// InsecureUpstream allows a plain-http upstream on a host that is not
	// loopback for a route that sends a bearer token. Without it such a
	// route is refused at start: the token would cross the network in
	// clear text.
	InsecureUpstream bool
	// BodyTimeout and BodyMinRate bound how long reading a request body
	// may take, as Apache's mod_reqtimeout does: the body must be read
	// within BodyTimeout plus one second for every BodyMinRate bytes
	// received, so a long upload at a fair rate goes through while a
	// trickle is cut. Zero means 30s and 1024 bytes/s; a negative
	// BodyTimeout turns the limit off for the route; a negative
	// BodyMinRate is refused. New and SetRoutes fill in the defaults, so
	// Routes and RouteFor return the values in force. The proxy does not
	// enforce them itself: the server reads them through RouteFor.
	BodyTimeout time.Duration
	BodyMinRate int64
	// AntiForgery is AntiForgeryByKind (the default) or AntiForgeryHeader.
	AntiForgery AntiForgery
	// BearerOnly sends a DPoP-bound access token as "Authorization: Bearer"
	// without a proof, for an upstream that does not take DPoP (RFC 9449
	// asks resource servers that do to refuse that; one that validates the
	// token alone accepts it). Without DPoP it changes nothing.
	BearerOnly bool
	// Downloads lets top-level navigations reach the route (file
	// downloads); its answers to them are forced to Content-Disposition:
	// attachment, so an API's HTML never renders on the app's origin.
	Downloads bool
}

// AntiForgery says what a route requires of a request against cross-site
// request forgery (see the server's forgery checks and the README's table).
type AntiForgery string

const (
	// AntiForgeryByKind accepts what a browser can send for the kind of
	// request: the X-CSRF header on fetch/XHR, Origin on a WebSocket
	// handshake, Sec-Fetch-Site: same-origin on a GET such as an
	// EventSource.
	AntiForgeryByKind AntiForgery = ""
	// AntiForgeryHeader requires the X-CSRF header on every request.
	AntiForgeryHeader AntiForgery = "header"
)

func (rt *Route) validate() error {
	if !strings.HasPrefix(rt.Path, "/") {
		return fmt.Errorf("proxy: route path %q must start with /", rt.Path)
	}
	if rt.Upstream == nil || (rt.Upstream.Scheme != "http" && rt.Upstream.Scheme != "https") || rt.Upstream.Host == "" {
		return fmt.Errorf("proxy: route %s: upstream must be an absolute http(s) URL", rt.Path)
	}
	if rt.Upstream.RawQuery != "" || rt.Upstream.Fragment != "" || rt.Upstream.User != nil {
		return fmt.Errorf("proxy: route %s: upstream must not carry a query, fragment or credentials", rt.Path)
	}
	switch rt.Token {
	case "":
		rt.Token = TokenUser
	case TokenUser, TokenOptional, TokenNone, TokenClient:
	default:
		return fmt.Errorf("proxy: route %s: token must be user, optional, none or client, not %q", rt.Path, rt.Token)
	}
	if rt.Token == TokenNone && (rt.Resource != "" || rt.Audience != "" || len(rt.Scopes) > 0) {
		return fmt.Errorf("proxy: route %s: resource, audience and scopes need a token (user, optional or client)", rt.Path)
	}
	if rt.Resource != "" {
		if u, err := url.Parse(rt.Resource); err != nil || !u.IsAbs() || u.Fragment != "" {
			return fmt.Errorf("proxy: route %s: resource %q must be an absolute URI without a fragment (RFC 8707)", rt.Path, rt.Resource)
		}
	}
	for _, s := range rt.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			return fmt.Errorf("proxy: route %s: scope %q is not a scope token", rt.Path, s)
		}
	}
	if rt.Upstream.Scheme == "http" && rt.Token != TokenNone && !rt.InsecureUpstream && !IsLoopback(rt.Upstream.Hostname()) {
		return fmt.Errorf("proxy: route %s: upstream %s would receive the bearer token in clear text: "+
			"use https, or set insecure_upstream: true for a trusted network", rt.Path, rt.Upstream.Host)
	}
	if rt.BodyMinRate < 0 {
		return fmt.Errorf("proxy: route %s: body min rate must not be negative", rt.Path)
	}
	if rt.BodyMinRate == 0 {
		rt.BodyMinRate = defaultBodyMinRate
	}
	if rt.BodyTimeout == 0 {
		rt.BodyTimeout = defaultBodyTimeout
	}
	return nil
}

// Defaults of Route.BodyTimeout and Route.BodyMinRate.
const (
	defaultBodyTimeout = 30 * time.Second
	defaultBodyMinRate = 1024 // bytes per second
)

// IsLoopback reports whether host (a URL's Hostname) is this machine:
// "localhost" in any case or a loopback address (127.0.0.0/8, ::1, also
// IPv4-mapped). Any other name counts as remote, whatever it resolves to.
// The configuration's checks (plain-HTTP issuer and public URL) and the
// proxy's (plain-HTTP upstream with a token) use this one rule.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// hasDotSegment reports whether a (decoded) path holds "." or ".." segments,
// which an upstream might resolve to a path outside the route. It also
// counts what some servers turn into such segments: a backslash (IIS treats
// it as "/") and a ";parameter" suffix (Tomcat and Spring drop it before
// resolving "..").
func hasDotSegment(p string) bool {
	if strings.ContainsRune(p, '\\') {
		return true
	}
	for seg := range strings.SplitSeq(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// matches reports whether path is under the route: the prefix, ending at a
// segment boundary ("/api" serves "/api" and "/api/x", not "/apix").
func (rt *Route) matches(path string) bool {
	if !strings.HasPrefix(path, rt.Path) {
		return false
	}
	return strings.HasSuffix(rt.Path, "/") || len(path) == len(rt.Path) || path[len(rt.Path)] == '/'
}
