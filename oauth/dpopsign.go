package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"

	"github.com/go-jose/go-jose/v4"
)

// proofSigner makes DPoP proofs on the request path without go-jose's
// general machinery (which re-serializes the embedded key and the header
// on every signature): the protected header is encoded once per key, the
// claims are appended by hand, and the signature is the algorithm's own
// (RFC 7518 section 3). Tests verify its output with go-jose.
type proofSigner struct {
	header string // base64url of {"alg":...,"typ":"dpop+jwt","jwk":{public}}
	sign   func(input []byte) ([]byte, error)
}

func newProofSigner(k setKey) (*proofSigner, error) {
	pub := k.jwk.Public()
	pub.KeyID, pub.Use, pub.Algorithm = "", "", ""
	jwk, err := pub.MarshalJSON()
	if err != nil {
		return nil, err
	}
	h, err := json.Marshal(struct {
		Alg string          `json:"alg"`
		Typ string          `json:"typ"`
		JWK json.RawMessage `json:"jwk"`
	}{string(k.alg), "dpop+jwt", jwk})
	if err != nil {
		return nil, err
	}
	s := &proofSigner{header: base64.RawURLEncoding.EncodeToString(h)}
	digest := func(newHash func() hash.Hash, input []byte) []byte {
		d := newHash()
		d.Write(input)
		return d.Sum(nil)
	}
	switch key := k.jwk.Key.(type) {
	case *ecdsa.PrivateKey:
		newHash, size := map[jose.SignatureAlgorithm]func() hash.Hash{jose.ES256: sha256.New, jose.ES384: sha512.New384, jose.ES512: sha512.New}[k.alg], (key.Curve.Params().BitSize+7)/8
		s.sign = func(input []byte) ([]byte, error) {
			r, ss, err := ecdsa.Sign(rand.Reader, key, digest(newHash, input))
			if err != nil {
				return nil, err
			}
			out := make([]byte, 2*size)
			r.FillBytes(out[:size])
			ss.FillBytes(out[size:])
			return out, nil
		}
	case ed25519.PrivateKey:
		s.sign = func(input []byte) ([]byte, error) { return ed25519.Sign(key, input), nil }
	case *rsa.PrivateKey:
		h := map[byte]crypto.Hash{'2': crypto.SHA256, '3': crypto.SHA384, '5': crypto.SHA512}[k.alg[2]]
		pss := k.alg[0] == 'P'
		s.sign = func(input []byte) ([]byte, error) {
			d := h.New()
			d.Write(input)
			if pss {
				return rsa.SignPSS(rand.Reader, key, h, d.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			}
			return rsa.SignPKCS1v15(nil, key, h, d.Sum(nil))
		}
	default:
		return nil, fmt.Errorf("key type %T", k.jwk.Key)
	}
	return s, nil
}

// proof signs c as a compact JWS.
func (s *proofSigner) proof(c proofClaims) (string, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"jti":`...)
	b = appendJSONString(b, c.JTI)
	b = append(b, `,"htm":`...)
	b = appendJSONString(b, c.HTM)
	b = append(b, `,"htu":`...)
	b = appendJSONString(b, c.HTU)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IAT, 10)
	if c.ATH != "" {
		b = append(b, `,"ath":`...)
		b = appendJSONString(b, c.ATH)
	}
	if c.Nonce != "" {
		b = append(b, `,"nonce":`...)
		b = appendJSONString(b, c.Nonce)
	}
	b = append(b, '}')
	enc := base64.RawURLEncoding
	input := make([]byte, 0, len(s.header)+1+enc.EncodedLen(len(b))+1+enc.EncodedLen(132))
	input = append(input, s.header...)
	input = append(input, '.')
	input = enc.AppendEncode(input, b)
	sig, err := s.sign(input)
	if err != nil {
		return "", err
	}
	input = append(input, '.')
	return string(enc.AppendEncode(input, sig)), nil
}

// appendJSONString appends v as a JSON string, escaped as encoding/json
// escapes it.
func appendJSONString(b []byte, v string) []byte {
	q, _ := json.Marshal(v) // strings never fail
	return append(b, q...)
}
