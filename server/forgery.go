package server

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/net/http/httpguts"

	"github.com/bff-project/bff/proxy"
)

// Anti-forgery. A request that the BFF answers with the user's authority
// must come from the app's own pages. The browser says where a request comes
// from in headers page script can neither set nor change: Origin, and the
// Fetch Metadata Sec-Fetch-Site, -Mode and -Dest
// (https://w3c.github.io/webappsec-fetch-metadata/). And a page of another
// origin can add a custom header such as X-CSRF only after a CORS preflight
// (https://fetch.spec.whatwg.org/#cors-preflight-fetch) that the BFF never
// grants.
//
// What a browser can send depends on the kind of request: fetch and XHR can
// add X-CSRF; a WebSocket handshake, an EventSource, an <img> or a
// navigation cannot. requestKind names the kind and checkProxied decides,
// requiring of each kind what the browser can send for it.

// sameOrigin refuses cross-site requests (Sec-Fetch-Site, Origin) and, when
// requireHeader is set, requests without the anti-forgery header, which a
// cross-origin page cannot add without a CORS preflight the BFF never grants.
func (s *Server) sameOrigin(requireHeader bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.checkForgery(c.Request, requireHeader); err != nil {
			s.abort(c, err)
			return
		}
		c.Next()
	}
}

// checkForgery is the check of the /auth endpoints: checkSite and, with
// requireHeader, the anti-forgery header.
func (s *Server) checkForgery(r *http.Request, requireHeader bool) error {
	if err := s.checkSite(r); err != nil {
		return err
	}
	if requireHeader && !s.hasCSRFHeader(r) {
		return fmt.Errorf("%w: no %s header", errForbidden, s.cfg.CSRFHeader)
	}
	return nil
}

// checkSite is the rule for every request: refused when the browser marks it
// cross-site, or when it carries an Origin other than the app's own.
func (s *Server) checkSite(r *http.Request) error {
	for _, v := range r.Header.Values("Sec-Fetch-Site") {
		if strings.EqualFold(v, "cross-site") {
			return fmt.Errorf("%w: Sec-Fetch-Site cross-site", errForbidden)
		}
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) != 1 || origins[0] != s.origin {
			return fmt.Errorf("%w: foreign Origin", errForbidden)
		}
	}
	return nil
}

// hasCSRFHeader reports whether r carries the anti-forgery header, once,
// with the configured value.
func (s *Server) hasCSRFHeader(r *http.Request) bool {
	v := r.Header.Values(s.cfg.CSRFHeader)
	return len(v) == 1 && subtle.ConstantTimeCompare([]byte(v[0]), []byte(s.cfg.CSRFValue)) == 1
}

// checkProxied is the check of a request to a proxied route rt: checkSite,
// then what the route's mode and the kind of request require. Each refusal
// names the rule that refused it (logged, never shown to the client).
func (s *Server) checkProxied(r *http.Request, rt proxy.Route) error {
	if err := s.checkSite(r); err != nil {
		return err
	}
	if rt.AntiForgery == proxy.AntiForgeryHeader {
		if !s.hasCSRFHeader(r) {
			return fmt.Errorf("%w: route %s requires the %s header on every request", errForbidden, rt.Path, s.cfg.CSRFHeader)
		}
		return nil
	}
	site, marked := fetchSite(r.Header)
	k := requestKind(r)
	switch k {
	case kindWebSocket:
		// A browser always sends Origin on a handshake and cannot add a
		// header to it; checkSite has compared Origin, when present.
		if len(r.Header.Values("Origin")) == 0 {
			return fmt.Errorf("%w: WebSocket handshake without Origin", errForbidden)
		}
		if marked && site != "same-origin" {
			return fmt.Errorf("%w: WebSocket handshake not marked Sec-Fetch-Site same-origin", errForbidden)
		}
		return nil
	case kindNavigation:
		// An API's HTML must never render on the app's origin: only a route
		// that serves downloads takes navigations, and the proxy then
		// forces its answers to be downloads.
		switch {
		case !rt.Downloads:
			return fmt.Errorf("%w: navigation to route %s, which does not serve downloads", errForbidden, rt.Path)
		case r.Method != http.MethodGet:
			return fmt.Errorf("%w: navigation other than GET to downloads route %s", errForbidden, rt.Path)
		case site != "same-origin" && site != "none":
			// "none": the user typed the address or used a bookmark.
			return fmt.Errorf("%w: download navigation not marked Sec-Fetch-Site same-origin or none", errForbidden)
		}
		return nil
	case kindFetchGET, kindPassive:
		// Sec-Fetch-Site same-origin: the app's own page asked (a sibling
		// subdomain is same-site, another app).
		if site == "same-origin" {
			return nil
		}
	}
	if !s.hasCSRFHeader(r) {
		return fmt.Errorf("%w: %s without the %s header", errForbidden, k, s.cfg.CSRFHeader)
	}
	return nil
}

