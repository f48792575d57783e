package session

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bff-project/bff/crypto"
)

var (
	// ErrNoSession means the request carries no session cookie.
	ErrNoSession = errors.New("session: no session")
	// ErrInvalid means the cookies do not open as a session: tampered,
	// truncated, reordered, sealed by an unknown or retired key, or for
	// another purpose. Deliberately one error.
	ErrInvalid = errors.New("session: invalid session cookie")
	// ErrExpired means the session is past its absolute lifetime, or (as
	// ErrIdle, which wraps it) unused for longer than the idle timeout.
	ErrExpired = errors.New("session: session expired")
	// ErrIdle means the session was not used for the idle timeout.
	// errors.Is(ErrIdle, ErrExpired) is true: it ends the same way.
	ErrIdle = fmt.Errorf("%w: idle too long", ErrExpired)
	// ErrRevoked means the session was logged out or revoked.
	ErrRevoked = errors.New("session: session revoked")
)

// Revoker answers whether a session was revoked. *revocation.List is one.
type Revoker interface {
	Revoked(id, idpSession, sub string, start time.Time) bool
}

// Config configures a Store.
type Config struct {
	Sealer  *crypto.Sealer  // required
	Chunker *crypto.Chunker // required
	// Revoker is asked on every Load; nil means no revocation (tests only).
	Revoker Revoker
	// Budget is the most cookie bytes (names and values, as the browser
	// sends them back) a session should take; zero means 6,000, which leaves
	// room for the app's own cookies under nginx's 8 KB header limit.
	Budget int
	// OverBudget, when set, is called with the size of every session written
	// over Budget (the server logs and counts it). The write still happens.
	OverBudget func(bytes int, s *Session)
	// OnSave, when set, is called with the cookie bytes of every session
	// written (metrics).
	OnSave func(bytes int)
	// CacheEntries bounds the cache of recently opened sessions (about the
	// session's size each, ~3 KB); zero means 4096, negative disables it.
	CacheEntries int
	// IdleTimeout ends a session not used for this long; zero means none.
	// Use slides: Save records the time in Session.LastSeen, and Load
	// marks a session Stale once it was last seen more than min(IdleTimeout/10,
	// 5 min) ago (at least one second: LastSeen is Unix seconds), so the
	// caller re-seals it at most once per such interval. At least one
	// second when set.
	IdleTimeout time.Duration
	// Persistent gives the session cookies a Max-Age of the seconds left
	// until the session's absolute expiry, computed at each Save, so a
	// re-seal keeps the same end. False writes browser-session cookies,
	// which the browser drops when it closes.
	Persistent bool
	// JSONPayload seals sessions as JSON, as builds before the binary
	// payload did, so that those builds can still open them: for a
	// rolling upgrade from, or a rollback to, such a build. Load reads
	// both either way.
	JSONPayload bool
	// Compress chooses when a session is DEFLATE-compressed before sealing:
	// CompressAuto (the zero value) only when that saves a cookie chunk or
	// brings a cookie over Budget down, CompressAlways, CompressNever.
	Compress Compression
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Compression is Config.Compress. Inflating costs more than the rest of
// opening a cookie (~14 of ~21 µs for a typical session here), on every
// request the open-session cache does not answer, and saves about a fifth
// of the bytes; auto pays it only where it keeps a cookie chunk away or the
// cookie under its budget.
type Compression int

// Compression modes.
const (
	CompressAuto Compression = iota
	CompressNever
	CompressAlways
)

// Store reads and writes sessions as sealed, chunked cookies.
type Store struct {
	cfg        Config
	now        func() time.Time
	cache      *openCache
	slideEvery time.Duration // how long after LastSeen a session is re-sealed
	hits       atomic.Uint64 // Loads answered by the cache
	opens      atomic.Uint64 // Loads that decrypted the cookie
}

// maxSlideEvery caps the slide interval: a session is re-sealed at least this
// often while used, whatever the idle timeout.
const maxSlideEvery = 5 * time.Minute

// NewStore validates cfg.
func NewStore(cfg Config) (*Store, error) {
	if cfg.Sealer == nil || cfg.Chunker == nil {
		return nil, errors.New("session: sealer and chunker are required")
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 6000
	}
	if cfg.CacheEntries == 0 {
		cfg.CacheEntries = 4096
	}
	if cfg.IdleTimeout < 0 || (cfg.IdleTimeout > 0 && cfg.IdleTimeout < time.Second) {
		return nil, errors.New("session: idle timeout must be zero or at least one second")
	}
	s := &Store{cfg: cfg, now: cfg.Now, cache: newOpenCache(cfg.CacheEntries)}
	s.slideEvery = max(time.Second, min(cfg.IdleTimeout/10, maxSlideEvery))
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Load opens the session the request carries. Errors: ErrNoSession,
// ErrInvalid, ErrExpired, ErrIdle (which is ErrExpired), ErrRevoked. On any
// error but ErrNoSession the caller should Clear the cookies. A session due
// to slide (see Config.IdleTimeout) is returned Stale: a caller that can write
// cookies re-seals it with Save; one that must not extend it (a status poll)
// does not.
func (s *Store) Load(r *http.Request) (*Session, error) {
	value, err := s.cfg.Chunker.Read(r)
	if errors.Is(err, crypto.ErrNoCookie) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, ErrInvalid
	}
	now := s.now()
	var key [32]byte
	if s.cache != nil {
		key = cacheKey(value)
	}
	var sess *Session
	if e := s.cache.get(key, now.Unix()); e != nil {
		if ok, stale := s.cfg.Sealer.OpenedKey(e.kid); ok {
			cp := e.sess
			cp.stale = stale
			sess = &cp
		}
	}
	if sess != nil {
		s.hits.Add(1)
	} else {
		s.opens.Add(1)
		plain, kid, stale, err := s.cfg.Sealer.OpenKey(crypto.Session, value)
		if err != nil {
			return nil, ErrInvalid
		}
		sess = new(Session)
		if err := unmarshal(plain, sess); err != nil || !sess.wellFormed() {
			return nil, ErrInvalid
		}
		s.remember(key, kid, sess)
		sess.stale = stale
	}
	if !now.Before(sess.ExpiryTime()) {
		return nil, ErrExpired
	}
	// On a cache hit too: the cached copy holds the sealed LastSeen, so
	// the cache never makes an idle session look used.
	if s.cfg.IdleTimeout > 0 {
		seen := sess.LastSeen
		if seen == 0 {
			seen = sess.Start // sealed before the idle timeout was set
		}
		idle := now.Sub(time.Unix(seen, 0))
		if idle >= s.cfg.IdleTimeout {
			return nil, ErrIdle
		}
		if idle > s.slideEvery {
			sess.stale = true
		}
	}
	if s.cfg.Revoker != nil && s.cfg.Revoker.Revoked(sess.ID, sess.IdPSession, sess.Subject, sess.StartTime()) {
		return nil, ErrRevoked
	}
	return sess, nil
}

// Save seals sess under the current key and adds its Set-Cookie headers to h,
// deleting chunks that r carries and the new value no longer needs. With an
// idle timeout, it sets sess.LastSeen to now: every write is a use. With
// Persistent, the cookies' Max-Age is the time left until sess.Expiry.
func (s *Store) Save(h http.Header, r *http.Request, sess *Session) error {
	now := s.now()
	sess.V = Version
	sess.LastSeen = 0 // not needed without an idle timeout: keep cookies small
	if s.cfg.IdleTimeout > 0 {
		sess.LastSeen = now.Unix()
	}
	var plain []byte
	var err error
	if s.cfg.JSONPayload {
		plain, err = json.Marshal(sess)
	} else {
		plain, err = marshal(sess)
	}
	if err != nil {
		return fmt.Errorf("session: encode: %w", err)
	}
	maxAge := 0 // browser-session cookies
	if s.cfg.Persistent {
		// Max-Age must be positive: a session saved at or past its expiry
		// gets one second (Load refuses it anyway).
		maxAge = int(max(1, sess.Expiry-now.Unix()))
	}
	value, err := s.seal(plain, maxAge)
	if err != nil {
		return fmt.Errorf("session: seal: %w", err)
	}
	// n is what the browser sends back: "NAME.0=chunk; NAME.1=...", with
	// the configured name and the chunk sizes of this write.
	if s.cfg.Persistent {
		err = s.cfg.Chunker.WriteMaxAge(h, r, value, maxAge)
	} else {
		err = s.cfg.Chunker.Write(h, r, value)
	}
	n := s.headerBytes(value, maxAge)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	sess.stale = false
	if s.cache != nil {
		s.remember(cacheKey(value), crypto.KeyID(value), sess)
	}
	if s.cfg.OnSave != nil {
		s.cfg.OnSave(n)
	}
	if n > s.cfg.Budget && s.cfg.OverBudget != nil {
		s.cfg.OverBudget(n, sess)
	}
	return nil
}

// seal seals plain as Config.Compress says, for cookies written with maxAge
// (0: browser-session cookies).
func (s *Store) seal(plain []byte, maxAge int) (string, error) {
	value, err := s.cfg.Sealer.SealWith(crypto.Session, plain, s.cfg.Compress == CompressAlways)
	if s.cfg.Compress != CompressAuto {
		return value, err
	}
	chunks := 0
	if err == nil {
		if chunks = s.cfg.Chunker.Count(value, maxAge); chunks <= 1 {
			return value, nil
		}
	}
	// Over one chunk (or over the size limit) as it is: compressed when
	// that takes fewer chunks, or brings a cookie over the budget down.
	// Inflating costs more than opening a cookie on every request the
	// cache does not answer; bytes alone do not pay for it.
	packed, perr := s.cfg.Sealer.SealWith(crypto.Session, plain, true)
	switch {
	case perr != nil:
		return value, err
	case err != nil:
		return packed, nil
	case s.cfg.Chunker.Count(packed, maxAge) < chunks,
		s.headerBytes(value, maxAge) > s.cfg.Budget && len(packed) < len(value):
		return packed, nil
	}
	return value, nil
}

// headerBytes is what the browser sends back for value written with maxAge.
func (s *Store) headerBytes(value string, maxAge int) int {
	if maxAge > 0 {
		return s.cfg.Chunker.HeaderBytesMaxAge(value, maxAge)
	}
	return s.cfg.Chunker.HeaderBytes(value)
}

// Clear deletes every session chunk the request carries, and forgets the
// opened session.
func (s *Store) Clear(h http.Header, r *http.Request) {
	if value, err := s.cfg.Chunker.Read(r); err == nil {
		if s.cache != nil {
			s.cache.drop(cacheKey(value))
		}
	}
	s.cfg.Chunker.Clear(h, r)
}

// remember caches an opened or sealed session until its access token (or,
// if sooner, the session) expires.
func (s *Store) remember(key [32]byte, kid string, sess *Session) {
	if s.cache == nil || kid == "" || !sess.wellFormed() {
		return
	}
	e := &cacheEntry{sess: *sess, kid: kid, expires: min(sess.AccessExpiry, sess.Expiry)}
	e.sess.stale = false
	e.sess.bearer, e.sess.bearerOf = sess.BearerHeader(), sess.AccessToken
	s.cache.put(key, e)
}

// CacheLen is the number of cached opened sessions (metrics).
func (s *Store) CacheLen() int { return s.cache.len() }

// Lookups counts the Loads of a cookie so far: answered by the cache, and
// decrypted (metrics: the cache's hit rate).
func (s *Store) Lookups() (hits, opens uint64) { return s.hits.Load(), s.opens.Load() }

// Names lists the session chunk names the request carries.
func (s *Store) Names(r *http.Request) []string { return s.cfg.Chunker.Names(r) }

func shortHash(v string) string {
	if v == "" {
		return ""
	}
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:6])
}
