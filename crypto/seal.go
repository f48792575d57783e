package crypto

import (
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bff-project/bff/keys"
)

// Purpose names what a sealed value is for. It is sealed into the value as
// the JWE "cty" header, so a value sealed for one purpose never opens as
// another.
type Purpose string

// Purposes used by the BFF.
const (
	Session Purpose = "session"
	Login   Purpose = "login"
)

// ErrInvalid is the one error Open returns, whatever went wrong: a value that
// is malformed, tampered with, sealed for another purpose, under an unknown or
// expired key, or too large. It deliberately carries no detail.
var ErrInvalid = errors.New("crypto: invalid sealed value")

// Defaults applied by NewSealer to zero Config fields.
const (
	DefaultMaxPlaintext = 64 << 10
	DefaultMaxSealed    = 32 << 10
)

// Config configures a Sealer.
type Config struct {
	// Ring supplies the sealing key and looks up opening keys. Required.
	Ring *keys.Ring
	// DisableCompression turns off DEFLATE. By default a plaintext is
	// compressed when that makes it shorter.
	DisableCompression bool
	// MaxPlaintext is the largest plaintext Seal accepts and the largest
	// (decompressed) plaintext Open returns. Zero means 64 KiB.
	MaxPlaintext int
	// MaxSealed is the longest sealed value Open parses, and Seal produces.
	// Zero means 32 KiB.
	MaxSealed int
}

// Sealer seals and opens values. It is safe for concurrent use.
type Sealer struct {
	ring         *keys.Ring
	compress     bool
	maxPlaintext int
	maxSealed    int
}

// NewSealer validates cfg and returns a Sealer.
func NewSealer(cfg Config) (*Sealer, error) {
	if cfg.Ring == nil {
		return nil, errors.New("crypto: config has no key ring")
	}
	s := &Sealer{
		ring:         cfg.Ring,
		compress:     !cfg.DisableCompression,
		maxPlaintext: cfg.MaxPlaintext,
		maxSealed:    cfg.MaxSealed,
	}
	if s.maxPlaintext == 0 {
		s.maxPlaintext = DefaultMaxPlaintext
	}
	if s.maxSealed == 0 {
		s.maxSealed = DefaultMaxSealed
	}
	if s.maxPlaintext < 0 || s.maxSealed < 0 {
		return nil, errors.New("crypto: size limits must not be negative")
	}
	return s, nil
}

