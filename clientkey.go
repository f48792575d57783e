package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/bff-project/bff/oauth"
	"github.com/go-jose/go-jose/v4"
)

// newClientKey is `bff keygen -jwk ALG`: a JWK set (JSON) with one new
// private key for oidc.client_key_file, its kid the key's RFC 7638
// thumbprint. The set is checked the way the BFF will read it.
func newClientKey(alg string) (string, error) {
	var (
		key any
		err error
	)
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "PS256", "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return "", fmt.Errorf("-jwk %q: want ES256, ES384, EdDSA, PS256 or RS256", alg)
	}
	if err != nil {
		return "", err
	}
	jwk := jose.JSONWebKey{Key: key, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	b, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}}, "", "  ")
	if err != nil {
		return "", err
	}
	if _, err := oauth.ParseClientKeys(b); err != nil {
		return "", err
	}
	return string(b), nil
}
