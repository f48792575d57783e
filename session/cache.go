package session

import (
	"crypto/sha256"
	"sync"
	"unsafe"
)

// openCache remembers sessions recently opened, keyed by a SHA-256 of the
// exact sealed value, so a request carrying the same cookie skips the JWE
// decryption. It never decides validity on its own: expiry, revocation and
// the sealing key are checked on every hit, and a different (tampered)
// value is a different key, hence a miss and a full open.
type openCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*cacheEntry
	max int
}

type cacheEntry struct {
	sess    Session // a copy; callers get their own copy
	kid     string  // the key that sealed it
	expires int64   // Unix seconds: the access token's (or session's) expiry
}

func newOpenCache(max int) *openCache {
	if max <= 0 {
		return nil
	}
	return &openCache{m: make(map[[32]byte]*cacheEntry, max), max: max}
}

// cacheKey hashes the cookie value in place: the conversion to []byte would
// copy ~2-4 KB per request. sha256.Sum256 only reads its argument.
func cacheKey(sealed string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(sealed), len(sealed)))
}

func (c *openCache) get(k [32]byte, now int64) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e == nil || now >= e.expires {
		return nil
	}
	return e
}

func (c *openCache) put(k [32]byte, e *cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		// Evict an arbitrary entry (map order is random): O(1), and a
		// miss only costs one full open.
		for victim := range c.m {
			delete(c.m, victim)
			break
		}
	}
	c.m[k] = e
}

func (c *openCache) drop(k [32]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *openCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
