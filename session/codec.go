package session

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"unsafe"
)

// The sealed payload is a compact binary encoding of Session (formatBinary,
// below), not JSON: reflection-based JSON decoding was more than half the
// cost of opening a cookie, and a token's base64url parts stored as raw
// bytes take a quarter less room than their text. Cookies sealed before
// hold JSON (their first byte is '{') and still open.
//
// Layout after the format byte, fields in this order: strings as a uvarint
// length and the bytes; times as a zig-zag varint; each token as a kind byte
// (tokenText: uvarint length and the bytes; tokenJWT: three parts, each a
// uvarint length and the part's base64url decoded, for a compact JWS whose
// parts are canonical base64url, so it re-encodes to the same string); the
// userinfo claims as a uvarint length and their JSON (length 0: none).
// Nothing may follow.
const formatBinary byte = 0xB1

const (
	tokenText byte = 0
	tokenJWT  byte = 1
)

var errCodec = errors.New("session: malformed payload")

// marshal encodes s in formatBinary.
func marshal(s *Session) ([]byte, error) {
	var ui []byte
	if len(s.UserInfo) > 0 {
		var err error
		if ui, err = json.Marshal(s.UserInfo); err != nil {
			return nil, err
		}
	}
	b := make([]byte, 0, 64+len(s.ID)+len(s.Subject)+len(s.Issuer)+len(s.IdPSession)+
		len(s.AccessToken)+len(s.RefreshToken)+len(s.IDToken)+len(s.Scope)+len(s.DPoPKey)+len(ui))
	b = append(b, formatBinary)
	b = appendString(b, s.ID)
	b = appendString(b, s.Subject)
	b = appendString(b, s.Issuer)
	b = appendString(b, s.IdPSession)
	b = binary.AppendVarint(b, s.Start)
	b = binary.AppendVarint(b, s.Expiry)
	b = appendToken(b, s.AccessToken)
	b = binary.AppendVarint(b, s.AccessExpiry)
	b = appendToken(b, s.RefreshToken)
	b = appendToken(b, s.IDToken)
	b = appendString(b, s.Scope)
	b = appendString(b, s.DPoPKey)
	b = binary.AppendVarint(b, s.LastSeen)
	b = binary.AppendUvarint(b, uint64(len(ui)))
	b = append(b, ui...)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var rawURL = base64.RawURLEncoding

// appendToken packs a compact JWS's three parts decoded, else the text.
func appendToken(b []byte, tok string) []byte {
	if parts := strings.Split(tok, "."); len(parts) == 3 && canonical(parts) {
		b = append(b, tokenJWT)
		for _, p := range parts {
			b = binary.AppendUvarint(b, uint64(rawURL.DecodedLen(len(p))))
			b, _ = rawURL.AppendDecode(b, []byte(p))
		}
		return b
	}
	b = append(b, tokenText)
	return appendString(b, tok)
}

// canonical reports whether every part is non-empty (but the signature of
// an unsecured JWS, which is refused anyway) canonical unpadded base64url,
// so decoding and encoding again gives it back.
func canonical(parts []string) bool {
	for i, p := range parts {
		if p == "" && i < 2 {
			return false
		}
		raw, err := rawURL.Strict().DecodeString(p)
		if err != nil || rawURL.EncodedLen(len(raw)) != len(p) {
			return false
		}
	}
	return true
}

// unmarshal decodes a payload of either format into s, which must be zero.
func unmarshal(b []byte, s *Session) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, s)
	}
	if len(b) == 0 || b[0] != formatBinary {
		return errCodec
	}
	// Every string is cut from one buffer: re-encoding a JWT's parts
	// takes at most 4/3 of the bytes they came from, so it never grows.
	d := decoder{b: b[1:], out: make([]byte, 0, len(b)*4/3+len(bearerPrefix)+8)}
	s.ID = d.string()
	s.Subject = d.string()
	s.Issuer = d.string()
	s.IdPSession = d.string()
	s.Start = d.varint()
	s.Expiry = d.varint()
	// The access token is written right after "Bearer ", so the
	// Authorization value is a view of the same bytes, not a 1 KB copy.
	prefix := d.str([]byte(bearerPrefix))
	s.AccessToken = d.token()
	if at := s.AccessToken; at != "" && unsafe.Pointer(unsafe.StringData(at)) == unsafe.Add(unsafe.Pointer(unsafe.StringData(prefix)), len(prefix)) {
		s.bearer, s.bearerOf = []string{unsafe.String(unsafe.StringData(prefix), len(prefix)+len(at))}, at
	}
	s.AccessExpiry = d.varint()
	s.RefreshToken = d.token()
	s.IDToken = d.token()
	s.Scope = d.string()
	s.DPoPKey = d.string()
	s.LastSeen = d.varint()
	ui := d.bytes()
	if d.bad || len(d.b) != 0 {
		return errCodec
	}
	if len(ui) > 0 {
		if err := json.Unmarshal(ui, &s.UserInfo); err != nil || s.UserInfo == nil {
			return errCodec
		}
	}
	s.V = Version
	return nil
}

// decoder reads formatBinary; after the first error every read is empty
// and bad is set. The strings it returns share out's array, which is only
// appended to, never written again; a string that would not fit gets its
// own.
type decoder struct {
	b   []byte
	out []byte
	bad bool
}

// room returns n bytes of out (or, should they not fit, new ones) for one
// string, which must be written before it is made a string.
func (d *decoder) room(n int) []byte {
	if l := len(d.out); l+n <= cap(d.out) {
		d.out = d.out[:l+n]
		return d.out[l : l+n : l+n]
	}
	return make([]byte, n)
}

// str copies b into out and returns it as a string.
func (d *decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	buf := d.room(len(b))
	copy(buf, b)
	return unsafe.String(&buf[0], len(buf))
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return d.str(d.bytes()) }

func (d *decoder) token() string {
	if d.bad || len(d.b) == 0 {
		d.fail()
		return ""
	}
	kind := d.b[0]
	d.b = d.b[1:]
	switch kind {
	case tokenText:
		return d.string()
	case tokenJWT:
		var parts [3][]byte
		size := 2
		for i := range parts {
			parts[i] = d.bytes()
			size += rawURL.EncodedLen(len(parts[i]))
		}
		if d.bad || len(parts[0]) == 0 || len(parts[1]) == 0 {
			d.fail()
			return ""
		}
		out := d.room(size)[:0]
		for i, p := range parts {
			if i > 0 {
				out = append(out, '.')
			}
			out = rawURL.AppendEncode(out, p)
		}
		return unsafe.String(&out[0], len(out))
	}
	d.fail()
	return ""
}

func (d *decoder) fail() {
	d.bad = true
	d.b = nil
}
