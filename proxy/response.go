package proxy

import (
	"mime"
	"net/http"
	"strings"
)

// responseModifier is the ModifyResponse of a route: what an upstream's
// response may not carry to the browser.
func (p *Proxy) responseModifier(rt *route) func(*http.Response) error {
	return func(resp *http.Response) error {
		p.dropBFFSetCookies(resp)
		if _, ok := resp.Header["Clear-Site-Data"]; ok {
			// "cookies" or "*" would wipe the BFF's session: only the BFF
			// ends sessions. The value is the upstream's: not logged.
			delete(resp.Header, "Clear-Site-Data")
			p.log.Warn("upstream sent Clear-Site-Data; dropped", "path", resp.Request.URL.Path)
		}
		if rt.Token != TokenNone {
			privateCache(resp.Header)
		}
		if IsNavigation(resp.Request.Header) {
			forceDownload(resp.Header)
		}
		return nil
	}
}

// IsNavigation reports whether the browser marked a request (by its Fetch
// Metadata, https://w3c.github.io/webappsec-fetch-metadata/) as loading a
// document: a top-level navigation, a frame, an embed or an object. The
// server refuses such requests to a route unless Route.Downloads is set;
// the proxy forces every answer to one to be a download (forceDownload),
// whatever the route, so an API's HTML never renders on the app's origin.
// Any value that names a navigation counts, in any case: when in doubt, a
// request is a navigation.
func IsNavigation(h http.Header) bool {
	for _, v := range h["Sec-Fetch-Mode"] {
		if strings.EqualFold(v, "navigate") || strings.EqualFold(v, "nested-navigate") {
			return true
		}
	}
	for _, v := range h["Sec-Fetch-Dest"] {
		if documentDest[strings.ToLower(v)] {
			return true
		}
	}
	return false
}

// documentDest are the Sec-Fetch-Dest values of requests whose answer the
// browser renders as a document.
var documentDest = map[string]bool{
	"document": true, "iframe": true, "frame": true, "fencedframe": true, "embed": true, "object": true,
}

// forceDownload makes the answer to a navigation a download that is never
// rendered: Content-Disposition attachment (keeping the upstream's file
// name, replacing "inline"), no MIME sniffing, and a sandbox in case a
// browser renders it anyway (an opaque origin, no script). Chromium shows
// its own error page, not the body, for a non-2xx attachment.
func forceDownload(h http.Header) {
	cd := "attachment"
	if _, params, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		// ParseMediaType has decoded filename* (RFC 6266, RFC 8187) into
		// filename; FormatMediaType encodes it again when it is not ASCII.
		if v := mime.FormatMediaType("attachment", map[string]string{"filename": params["filename"]}); v != "" {
			cd = v
		}
	}
	h.Set("Content-Disposition", cd)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Content-Security-Policy", "sandbox")
}

// dropBFFSetCookies drops any Set-Cookie of the upstream that would set,
// overwrite or delete one of the BFF's own cookies.
func (p *Proxy) dropBFFSetCookies(resp *http.Response) {
	sc := resp.Header["Set-Cookie"]
	if len(sc) == 0 {
		return
	}
	kept := sc[:0:0]
	for _, v := range sc {
		if !setsBFFCookie(v, p.cfg.IsBFFCookie) {
			kept = append(kept, v)
		}
	}
	if len(kept) == len(sc) {
		return
	}
	p.log.Warn("upstream tried to set a BFF cookie; dropped", "path", resp.Request.URL.Path)
	if len(kept) == 0 {
		delete(resp.Header, "Set-Cookie")
		return
	}
	resp.Header["Set-Cookie"] = kept
}
