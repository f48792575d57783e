package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

// maxCooldowns bounds the sessions whose forced-refresh cooldown is
// remembered; past it, the oldest make room. A session evicted early may
// force one more refresh: a flood would need that many live sessions.
const maxCooldowns = 100_000

// cooldown allows one forced refresh per session per period, so that an
// upstream answering 401 invalid_token to everything cannot turn each API
// call into a provider refresh. It is safe for concurrent use.
type cooldown struct {
	mu   sync.Mutex
	last *ttlMap[string, struct{}] // session id -> cooling down
}

func newCooldown(period time.Duration, limit int) *cooldown {
	return &cooldown{last: newTTLMap[string, struct{}](period, limit)}
}

// take reports whether session id may force a refresh at now and, if so,
// starts its cooldown.
func (c *cooldown) take(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, cooling := c.last.get(id, now); cooling {
		return false
	}
	c.last.put(id, struct{}{}, now)
	return true
}

// forcedRefresh refreshes s because an upstream refused its access token.
// A successor already cached for its refresh token is used, at no cost to
// the provider; otherwise at most one refresh per session per cooldown
// reaches the Refresher (or the Owner), and within it the outcome is
// OutcomeCooldown with no tokens.
func (p *Proxy) forcedRefresh(ctx context.Context, s *session.Session) (*oauth.Tokens, Outcome, error) {
	if t := p.refresh.cached(s.RefreshToken); t != nil {
		return t, OutcomeSuccessor, nil
	}
	if !p.cooldown.take(s.ID, p.now()) {
		return nil, OutcomeCooldown, nil
	}
	return p.refresh.refresh(ctx, s.ID, s.RefreshToken, s.Subject, true)
}
