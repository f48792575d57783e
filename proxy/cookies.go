package proxy

import (
	"net/http"
	"strings"
)

// The BFF's cookies never cross the proxy, in either direction: an upstream
// does not see them, and cannot set, overwrite or delete them. Which names
// are the BFF's is Config.IsBFFCookie's to say; it must cover every name the
// cookie reader takes as its own (crypto.InNamespace), or an upstream could
// set a name the reader refuses and so sign the user out.
//
// Names are compared as they are: cookie names are case-sensitive in
// browsers and in the reader, so "__host-http-bff.0" is someone else's.

// stripCookies removes the BFF's cookies from the Cookie header(s).
func stripCookies(h http.Header, isBFF func(string) bool) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	var b strings.Builder
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = trimWSP(part)
			if part == "" || isBFFPart(part, isBFF) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}

// isBFFPart reports whether one part of a Cookie header (trimmed) is one of
// the BFF's cookies, read as the cookie reader reads it: the name is what
// precedes the first '=', and a part without '=' is all name.
func isBFFPart(part string, isBFF func(string) bool) bool {
	name, _, _ := strings.Cut(part, "=")
	return isBFF(name) || isBFF(trimWSP(name))
}

// setsBFFCookie reports whether a Set-Cookie value would set (or delete) a
// cookie that comes back as one of the BFF's. It reads the name as browsers
// do (RFC 6265bis section 5.6): the name-value pair is what precedes the
// first ';', the name what precedes the pair's first '=', both trimmed of
// spaces and tabs; a pair without '=' is a nameless cookie whose value is
// the whole pair. Browsers send a nameless cookie back as its bare value,
// which the cookie reader reads as a Cookie part: as a name (up to any '=').
func setsBFFCookie(v string, isBFF func(string) bool) bool {
	pair, _, _ := strings.Cut(v, ";")
	name, value, ok := strings.Cut(pair, "=")
	if ok {
		if name = trimWSP(name); name != "" {
			return isBFF(name)
		}
	} else {
		value = pair
	}
	value = trimWSP(value)
	return value != "" && (isBFFPart(value, isBFF) || isBFF(value))
}

// trimWSP trims the whitespace of cookie syntax: spaces and tabs.
func trimWSP(s string) string { return strings.Trim(s, " \t") }
