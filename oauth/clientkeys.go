package oauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AuthMethodPrivateKeyJWT authenticates the client with a JWT it signs with
// its own private key (RFC 7523 section 2.2, OpenID Connect Core 9): nothing
// the provider stores can impersonate the BFF, and a leaked assertion is
// single-use and expires within a minute.
const AuthMethodPrivateKeyJWT = "private_key_jwt"

// ClientAssertionType is the client_assertion_type of a JWT assertion.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid after it is made.
const AssertionLifetime = 60 * time.Second

// MaxClientKeys bounds the keys of one key set file.
const MaxClientKeys = 16

// clientKeyAlgs maps each allowed signing algorithm to the key type it needs.
// No HS*: a symmetric "assertion" would be the client secret again.
var clientKeyAlgs = map[jose.SignatureAlgorithm]string{
	jose.RS256: "RSA", jose.RS384: "RSA", jose.RS512: "RSA",
	jose.PS256: "RSA", jose.PS384: "RSA", jose.PS512: "RSA",
	jose.ES256: "P-256", jose.ES384: "P-384", jose.ES512: "P-521",
	jose.EdDSA: "Ed25519",
}

// ClientKeys is the client's private signing keys for private_key_jwt, from a
// JWK set (RFC 7517): the first key signs, every key is published (Public) so
// a provider that fetches the client's keys knows the next one before it
// signs. Replace swaps the set while running (rotation without a restart). It
// is safe for concurrent use.
type ClientKeys struct {
	set atomic.Pointer[clientKeySet]
}

type clientKeySet struct {
	signer jose.Signer
	kid    string
	alg    jose.SignatureAlgorithm
	public []byte // the public JWK set, JSON
}

// ParseClientKeys reads a JWK set of private keys: each with a unique,
// non-empty kid; RSA of 2048 bits or more, EC P-256/P-384/P-521 or Ed25519;
// alg, when given, one of RS*, PS*, ES*, EdDSA matching the key (else RS256,
// ES256/384/512 or EdDSA from the key); use, when given, "sig". The errors
// name the key by position and kid, never its material.
func ParseClientKeys(data []byte) (*ClientKeys, error) {
	keys, err := parseKeySet("client keys", data)
	if err != nil {
		return nil, err
	}
	var public jose.JSONWebKeySet
	for _, k := range keys {
		pub := k.jwk.Public()
		pub.Algorithm, pub.Use = string(k.alg), "sig"
		public.Keys = append(public.Keys, pub)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: keys[0].alg, Key: keys[0].jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("oauth: client keys: key 0 (kid %q): %w", keys[0].jwk.KeyID, err)
	}
	pj, err := json.Marshal(public)
	if err != nil {
		return nil, fmt.Errorf("oauth: client keys: %w", err)
	}
	ck := &ClientKeys{}
	ck.set.Store(&clientKeySet{signer: signer, kid: keys[0].jwk.KeyID, alg: keys[0].alg, public: pj})
	return ck, nil
}

// setKey is one checked private key of a key set file.
type setKey struct {
	jwk jose.JSONWebKey
	alg jose.SignatureAlgorithm
}

// parseKeySet reads and checks a JWK set of 1 to MaxClientKeys private
// signing keys (see ParseClientKeys); what names the file in errors.
func parseKeySet(what string, data []byte) ([]setKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("oauth: %s: not a JWK set (JSON with a \"keys\" array)", what)
	}
	if len(raw.Keys) == 0 {
		return nil, fmt.Errorf("oauth: %s: the JWK set has no keys", what)
	}
	if len(raw.Keys) > MaxClientKeys {
		return nil, fmt.Errorf("oauth: %s: %d keys, at most %d", what, len(raw.Keys), MaxClientKeys)
	}
	keys := make([]setKey, 0, len(raw.Keys))
	seen := map[string]bool{}
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			return nil, fmt.Errorf("oauth: %s: key %d: not a valid JWK: %w", what, i, err)
		}
		alg, err := checkClientKey(&k)
		if err != nil {
			return nil, fmt.Errorf("oauth: %s: key %d (kid %q): %w", what, i, k.KeyID, err)
		}
		if seen[k.KeyID] {
			return nil, fmt.Errorf("oauth: %s: key %d: kid %q is used twice", what, i, k.KeyID)
		}
		seen[k.KeyID] = true
		keys = append(keys, setKey{jwk: k, alg: alg})
	}
	return keys, nil
}

// checkClientKey returns the algorithm k signs with, or why it cannot be a
// client key.
func checkClientKey(k *jose.JSONWebKey) (jose.SignatureAlgorithm, error) {
	if k.KeyID == "" {
		return "", errors.New("no kid")
	}
	if len(k.KeyID) > 128 {
		return "", errors.New("kid longer than 128 bytes")
	}
	if k.Use != "" && k.Use != "sig" {
		return "", fmt.Errorf("use is %q, not \"sig\"", k.Use)
	}
	if k.IsPublic() {
		return "", errors.New("a public key; the BFF needs the private key to sign")
	}
	var kty string
	switch key := k.Key.(type) {
	case *rsa.PrivateKey:
		if key.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits, at least 2048", key.N.BitLen())
		}
		kty = "RSA"
	case *ecdsa.PrivateKey:
		switch key.Curve {
		case elliptic.P256():
			kty = "P-256"
		case elliptic.P384():
			kty = "P-384"
		case elliptic.P521():
			kty = "P-521"
		}
	case ed25519.PrivateKey:
		kty = "Ed25519"
	default:
		return "", fmt.Errorf("key type %T cannot sign a client assertion (RSA, EC or Ed25519)", k.Key)
	}
	alg := jose.SignatureAlgorithm(k.Algorithm)
	if alg == "" {
		alg = map[string]jose.SignatureAlgorithm{"RSA": jose.RS256, "P-256": jose.ES256, "P-384": jose.ES384,
			"P-521": jose.ES512, "Ed25519": jose.EdDSA}[kty]
	}
	want, ok := clientKeyAlgs[alg]
	if !ok {
		return "", fmt.Errorf("alg %q is not allowed (RS*, PS*, ES*, EdDSA)", alg)
	}
	if want != kty {
		return "", fmt.Errorf("alg %s needs a %s key, this is %s", alg, want, kty)
	}
	return alg, nil
}

// Replace makes other's keys the current ones. Assertions made afterwards
// are signed with other's first key.
func (k *ClientKeys) Replace(other *ClientKeys) { k.set.Store(other.set.Load()) }

// Public is the public JWK set (every key, private parts removed), JSON.
func (k *ClientKeys) Public() []byte { return k.set.Load().public }

// Signing returns the kid and algorithm of the key that signs.
func (k *ClientKeys) Signing() (kid string, alg string) {
	s := k.set.Load()
	return s.kid, string(s.alg)
}

// assertion is a fresh client assertion (RFC 7523 section 3): iss and sub
// the client id, aud the issuer (as FAPI 2.0 asks; every provider accepts its
// issuer identifier), a unique jti, exp AssertionLifetime from now.
func (k *ClientKeys) assertion(clientID, audience string, now time.Time) (string, error) {
	s := k.set.Load()
	claims := jwt.Claims{
		Issuer:   clientID,
		Subject:  clientID,
		Audience: jwt.Audience{audience},
		ID:       random32(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(AssertionLifetime)),
	}
	tok, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("oauth: client assertion: %w", err)
	}
	return tok, nil
}
