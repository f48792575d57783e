package proxy

import (
	"io"
	"net/http"
	"strings"
)

// retryTransport retries a body-less request once with a refreshed token
// when the upstream says the token is invalid (RFC 6750 section 3.1:
// 401 with WWW-Authenticate: Bearer error="invalid_token"), e.g. because the
// provider revoked it before its expiry.
type retryTransport struct{ next http.RoundTripper }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	f, _ := req.Context().Value(forwardKey{}).(*forward)
	if f == nil || (req.Body != nil && req.Body != http.NoBody) || !invalidToken(resp.Header.Values("WWW-Authenticate")) {
		return resp, nil
	}
	bearer, ok := f.retry()
	if !ok {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	retry := req.Clone(req.Context())
	retry.Header.Set("Authorization", "Bearer "+bearer)
	return t.next.RoundTrip(retry)
}

// invalidToken reports whether a WWW-Authenticate challenge is a Bearer
// challenge with error="invalid_token".
func invalidToken(challenges []string) bool {
	for _, c := range challenges {
		lc := strings.ToLower(c)
		if !strings.HasPrefix(strings.TrimSpace(lc), "bearer") {
			continue
		}
		if strings.Contains(lc, `error="invalid_token"`) || strings.Contains(lc, "error=invalid_token") {
			return true
		}
	}
	return false
}
