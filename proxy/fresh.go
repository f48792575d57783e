package proxy

import (
	"context"
	"errors"
	"net/http"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

// applyTokens returns a copy of s carrying t.
func applyTokens(s *session.Session, t *oauth.Tokens) *session.Session {
	ns := *s
	ns.AccessToken = t.AccessToken
	ns.AccessExpiry = t.Expiry.Unix()
	ns.DPoPKey = t.DPoPKey
	if t.RefreshToken != "" {
		ns.RefreshToken = t.RefreshToken
	}
	if t.IDToken != "" {
		ns.IDToken = t.IDToken
	}
	if t.Scope != "" {
		ns.Scope = t.Scope
	}
	return &ns
}

// fresh returns s with an access token that is good for at least the refresh
// margin, refreshing it (and writing the new cookie to w) when needed.
func (p *Proxy) fresh(w http.ResponseWriter, r *http.Request, s *session.Session) (*session.Session, error) {
	now := p.now()
	if s.AccessExpiryTime().Sub(now) > p.cfg.RefreshMargin && p.canProve(s) {
		if s.Stale() {
			// Sealed under an older key: re-seal while we can write.
			if err := p.cfg.Sessions.Save(w.Header(), r, s); err != nil {
				p.log.Warn("re-seal failed", "session", s, "err", err)
			}
		}
		return s, nil
	}
	t, outcome, err := p.refresh.refresh(r.Context(), s.ID, s.RefreshToken, s.Subject, true)
	if err == nil && outcome == OutcomeSuccessor && t.RefreshToken != "" && t.RefreshToken != s.RefreshToken &&
		t.Expiry.Sub(p.now()) <= p.cfg.RefreshMargin {
		// The successor itself is about to expire (an old cookie late in
		// the grace window): move on from the successor's refresh token.
		t, outcome, err = p.refresh.refresh(r.Context(), s.ID, t.RefreshToken, s.Subject, true)
	}
	if p.cfg.OnRefresh != nil {
		p.cfg.OnRefresh(outcome, err)
	}
	if err != nil {
		if errors.Is(err, oauth.ErrReauthRequired) {
			p.log.Info("refresh refused, session ended", "session", s, "err", err)
			p.endSession(w, r, s)
			return nil, err
		}
		if p.now().Before(s.AccessExpiryTime()) {
			// The provider is down but the token still works for a while.
			p.log.Warn("refresh failed, using the current token while it lasts", "session", s, "err", err)
			return s, nil
		}
		p.log.Warn("refresh failed", "session", s, "err", err)
		return nil, err
	}
	ns := applyTokens(s, t)
	if err := p.cfg.Sessions.Save(w.Header(), r, ns); err != nil {
		return nil, err
	}
	p.log.Debug("access token refreshed", "session", ns, "outcome", string(outcome))
	return ns, nil
}

// canProve reports whether the BFF holds the key s's access token is bound
// to (always, for a bearer token). One bound to a key rotated out of the
// DPoP keys is refreshed early: the new token is bound to the current key.
func (p *Proxy) canProve(s *session.Session) bool {
	return s.DPoPKey == "" || (p.cfg.DPoP != nil && p.cfg.DPoP.Has(s.DPoPKey))
}

// endSession clears the cookies of a session whose grant the provider
// refused and reports it through OnSessionEnded, so that the server revokes
// the session id and a copy of the cookie dies too. A request calls it at
// most once: fresh ends a session before forwarding, and a request without
// a session is never retried.
func (p *Proxy) endSession(w http.ResponseWriter, r *http.Request, s *session.Session) {
	p.cfg.Sessions.Clear(w.Header(), r)
	if p.cfg.OnSessionEnded != nil {
		p.cfg.OnSessionEnded(r, s)
	}
}

// RefreshLocal refreshes on this instance, sharing the single flight and
// successor cache of the proxy's own refreshes. It serves the owner side of
// a refresh forwarded by another instance; it never forwards again.
func (p *Proxy) RefreshLocal(ctx context.Context, refreshToken, sub string) (*oauth.Tokens, Outcome, error) {
	t, outcome, err := p.refresh.refresh(ctx, "", refreshToken, sub, false)
	if p.cfg.OnRefresh != nil {
		p.cfg.OnRefresh(outcome, err)
	}
	return t, outcome, err
}
