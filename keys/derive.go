package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strconv"
	"sync/atomic"

	"golang.org/x/crypto/hkdf"
)

const (
	// epochSalt is the HKDF salt of every epoch key. Changing it changes every key.
	epochSalt = "bff epoch key v1"
	// masterIDLabel is the HMAC message that names a master secret.
	masterIDLabel = "bff master id v1"
	// masterIDBytes is how much of the HMAC names a master: 9 bytes, 12 base64url chars.
	masterIDBytes = 9
	masterIDLen   = 12
	// KeySize is the length of a derived key in bytes (AES-256).
	KeySize = 32
	// cacheSlots is the size of each master's direct-mapped cache of derived keys.
	cacheSlots = 16
)

// master is one master secret with its id and a small cache of derived keys.
// It is immutable after creation except for the cache, which is safe for
// concurrent use without locks.
type master struct {
	id    string
	prk   []byte // HKDF-Extract(secret, epochSalt), computed once
	cache [cacheSlots]atomic.Pointer[epochKey]
}

// epochKey is a derived key together with the epoch it belongs to.
type epochKey struct {
	epoch int64
	key   Key
}

// newMaster computes the id and the HKDF pseudorandom key of secret. The
// secret itself is not retained.
func newMaster(secret []byte) *master {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(masterIDLabel))
	sum := mac.Sum(nil)
	return &master{
		id:  base64.RawURLEncoding.EncodeToString(sum[:masterIDBytes]),
		prk: hkdf.Extract(sha256.New, secret, []byte(epochSalt)),
	}
}

// key returns the key of epoch e, from the cache when possible. The cache is
// direct-mapped (epoch mod cacheSlots), so memory is bounded whatever kids
// callers present; a miss costs one HKDF-Expand.
func (m *master) key(e int64) Key {
	slot := &m.cache[uint64(e)%cacheSlots]
	if k := slot.Load(); k != nil && k.epoch == e {
		return k.key
	}
	var info [8]byte
	binary.BigEndian.PutUint64(info[:], uint64(e))
	secret := make([]byte, KeySize)
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, m.prk, info[:]), secret); err != nil {
		// HKDF-SHA256 can produce 255*32 bytes; 32 never fails.
		panic("keys: hkdf expand: " + err.Error())
	}
	k := &epochKey{epoch: e, key: Key{ID: m.id + "." + strconv.FormatInt(e, 10), Secret: secret}}
	slot.Store(k)
	return k.key
}

// maxKIDLen caps a kid before it is parsed: 12 id chars, a dot and at most 19
// decimal digits (the largest int64).
const maxKIDLen = masterIDLen + 1 + 19

// parseKID splits a kid into master id and epoch, validating its syntax
// strictly: exactly 12 base64url characters, a dot and a canonical
// non-negative decimal (no sign, no leading zero) that fits in an int64.
func parseKID(kid string) (id string, epoch int64, ok bool) {
	if len(kid) < masterIDLen+2 || len(kid) > maxKIDLen || kid[masterIDLen] != '.' {
		return "", 0, false
	}
	for i := 0; i < masterIDLen; i++ {
		c := kid[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", 0, false
		}
	}
	digits := kid[masterIDLen+1:]
	if len(digits) > 1 && digits[0] == '0' {
		return "", 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", 0, false
		}
	}
	e, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return kid[:masterIDLen], e, true
}
