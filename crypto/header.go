package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
)

// maxHeaderLen caps the encoded protected header. Ours is about 120
// characters; anything much longer is not ours.
const maxHeaderLen = 512

// header is the JWE protected header this package writes and accepts.
type header struct {
	alg, enc, kid, cty string
}

// parseHeader decodes a base64url protected header strictly: a JSON object
// whose members are exactly "alg", "enc", "kid" and "cty", each once and each
// a string. Anything else (a "zip", a "crit", a "p2c", a duplicate member, a
// non-string value, trailing data) is refused.
func parseHeader(encoded string) (header, bool) {
	var h header
	if len(encoded) == 0 || len(encoded) > maxHeaderLen {
		return h, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(encoded)
	if err != nil {
		return h, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return h, false
	}
	var seen [4]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return h, false
		}
		name, ok := tok.(string)
		if !ok {
			return h, false
		}
		tok, err = dec.Token()
		if err != nil {
			return h, false
		}
		value, ok := tok.(string)
		if !ok {
			return h, false
		}
		var i int
		var dst *string
		switch name {
		case "alg":
			i, dst = 0, &h.alg
		case "enc":
			i, dst = 1, &h.enc
		case "kid":
			i, dst = 2, &h.kid
		case "cty":
			i, dst = 3, &h.cty
		default:
			return h, false
		}
		if seen[i] {
			return h, false
		}
		seen[i] = true
		*dst = value
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return h, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return h, false
	}
	return h, seen == [4]bool{true, true, true, true}
}
