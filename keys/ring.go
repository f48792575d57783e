package keys

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrUnknownKey is returned by Lookup for a kid that is malformed, names no
// configured master secret, or names an epoch outside the accepted range.
var ErrUnknownKey = errors.New("keys: unknown key id")

// MinSecretLen is the shortest master secret accepted, in bytes.
const MinSecretLen = 32

// Defaults applied by New to zero Config fields.
const (
	DefaultRotation = 24 * time.Hour
	DefaultWindow   = 24 * time.Hour
	DefaultMaxSkew  = time.Minute
)

// Config configures a Ring. The zero value of every field but Secrets is
// usable.
type Config struct {
	// Secrets are the raw master secrets, each at least 32 bytes. Secrets[0]
	// seals; all of them open. Required. The ring keeps no reference to the
	// slices.
	Secrets [][]byte
	// Rotation is the epoch length: the sealing key changes every Rotation.
	// Zero means 24h. It must be a whole number of seconds, at least 1s, and
	// the same on every instance.
	Rotation time.Duration
	// Window is how old an epoch may be and still open: a kid opens if its
	// epoch is not older than the epoch containing now-Window. Callers pass
	// the session lifetime. Zero means 24h.
	Window time.Duration
	// MaxSkew tolerates clocks running behind other instances: a kid of the
	// next epoch is accepted only if now+MaxSkew falls inside it. Zero means
	// one minute.
	MaxSkew time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Key is one derived key.
type Key struct {
	// ID is the key id, "<master id>.<epoch>", used as the JWE "kid". It
	// reveals nothing about the key.
	ID string
	// Secret is the 32-byte AES-256 key. It is shared with the ring's cache:
	// callers must not modify it.
	Secret []byte
}

// Ring is a set of master secrets and the keys derived from them. It is safe
// for concurrent use; Sealing and Lookup take no locks.
type Ring struct {
	rotation int64 // seconds
	window   time.Duration
	maxSkew  time.Duration
	now      func() time.Time
	state    atomic.Pointer[state]
}

// state is an immutable set of masters, swapped as a whole by Reload.
type state struct {
	masters []*master          // masters[0] seals
	byID    map[string]*master // all masters by id
}

// New validates cfg and returns a ring.
func New(cfg Config) (*Ring, error) {
	r := &Ring{
		window:  cfg.Window,
		maxSkew: cfg.MaxSkew,
		now:     cfg.Now,
	}
	rotation := cfg.Rotation
	if rotation == 0 {
		rotation = DefaultRotation
	}
	if rotation < time.Second || rotation%time.Second != 0 {
		return nil, fmt.Errorf("keys: rotation %v must be a whole number of seconds, at least 1s", cfg.Rotation)
	}
	r.rotation = int64(rotation / time.Second)
	if r.window == 0 {
		r.window = DefaultWindow
	}
	if r.window < 0 {
		return nil, fmt.Errorf("keys: window %v must not be negative", cfg.Window)
	}
	if r.maxSkew == 0 {
		r.maxSkew = DefaultMaxSkew
	}
	if r.maxSkew < 0 {
		return nil, fmt.Errorf("keys: max skew %v must not be negative", cfg.MaxSkew)
	}
	if r.now == nil {
		r.now = time.Now
	}
	st, err := newState(cfg.Secrets, nil)
	if err != nil {
		return nil, err
	}
	r.state.Store(st)
	return r, nil
}

// newState validates secrets and builds a state. Masters already in old are
// reused so their key caches survive a reload.
func newState(secrets [][]byte, old *state) (*state, error) {
	if len(secrets) == 0 {
		return nil, errors.New("keys: no master secrets")
	}
	st := &state{
		masters: make([]*master, 0, len(secrets)),
		byID:    make(map[string]*master, len(secrets)),
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("keys: master secret %d is %d bytes, need at least %d", i+1, len(s), MinSecretLen)
		}
		m := newMaster(s)
		if _, dup := st.byID[m.id]; dup {
			return nil, fmt.Errorf("keys: master secret %d is a duplicate", i+1)
		}
		if old != nil {
			if prev, ok := old.byID[m.id]; ok {
				m = prev
			}
		}
		st.masters = append(st.masters, m)
		st.byID[m.id] = m
	}
	return st, nil
}

// Reload validates secrets and atomically replaces the ring's master secrets.
// On error the ring keeps its previous secrets. Keys of a master that is no
// longer listed stop opening at once.
func (r *Ring) Reload(secrets [][]byte) error {
	st, err := newState(secrets, r.state.Load())
	if err != nil {
		return err
	}
	r.state.Store(st)
	return nil
}

// MasterIDs returns the ids of the master secrets, the sealing one first:
// the first part of every key id ("<master id>.<epoch>"). They reveal
// nothing about the secrets.
func (r *Ring) MasterIDs() []string {
	st := r.state.Load()
	ids := make([]string, len(st.masters))
	for i, m := range st.masters {
		ids[i] = m.id
	}
	return ids
}

// epochOf returns the epoch containing t: floor(unix seconds / rotation).
func (r *Ring) epochOf(t time.Time) int64 {
	s := t.Unix()
	e := s / r.rotation
	if s%r.rotation < 0 {
		e--
	}
	return e
}

// Sealing returns the current epoch's key derived from the first master
// secret.
func (r *Ring) Sealing() Key {
	return r.state.Load().masters[0].key(r.epochOf(r.now()))
}

// Lookup returns the key named by kid. It returns ErrUnknownKey when kid is
// malformed, names no configured master, names an epoch older than the one
// containing now-Window, or names a future epoch other than the next one
// while now+MaxSkew is inside it.
func (r *Ring) Lookup(kid string) (Key, error) {
	id, e, ok := parseKID(kid)
	if !ok {
		return Key{}, ErrUnknownKey
	}
	m := r.state.Load().byID[id]
	if m == nil {
		return Key{}, ErrUnknownKey
	}
	now := r.now()
	cur := r.epochOf(now)
	switch {
	case e == cur:
	case e < cur:
		if e < r.epochOf(now.Add(-r.window)) {
			return Key{}, ErrUnknownKey
		}
	case e == cur+1:
		if r.epochOf(now.Add(r.maxSkew)) < e {
			return Key{}, ErrUnknownKey
		}
	default:
		return Key{}, ErrUnknownKey
	}
	return m.key(e), nil
}
