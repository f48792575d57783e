package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"unsafe"
)

// The compact JWE this package writes is alg "dir", enc "A256GCM" (RFC 7516
// and RFC 7518 section 5.3): the key is the AEAD key, the initialization
// vector is 96 bits, the additional data is the encoded protected header,
// and the encrypted key is empty. Sealing and opening it directly costs a
// fraction of go-jose's general JWE machinery (which parses the header
// JSON again and copies every part); go-jose still reads every value this
// package writes and this package reads go-jose's (TestJOSEInterop,
// FuzzOpen).

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

var rawURL = base64.RawURLEncoding

// aeads caches the AES-256-GCM instance of each key: a handful live at a
// time (one per master secret and epoch in the window).
var aeads = aeadCache{m: map[string]cipher.AEAD{}}

type aeadCache struct {
	mu sync.RWMutex
	m  map[string]cipher.AEAD
}

const maxCachedAEADs = 64

func (c *aeadCache) get(secret []byte) (cipher.AEAD, error) {
	c.mu.RLock()
	a, ok := c.m[string(secret)]
	c.mu.RUnlock()
	if ok {
		return a, nil
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	if a, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedAEADs {
		clear(c.m) // rotated-out keys; the live ones come back on use
	}
	c.m[string(secret)] = a
	c.mu.Unlock()
	return a, nil
}

// sealDirect encrypts body under secret as a compact JWE with kid and cty,
// its header members in the order go-jose writes them.
func sealDirect(secret []byte, kid string, cty Purpose, body []byte) (string, error) {
	aead, err := aeads.get(secret)
	if err != nil {
		return "", err
	}
	k, err := json.Marshal(kid) // ours, but escape it as JSON would
	if err != nil {
		return "", err
	}
	hdr := make([]byte, 0, 64+len(k))
	hdr = append(hdr, `{"alg":"dir","cty":"`...)
	hdr = append(hdr, cty...) // validPurpose: needs no escaping
	hdr = append(hdr, `","enc":"A256GCM","kid":`...)
	hdr = append(hdr, k...)
	hdr = append(hdr, '}')
	var iv [gcmNonceSize]byte
	rand.Read(iv[:])
	n := rawURL.EncodedLen(len(hdr))
	out := make([]byte, 0, n+2+rawURL.EncodedLen(gcmNonceSize)+1+rawURL.EncodedLen(len(body))+1+rawURL.EncodedLen(gcmTagSize))
	out = rawURL.AppendEncode(out, hdr)
	sealed := aead.Seal(nil, iv[:], body, out[:n])
	out = append(out, '.', '.')
	out = rawURL.AppendEncode(out, iv[:])
	out = append(out, '.')
	out = rawURL.AppendEncode(out, sealed[:len(sealed)-gcmTagSize])
	out = append(out, '.')
	out = rawURL.AppendEncode(out, sealed[len(sealed)-gcmTagSize:])
	return string(out), nil
}

// openDirect decrypts a canonical compact JWE (canonicalCompact, and a
// header parseHeader accepted) under secret. Any failure is ErrInvalid.
func openDirect(secret []byte, sealed string) ([]byte, error) {
	protected, rest, _ := strings.Cut(sealed, ".")
	_, rest, _ = strings.Cut(rest, ".") // the empty encrypted key
	ivPart, rest, _ := strings.Cut(rest, ".")
	ctPart, tagPart, _ := strings.Cut(rest, ".")
	if rawURL.DecodedLen(len(ivPart)) != gcmNonceSize || rawURL.DecodedLen(len(tagPart)) != gcmTagSize {
		return nil, ErrInvalid
	}
	aead, err := aeads.get(secret)
	if err != nil {
		return nil, ErrInvalid
	}
	var iv [gcmNonceSize]byte
	if _, err := rawURL.Decode(iv[:], view(ivPart)); err != nil {
		return nil, ErrInvalid
	}
	// Ciphertext and tag decoded into one buffer, decrypted in place.
	buf := make([]byte, rawURL.DecodedLen(len(ctPart))+gcmTagSize)
	n, err := rawURL.Decode(buf, view(ctPart))
	if err != nil {
		return nil, ErrInvalid
	}
	if _, err := rawURL.Decode(buf[n:], view(tagPart)); err != nil {
		return nil, ErrInvalid
	}
	body, err := aead.Open(buf[:0], iv[:], buf[:n+gcmTagSize], view(protected))
	if err != nil {
		return nil, ErrInvalid
	}
	return body, nil
}

// view is s as a byte slice without the copy []byte(s) makes (a cookie's
// ciphertext is kilobytes, on every request that opens one). Only for
// callees that read their argument and keep no reference: base64 decoding
// and the AEAD's additional data.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
