package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

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

type derivedStore struct {
	mu    sync.Mutex
	m     *ttlMap[string, derivedEntry]
	group singleflight.Group // concurrent misses for one key: one token request
}

func newDerivedStore(limit int) *derivedStore {
	if limit <= 0 {
		limit = defaultDerivedEntries
	}
	// Entries carry their own expiry; the map's is a ceiling for eviction.
	return &derivedStore{m: newTTLMap[string, derivedEntry](24*time.Hour, limit)}
}

// cached is key's token while it may be handed out: not past its until,
// and with force, not older than cooldown (when positive).
func (d *derivedStore) cached(key string, now time.Time, force bool, cooldown time.Duration) (*oauth.Tokens, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m.get(key, now)
	if !ok || !now.Before(e.until) || (force && cooldown > 0 && now.Sub(e.fetched) >= cooldown) {
		return nil, false
	}
	return e.t, true
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
	d, cooldown := p.derived, p.cfg.ForcedRefreshCooldown
	if t, ok := d.cached(key, p.now(), force, cooldown); ok {
		return t, nil
	}
	ch := d.group.DoChan(key, func() (any, error) {
		// A request for this key that finished just now left its token.
		if t, ok := d.cached(key, p.now(), force, cooldown); ok {
			return t, nil
		}
		// The token request serves every request waiting on it: one
		// client going away must not cancel it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		var t *oauth.Tokens
		var err error
		if s == nil {
			t, err = p.cfg.Deriver.ClientCredentials(rctx, rt.target())
		} else {
			t, err = p.cfg.Deriver.Exchange(rctx, s.AccessToken, s.Scope, rt.target())
		}
		if err == nil && t == nil {
			err = errors.New("proxy: the provider returned no derived token")
		}
		if err != nil {
			return nil, err
		}
		until := t.Expiry.Add(-p.cfg.RefreshMargin)
		if s != nil {
			until = minTime(until, s.AccessExpiryTime(), time.Unix(s.Expiry, 0))
		}
		if now := p.now(); now.Before(until) {
			d.mu.Lock()
			d.m.put(key, derivedEntry{t: t, until: until, fetched: now}, now)
			d.mu.Unlock()
		}
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*oauth.Tokens), nil
	case <-ctx.Done(): // the flight goes on for the others
		return nil, ctx.Err()
	}
}

func minTime(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if o.Before(t) {
			t = o
		}
	}
	return t
}
