package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

// retryTransport retries a request once with a refreshed token when the
// upstream says the token is invalid (RFC 6750 section 3.1: 401 with
// WWW-Authenticate: Bearer or DPoP error="invalid_token"), e.g. because the
// provider revoked it before its expiry; and a DPoP request once with the
// nonce an upstream's use_dpop_nonce challenge asks for (RFC 9449 section 9).
// Only a request that can be sent again is retried: body-less, or a DPoP
// request whose body is at most maxReplayBody bytes.
type retryTransport struct{ next http.RoundTripper }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f, _ := req.Context().Value(forwardKey{}).(*forward)
	dpop := f != nil && f.g.token != "" && len(req.Header["Dpop"]) > 0 // set by authorize; the client's is stripped
	rewind := func() {}
	if req.Body != nil && req.Body != http.NoBody {
		rewind = nil
		if dpop {
			rewind = replayable(req)
		}
	}
	resp, err := t.trip(f, req)
	if err != nil {
		return resp, err
	}
	if dpop {
		if n := resp.Header.Get("DPoP-Nonce"); oauth.ValidNonce(n) {
			f.p.nonces.set(origin(req.URL), n)
		}
	}
	if resp.StatusCode != http.StatusUnauthorized || rewind == nil {
		return resp, nil
	}
	if _, ok := oauth.ResourceNonceChallenge(resp); dpop && ok {
		retry := req.Clone(req.Context())
		if !f.p.authorize(retry.Header, f.rt, f.g, req.Method, req.URL) {
			return resp, nil
		}
		discard(resp)
		rewind()
		retry.Body = req.Body
		if resp, err = t.trip(f, retry); err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		req = retry
	}
	if f == nil || !invalidToken(resp.Header.Values("WWW-Authenticate")) {
		return resp, nil
	}
	g, ok := f.regrant()
	if !ok {
		return resp, nil
	}
	retry := req.Clone(req.Context())
	delete(retry.Header, "Dpop")
	if !f.p.authorize(retry.Header, f.rt, g, req.Method, req.URL) {
		return resp, nil
	}
	discard(resp)
	rewind()
	retry.Body = req.Body
	return t.trip(f, retry)
}

func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
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

// invalidToken reports whether a WWW-Authenticate challenge is a Bearer or
// DPoP challenge with error="invalid_token".
func invalidToken(challenges []string) bool {
	for _, c := range challenges {
		lc := strings.TrimSpace(strings.ToLower(c))
		if !strings.HasPrefix(lc, "bearer") && !strings.HasPrefix(lc, "dpop") {
			continue
		}
		if strings.Contains(lc, `error="invalid_token"`) || strings.Contains(lc, "error=invalid_token") {
			return true
		}
	}
	return false
}

// regrant is a new token for a request whose token the upstream refused:
// the session force-refreshed (see retry), then derived again for a route
// with a target; on a TokenClient route, a new client token unless the
// current one is younger than the forced-refresh cooldown. At most once per
// request.
func (f *forward) regrant() (grant, bool) {
	if f.rt.Token == TokenClient {
		if f.p.cooldown == nil || f.retried.Swap(true) {
			return grant{}, false
		}
		old := f.g.token
		t, err := f.p.derivedFor(f.r.Context(), f.rt, nil, true)
		if err != nil || t.AccessToken == old {
			return grant{}, false
		}
		return tokensGrant(t), true
	}
	ns, ok := f.retry()
	if !ok {
		return grant{}, false
	}
	g, err := f.p.grantFor(f.r.Context(), f.rt, ns)
	if err != nil {
		f.p.log.Info("upstream refused the token and deriving a new one failed", "route", f.rt.Path, "err", err)
		return grant{}, false
	}
	return g, true
}

// retry force-refreshes the session when the upstream refuses its token,
// writing the new cookie to w (whose headers are not sent before the
// transport returns), and returns the refreshed session. At most once per
// request: never a loop; at most one provider refresh per session per
// ForcedRefreshCooldown (see forcedRefresh), none when that is negative.
func (f *forward) retry() (*session.Session, bool) {
	if f.s == nil || f.p.cooldown == nil || f.retried.Swap(true) {
		return nil, false
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
		return nil, false
	}
	if outcome == OutcomeCooldown {
		p.log.Debug("upstream refused the token; no forced refresh inside the cooldown", "session", s)
		return nil, false
	}
	if t.AccessToken == s.AccessToken {
		return nil, false // the successor is the token just refused
	}
	ns := applyTokens(s, t)
	if err := p.cfg.Sessions.Save(f.w.Header(), f.r, ns); err != nil {
		p.log.Warn("saving the refreshed session failed", "session", s, "err", err)
		return nil, false
	}
	return ns, true
}