// validPurpose reports whether p is a short lowercase token, safe to put in a
// JSON header without escaping.
func validPurpose(p Purpose) bool {
	if len(p) == 0 || len(p) > 32 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Seal encrypts plaintext for purpose p under the ring's current sealing key
// and returns a compact JWE. A plaintext over MaxPlaintext, or a result over
// MaxSealed, gives a *TooLargeError.
func (s *Sealer) Seal(p Purpose, plaintext []byte) (string, error) {
	return s.SealWith(p, plaintext, s.compress)
}

// SealWith is Seal with DEFLATE chosen for this value: compress tries it
// (kept only when shorter), false stores the plaintext as it is, whatever
// Config.DisableCompression says. Open reads either.
func (s *Sealer) SealWith(p Purpose, plaintext []byte, compress bool) (string, error) {
	if !validPurpose(p) {
		return "", errors.New("crypto: invalid purpose")
	}
	if len(plaintext) > s.maxPlaintext {
		return "", &TooLargeError{Size: len(plaintext), Limit: s.maxPlaintext}
	}
	return s.sealBody(p, encode(plaintext, compress))
}

// sealBody encrypts an already encoded body (format byte and payload).
func (s *Sealer) sealBody(p Purpose, body []byte) (string, error) {
	key := s.ring.Sealing()
	out, err := sealDirect(key.Secret, key.ID, p, body)
	if err != nil {
		return "", fmt.Errorf("crypto: encrypt: %w", err)
	}
	if len(out) > s.maxSealed {
		return "", &TooLargeError{Size: len(out), Limit: s.maxSealed}
	}
	return out, nil
}

// Open decrypts a value sealed by Seal for purpose p. stale reports that the
// value was sealed under a key other than the ring's current sealing key, so
// the caller should re-seal it. Every failure is ErrInvalid.
func (s *Sealer) Open(p Purpose, sealed string) (plaintext []byte, stale bool, err error) {
	plaintext, _, stale, err = s.OpenKey(p, sealed)
	return plaintext, stale, err
}

// OpenKey is Open that also returns the id of the key that opened the value
// (for OpenedKey later), so a caller that caches what it opened need not
// parse the header again.
func (s *Sealer) OpenKey(p Purpose, sealed string) (plaintext []byte, kid string, stale bool, err error) {
	if len(sealed) > s.maxSealed || !canonicalCompact(sealed) {
		return nil, "", false, ErrInvalid
	}
	protected, _, _ := strings.Cut(sealed, ".")
	h, ok := parseHeader(protected)
	if !ok || h.alg != string(jose.DIRECT) || h.enc != string(jose.A256GCM) || h.cty != string(p) || !validPurpose(p) {
		return nil, "", false, ErrInvalid
	}
	key, err := s.ring.Lookup(h.kid)
	if err != nil {
		return nil, "", false, ErrInvalid
	}
	body, err := openDirect(key.Secret, sealed)
	if err != nil {
		return nil, "", false, ErrInvalid
	}
	plaintext, ok = decode(body, s.maxPlaintext)
	if !ok {
		return nil, "", false, ErrInvalid
	}
	return plaintext, key.ID, key.ID != s.ring.Sealing().ID, nil
}

// canonicalCompact reports whether s has the shape of the compact JWEs Seal
// writes: five base64url parts (no padding, no other characters), an empty
// encrypted key, and every part in canonical form (unused trailing bits zero),
// so no two strings decode to the same value and none opens but the one
// sealed.
func canonicalCompact(s string) bool {
	var parts [5]string
	rest := s
	for i := range 4 {
		var ok bool
		parts[i], rest, ok = strings.Cut(rest, ".")
		if !ok {
			return false
		}
	}
	parts[4] = rest
	if parts[0] == "" || parts[1] != "" || parts[2] == "" || parts[4] == "" {
		return false
	}
	for _, p := range parts {
		if !canonicalB64(p) {
			return false
		}
	}
	return true
}

// canonicalB64 reports whether p is unpadded base64url whose last character
// carries no set unused bits.
func canonicalB64(p string) bool {
	for i := 0; i < len(p); i++ {
		if b64Value(p[i]) < 0 {
			return false
		}
	}
	if len(p) == 0 {
		return true
	}
	last := b64Value(p[len(p)-1])
	switch len(p) % 4 {
	case 1:
		return false
	case 2:
		return last&0x0f == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}

// b64Value is the value of a base64url character, or -1.
func b64Value(c byte) int { return int(b64Values[c]) }

// b64Values maps every byte to its base64url value, or -1: a table, since
// canonicalB64 runs over every character of every cookie opened.
var b64Values = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = int8(i)
	}
	return t
}()

// OpenedKey reports, for a value that opened earlier, whether the key that
// sealed it (named by kid) would still open it, and whether it is stale. It
// lets a cache of opened values honour key rotation and removal without
// decrypting again.
func (s *Sealer) OpenedKey(kid string) (ok, stale bool) {
	key, err := s.ring.Lookup(kid)
	if err != nil {
		return false, false
	}
	return true, key.ID != s.ring.Sealing().ID
}

// KeyID returns the kid a sealed value names, or "" when its header is not
// one Seal writes. It does not authenticate anything.
func KeyID(sealed string) string {
	protected, _, _ := strings.Cut(sealed, ".")
	h, ok := parseHeader(protected)
	if !ok {
		return ""
	}
	return h.kid
}
