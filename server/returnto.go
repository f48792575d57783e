package server

import (
	"errors"
	"net/url"
	"strings"
)

// errBadReturnTo means a returnTo value is not a same-origin relative path.
var errBadReturnTo = errors.New("server: returnTo must be a same-origin relative path")

// maxReturnTo bounds returnTo; it travels in the sealed login cookie.
const maxReturnTo = 1024

// validReturnTo returns returnTo if it is a same-origin path ("/x?y#z") and
// errBadReturnTo otherwise. It refuses every spelling that a browser might
// resolve to another origin: scheme-relative ("//evil"), backslashes ("/\evil",
// which browsers treat as "//"), encoded slashes or backslashes, any scheme,
// control characters and white space (CR/LF included).
func validReturnTo(s string) (string, error) {
	if s == "" {
		return "/", nil
	}
	if len(s) > maxReturnTo || s[0] != '/' {
		return "", errBadReturnTo
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return "", errBadReturnTo
		}
	}
	if len(s) > 1 && s[1] == '/' {
		return "", errBadReturnTo
	}
	lower := strings.ToLower(s)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "", errBadReturnTo
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "", errBadReturnTo
	}
	return s, nil
}