// kind is a kind of request, as far as anti-forgery goes.
type kind int

const (
	// kindOther: a state-changing method (fetch, XHR, form), a GET or HEAD
	// without Fetch Metadata (an older browser, or not a browser), or with
	// a mode or destination not named below. Needs the header.
	kindOther kind = iota
	// kindFetchGET: a GET or HEAD from fetch, XHR or EventSource
	// (Sec-Fetch-Dest empty). Needs same-origin, or the header.
	kindFetchGET
	// kindPassive: a GET or HEAD of an image, audio, video, font, text
	// track or manifest. Needs same-origin, or the header.
	kindPassive
	// kindExecutable: a GET or HEAD of a script, style sheet, worker,
	// worklet, XSLT or report. Needs the header, which such a load cannot
	// carry: refused.
	kindExecutable
	// kindWebSocket: a WebSocket handshake. Needs Origin.
	kindWebSocket
	// kindNavigation: a document, frame, embed or object
	// (proxy.IsNavigation). Refused unless the route serves downloads.
	kindNavigation
)

func (k kind) String() string {
	switch k {
	case kindFetchGET:
		return "fetch or EventSource GET not marked Sec-Fetch-Site same-origin"
	case kindPassive:
		return "image or media load not marked Sec-Fetch-Site same-origin"
	case kindExecutable:
		return "script, style or worker load"
	case kindWebSocket:
		return "WebSocket handshake"
	case kindNavigation:
		return "navigation"
	}
	return "state-changing or unmarked request"
}

// requestKind classifies r by what the browser cannot let page script
// forge: the method, the WebSocket handshake headers (Connection and Upgrade
// are forbidden to fetch) and the Fetch Metadata.
func requestKind(r *http.Request) kind {
	h := r.Header
	switch {
	case r.Method == http.MethodGet && isWebSocketHandshake(h):
		return kindWebSocket
	case proxy.IsNavigation(h):
		return kindNavigation
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return kindOther
	}
	switch only(h, "Sec-Fetch-Mode") {
	case "cors", "same-origin", "no-cors":
	default:
		return kindOther
	}
	dest := only(h, "Sec-Fetch-Dest")
	switch {
	case dest == "empty":
		return kindFetchGET
	case passiveDest[dest]:
		return kindPassive
	case executableDest[dest]:
		return kindExecutable
	}
	return kindOther
}

// passiveDest are the destinations whose answer the browser only displays
// or plays; executableDest those it runs or applies to a page. The
// destinations of documents are proxy.IsNavigation's.
var (
	passiveDest = map[string]bool{
		"image": true, "audio": true, "video": true, "font": true, "track": true, "manifest": true,
	}
	executableDest = map[string]bool{
		"script": true, "style": true, "worker": true, "sharedworker": true, "serviceworker": true,
		"audioworklet": true, "paintworklet": true, "xslt": true, "report": true,
	}
)

// isWebSocketHandshake reports whether h asks for a WebSocket upgrade, as
// the proxy forwards one: Connection holds "upgrade" and Upgrade is
// exactly "websocket".
func isWebSocketHandshake(h http.Header) bool {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return false
	}
	up := h["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket")
}

// fetchSite is the request's Sec-Fetch-Site when it has exactly one, and
// whether it has any.
func fetchSite(h http.Header) (site string, marked bool) {
	return only(h, "Sec-Fetch-Site"), len(h.Values("Sec-Fetch-Site")) > 0
}

// only is the value of the header name when h has exactly one, else "".
func only(h http.Header, name string) string {
	if v := h.Values(name); len(v) == 1 {
		return v[0]
	}
	return ""
}
