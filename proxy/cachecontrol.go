package proxy

import (
	"net/http"
	"strings"
)

// Through the BFF the browser authenticates with a cookie, not with the
// Authorization header a shared cache recognizes (RFC 9111 section 3.5), so
// a CDN or an nginx proxy_cache in front of the BFF would serve one user's
// API response to the next user of the same URL. privateCache keeps such
// responses out of shared caches:
//
//   - Cache-Control becomes private: public, s-maxage and proxy-revalidate
//     (which only speak to shared caches) are removed, the other directives
//     (max-age, no-cache, must-revalidate, ...) kept for the browser's own
//     cache, and private is added; a response without Cache-Control gets
//     "private". A response that says no-store is left as it is. A qualified
//     private="field" only keeps those fields out of shared caches (RFC 9111
//     section 5.2.2.7), so it becomes a plain private.
//   - Vary gains Cookie, for caches that ignore private (Vary: * is left
//     alone: it already matches nothing).
//   - The headers addressed to CDNs only, which override Cache-Control there,
//     are removed: CDN-Cache-Control (RFC 9213), Surrogate-Control and
//     Cloudflare-CDN-Cache-Control.
//
// It is applied on routes that send a bearer (TokenUser, TokenOptional);
// a TokenNone route's response passes untouched.
func privateCache(h http.Header) {
	for _, name := range cdnCacheHeaders {
		delete(h, name)
	}
	if cc, changed := privateCacheControl(h["Cache-Control"]); changed {
		h["Cache-Control"] = cc
	}
	varyCookie(h)
}

// cdnCacheHeaders are canonical header keys (as http.Header holds them).
var cdnCacheHeaders = []string{
	http.CanonicalHeaderKey("CDN-Cache-Control"),
	http.CanonicalHeaderKey("Surrogate-Control"),
	http.CanonicalHeaderKey("Cloudflare-CDN-Cache-Control"),
}

// privateCacheControl returns the Cache-Control lines made private, and
// whether they changed.
func privateCacheControl(lines []string) ([]string, bool) {
	var kept []string
	noStore, private, dropped := false, false, false
	for _, line := range lines {
		for _, d := range listItems(line) {
			name, _, qualified := strings.Cut(d, "=")
			name = strings.TrimSpace(name)
			switch {
			case strings.EqualFold(name, "no-store"):
				noStore = true
			case strings.EqualFold(name, "private") && !qualified:
				private = true
			case strings.EqualFold(name, "private"), strings.EqualFold(name, "public"),
				strings.EqualFold(name, "s-maxage"), strings.EqualFold(name, "proxy-revalidate"):
				dropped = true
				continue
			}
			kept = append(kept, d)
		}
	}
	if noStore || (private && !dropped) {
		return lines, false
	}
	if !private {
		kept = append(kept, "private")
	}
	return []string{strings.Join(kept, ", ")}, true
}

// varyCookie adds Cookie to Vary, unless it is there or Vary is "*".
func varyCookie(h http.Header) {
	var items []string
	for _, line := range h["Vary"] {
		items = append(items, listItems(line)...)
	}
	for _, it := range items {
		if it == "*" || strings.EqualFold(it, "Cookie") {
			return
		}
	}
	h["Vary"] = []string{strings.Join(append(items, "Cookie"), ", ")}
}

// listItems splits an HTTP list (RFC 9110 section 5.6.1) into its trimmed,
// non-empty items; a comma inside a quoted string (no-cache="a, b") does
// not split.
func listItems(line string) []string {
	var items []string
	start, quoted := 0, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case quoted && c == '\\':
			i++ // the escaped character
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			items = appendItem(items, line[start:i])
			start = i + 1
		}
	}
	return appendItem(items, line[start:])
}

func appendItem(items []string, s string) []string {
	if s = strings.Trim(s, " \t"); s != "" {
		items = append(items, s)
	}
	return items
}
