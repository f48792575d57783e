package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

// Derived tokens (Route.Resource, Audience, Scopes; TokenClient): the
// upstream of such a route receives a token restricted to it, never the
// session's own. They live in a bounded in-memory cache of this instance,
// never in the cookie:
//   - for a user route, the session's access token exchanged (RFC 8693),
//     keyed by a hash of that token and the target, so a refreshed session
//     token derives anew; kept no longer than the session's access token
//     or the session, so a derived token never outlives what it came from;
//   - for a TokenClient route, the BFF's client-credentials token, shared by
//     every request, fetched again RefreshMargin before it expires.
// Concurrent misses for one key make one token request.

// Deriver obtains derived tokens; *oauth.Client is one.
type Deriver interface {
	Exchange(ctx context.Context, subjectToken, grantedScope string, t oauth.Target) (*oauth.Tokens, error)
	ClientCredentials(ctx context.Context, t oauth.Target) (*oauth.Tokens, error)
}

// defaultDerivedEntries bounds the derived-token cache when
// Config.DerivedCacheEntries is zero.
const defaultDerivedEntries = 10000

type derivedEntry struct {
	t       *oauth.Tokens
	until   time.Time // when it is no longer handed out
	fetched time.Time
}

type derivedCall struct {
	done chan struct{}
	t    *oauth.Tokens
	err  error
}

type derivedStore struct {
	mu    sync.Mutex
	m     *ttlMap[string, derivedEntry]
	calls map[string]*derivedCall
}

func newDerivedStore(limit int) *derivedStore {
	if limit <= 0 {
		limit = defaultDerivedEntries
	}
	// Entries carry their own expiry; the map's is a ceiling for eviction.
	return &derivedStore{m: newTTLMap[string, derivedEntry](24*time.Hour, limit), calls: map[string]*derivedCall{}}
}

// derives reports whether rt's upstream gets a derived token.
func (rt *route) derives() bool {
	return rt.Token == TokenClient || rt.Resource != "" || rt.Audience != "" || len(rt.Scopes) > 0
}

func (rt *route) target() oauth.Target {
	return oauth.Target{Resource: rt.Resource, Audience: rt.Audience, Scopes: rt.Scopes}
}

// targetKey identifies rt's target in the cache.
func (rt *route) targetKey() string {
	return string(rt.Token) + "\x00" + rt.Resource + "\x00" + rt.Audience + "\x00" + strings.Join(rt.Scopes, " ")
}

// derivedFor returns the token rt's upstream gets: for s (nil on a
// TokenClient route). force skips a cached client token older than the
// forced-refresh cooldown (an upstream refused it).
func (p *Proxy) derivedFor(ctx context.Context, rt *route, s *session.Session, force bool) (*oauth.Tokens, error) {
	key := rt.targetKey()
	if s != nil {
		h := sha256.Sum256([]byte(s.AccessToken))
		key += "\x00" + string(h[:16])
	}
	d := p.derived
	now := p.now()
	d.mu.Lock()
	if e, ok := d.m.get(key, now); ok && now.Before(e.until) &&
		!(force && p.cfg.ForcedRefreshCooldown > 0 && now.Sub(e.fetched) >= p.cfg.ForcedRefreshCooldown) {
		d.mu.Unlock()
		return e.t, nil
	}
	if c, ok := d.calls[key]; ok {
		d.mu.Unlock()
		select {
		case <-c.done:
			return c.t, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &derivedCall{done: make(chan struct{})}
	d.calls[key] = c
	d.mu.Unlock()

	// The token request outlives a cancelled client: others may wait on it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	if s == nil {
		c.t, c.err = p.cfg.Deriver.ClientCredentials(rctx, rt.target())
	} else {
		c.t, c.err = p.cfg.Deriver.Exchange(rctx, s.AccessToken, s.Scope, rt.target())
	}
	if c.err == nil && c.t == nil {
		c.err = errors.New("proxy: the provider returned no derived token")
	}
	d.mu.Lock()
	delete(d.calls, key)
	if c.err == nil {
		until := c.t.Expiry.Add(-p.cfg.RefreshMargin)
		if s != nil {
			until = minTime(until, s.AccessExpiryTime(), time.Unix(s.Expiry, 0))
		}
		if now := p.now(); now.Before(until) {
			d.m.put(key, derivedEntry{t: c.t, until: until, fetched: now}, now)
		}
	}
	d.mu.Unlock()
	close(c.done)
	return c.t, c.err
}

func minTime(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if o.Before(t) {
			t = o
		}
	}
	return t
}
