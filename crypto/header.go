package crypto

import "encoding/base64"

// maxHeaderLen caps the encoded protected header. Ours is about 120
// characters; anything much longer is not ours.
const maxHeaderLen = 512

// header is the JWE protected header this package writes and accepts.
type header struct {
	alg, enc, kid, cty string
}

// parseHeader decodes a base64url protected header strictly: a JSON object
// whose members are exactly "alg", "enc", "kid" and "cty", each once and each
// a string, written as go-jose and this package write it: no whitespace, no
// escapes. Anything else (a "zip", a "crit", a "p2c", a duplicate member, a
// non-string value, an escaped or control character, trailing data) is
// refused. It allocates only the kid: the values a header of ours holds for
// the others are interned.
func parseHeader(encoded string) (header, bool) {
	var h header
	if len(encoded) == 0 || len(encoded) > maxHeaderLen {
		return h, false
	}
	var buf [maxHeaderLen * 3 / 4]byte
	n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(encoded))
	if err != nil {
		return h, false
	}
	raw := buf[:n]
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return h, false
	}
	raw = raw[1 : len(raw)-1]
	var seen [4]bool
	for len(raw) > 0 {
		var name, value []byte
		var ok bool
		if name, raw, ok = jsonString(raw); !ok || len(raw) == 0 || raw[0] != ':' {
			return h, false
		}
		if value, raw, ok = jsonString(raw[1:]); !ok {
			return h, false
		}
		if len(raw) > 0 {
			if raw[0] != ',' || len(raw) == 1 {
				return h, false
			}
			raw = raw[1:]
		}
		var i int
		switch string(name) {
		case "alg":
			i, h.alg = 0, intern(value, "dir")
		case "enc":
			i, h.enc = 1, intern(value, "A256GCM")
		case "kid":
			i, h.kid = 2, string(value)
		case "cty":
			i, h.cty = 3, intern(value, string(Session), string(Login))
		default:
			return h, false
		}
		if seen[i] {
			return h, false
		}
		seen[i] = true
	}
	return h, seen == [4]bool{true, true, true, true}
}

// jsonString reads a JSON string without escapes from the start of b and
// returns its content and the rest; false when b does not start with one
// (or it holds a backslash, a control character or a non-ASCII byte).
func jsonString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// intern returns the one of known that equals v without allocating, else a
// copy of v.
func intern(v []byte, known ...string) string {
	for _, k := range known {
		if string(v) == k {
			return k
		}
	}
	return string(v)
}
