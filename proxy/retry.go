package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/bff-project/bff/oauth"
)

// retryTransport retries a body-less request once with a refreshed token
// when the upstream says the token is invalid (RFC 6750 section 3.1:
// 401 with WWW-Authenticate: Bearer error="invalid_token"), e.g. because the
// provider revoked it before its expiry.
type retryTransport struct{ next http.RoundTripper }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f, _ := req.Context().Value(forwardKey{}).(*forward)
	resp, err := t.trip(f, req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
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
	return t.trip(f, retry)
}

// trip is one round trip, marked on f so that an informational response
// arriving during it cannot touch the client's headers (informational.go).
func (t retryTransport) trip(f *forward, req *http.Request) (*http.Response, error) {
	if f != nil {
		f.inTrip.Store(true)
		defer f.inTrip.Store(false)
	}
	return t.next.RoundTrip(req)
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

// retry force-refreshes the session when the upstream refuses its token,
// writing the new cookie to w (whose headers are not sent before the
// transport returns), and returns the new access token. At most once per
// request: never a loop; at most one provider refresh per session per
// ForcedRefreshCooldown (see forcedRefresh), none when that is negative.
func (f *forward) retry() (string, bool) {
	if f.s == nil || f.p.cooldown == nil || f.retried.Swap(true) {
		return "", false
	}
	p, s := f.p, f.s
	t, outcome, err := p.forcedRefresh(f.r.Context(), s)
	if p.cfg.OnRefresh != nil {
		p.cfg.OnRefresh(outcome, err)
	}
	if err != nil {
		p.log.Info("upstream refused the token and the forced refresh failed", "session", s, "err", err)
		if errors.Is(err, oauth.ErrReauthRequired) {
			p.endSession(f.w, f.r, s)
		}
		return "", false
	}
	if outcome == OutcomeCooldown {
		p.log.Debug("upstream refused the token; no forced refresh inside the cooldown", "session", s)
		return "", false
	}
	if t.AccessToken == s.AccessToken {
		return "", false // the successor is the token just refused
	}
	ns := applyTokens(s, t)
	if err := p.cfg.Sessions.Save(f.w.Header(), f.r, ns); err != nil {
		p.log.Warn("saving the refreshed session failed", "session", s, "err", err)
		return "", false
	}
	return ns.AccessToken, true
}
