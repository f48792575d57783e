package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bff-project/bff/oauth"
)

// Refresher redeems a refresh token. *oauth.Client is one.
//
// Refresh must be safe for concurrent use. It may assume that one refresh
// token is never passed to it twice at the same time by this package.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken, sub string) (*oauth.Tokens, error)
}

// Owner sends a session's refresh to the instance that owns the session, so
// that across instances one refresh token is redeemed once. The server's
// cluster-aware implementation picks the owner by rendezvous hashing.
//
// RefreshAt must be safe for concurrent use. ok is false when this instance
// owns the session or the owner could not be asked: the caller then
// refreshes locally. When ok is true, err is the owner's answer (for
// example oauth.ErrReauthRequired).
type Owner interface {
	RefreshAt(ctx context.Context, sessionID, refreshToken, sub string) (t *oauth.Tokens, ok bool, err error)
}

// refreshTimeout bounds one refresh: the provider is down rather than slow
// after this long.
const refreshTimeout = 15 * time.Second

// maxSuccessors bounds the successor cache; past it, the oldest entries
// make room (expired ones first): the newest successor is the one a racing
// request is about to need, so it is always stored.
const maxSuccessors = 100_000

// refresher makes sure one refresh token is redeemed once.
type refresher struct {
	r     Refresher
	owner Owner // nil: always local
	grace time.Duration
	now   func() time.Time

	group singleflight.Group
	mu    sync.Mutex
	// succ maps a hash of a refresh token to the token set that replaced
	// it, kept for the grace window so that requests still carrying the
	// old cookie use it.
	succ *ttlMap[[32]byte, *oauth.Tokens]
}

// Outcome says how a refresh was satisfied (for logs and metrics).
type Outcome string

const (
	OutcomeRefreshed Outcome = "refreshed" // this request redeemed the refresh token
	OutcomeShared    Outcome = "shared"    // joined a refresh in flight (single flight)
	OutcomeSuccessor Outcome = "successor" // the token was already redeemed; the successor was used
	OutcomeForwarded Outcome = "forwarded" // the owning instance refreshed (or had refreshed) it
	OutcomeCooldown  Outcome = "cooldown"  // a forced refresh refused: the session had one within the cooldown
)

func newRefresher(r Refresher, owner Owner, grace time.Duration, now func() time.Time) *refresher {
	return &refresher{r: r, owner: owner, grace: grace, now: now, succ: newTTLMap[[32]byte, *oauth.Tokens](grace, maxSuccessors)}
}

// cached returns the successor of refreshToken if one is cached: using it
// costs the provider nothing.
func (x *refresher) cached(refreshToken string) *oauth.Tokens {
	if refreshToken == "" {
		return nil
	}
	return x.lookup(sha256.Sum256([]byte(refreshToken)))
}

// refresh returns the tokens that succeed refreshToken. With forward set,
// the session's owning instance is asked first.
func (x *refresher) refresh(ctx context.Context, sessionID, refreshToken, sub string, forward bool) (*oauth.Tokens, Outcome, error) {
	if refreshToken == "" {
		return nil, "", oauth.ErrReauthRequired
	}
	key := sha256.Sum256([]byte(refreshToken))
	if t := x.lookup(key); t != nil {
		return t, OutcomeSuccessor, nil
	}
	won, forwarded := false, false
	v, err, shared := x.group.Do(string(key[:]), func() (any, error) {
		// A refresh that finished between lookup and Do left a successor.
		if t := x.lookup(key); t != nil {
			return t, nil
		}
		won = true
		// The refresh serves every request waiting on it: one client going
		// away must not cancel it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		if forward && x.owner != nil {
			t, ok, err := x.owner.RefreshAt(rctx, sessionID, refreshToken, sub)
			if ok {
				forwarded = true
				if err != nil {
					return nil, err
				}
				x.store(key, t)
				return t, nil
			}
		}
		t, err := x.r.Refresh(rctx, refreshToken, sub)
		if err != nil {
			return nil, err
		}
		x.store(key, t)
		return t, nil
	})
	if err != nil {
		return nil, "", err
	}
	t, ok := v.(*oauth.Tokens)
	if !ok || t == nil {
		return nil, "", errors.New("proxy: refresh returned no tokens")
	}
	switch {
	case won && forwarded:
		return t, OutcomeForwarded, nil
	case won:
		return t, OutcomeRefreshed, nil
	case shared:
		return t, OutcomeShared, nil
	default:
		return t, OutcomeSuccessor, nil
	}
}

func (x *refresher) lookup(key [32]byte) *oauth.Tokens {
	now := x.now()
	x.mu.Lock()
	defer x.mu.Unlock()
	t, _ := x.succ.get(key, now)
	return t
}

func (x *refresher) store(key [32]byte, t *oauth.Tokens) {
	if x.grace <= 0 {
		return
	}
	now := x.now()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.succ.put(key, t, now)
}
