package oauth

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DPoP (RFC 9449): the BFF holds a private key, asks the provider to bind
// the access tokens it issues to that key (cnf.jkt), and sends each API
// request with a fresh proof of possession signed by it. A token copied
// from an API's log or a proxy is then worthless without the key, which
// never leaves the BFF.

// ErrDPoPKeyGone means the key an access token is bound to is no longer in
// the configured DPoP keys (rotated out): the token cannot be used, only
// replaced by a refresh with the current key.
var ErrDPoPKeyGone = errors.New("oauth: the DPoP key the access token is bound to is gone")

// MaxDPoPNonce bounds a DPoP-Nonce value the BFF will echo.
const MaxDPoPNonce = 512

// DPoPKeys is the BFF's DPoP key set, from a JWK set of private keys (the
// same rules as ParseClientKeys): the first key binds new tokens; every key
// still proves for the tokens bound to it, so a rotation keeps sessions
// alive until their next refresh. Replace swaps the set while running.
// Safe for concurrent use.
type DPoPKeys struct {
	set atomic.Pointer[dpopSet]
}

type dpopSet struct {
	keys []dpopKey // [0] binds new tokens
}

type dpopKey struct {
	signer *proofSigner // embeds the public JWK, typ dpop+jwt
	jkt    string       // RFC 7638 SHA-256 thumbprint, base64url
	alg    jose.SignatureAlgorithm
}

// ParseDPoPKeys reads the DPoP key set (see DPoPKeys).
func ParseDPoPKeys(data []byte) (*DPoPKeys, error) {
	keys, err := parseKeySet("DPoP keys", data)
	if err != nil {
		return nil, err
	}
	set := &dpopSet{}
	for i, k := range keys {
		pub := k.jwk.Public()
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("oauth: DPoP keys: key %d (kid %q): %w", i, k.jwk.KeyID, err)
		}
		signer, err := newProofSigner(k)
		if err != nil {
			return nil, fmt.Errorf("oauth: DPoP keys: key %d (kid %q): %w", i, k.jwk.KeyID, err)
		}
		set.keys = append(set.keys, dpopKey{signer: signer, jkt: base64.RawURLEncoding.EncodeToString(tp), alg: k.alg})
	}
	dk := &DPoPKeys{}
	dk.set.Store(set)
	return dk, nil
}

// Replace makes other's keys the current ones.
func (k *DPoPKeys) Replace(other *DPoPKeys) { k.set.Store(other.set.Load()) }

// Binding is the thumbprint (jkt) of the key new tokens are bound to.
func (k *DPoPKeys) Binding() string { return k.set.Load().keys[0].jkt }

// Alg is the signing algorithm of the binding key.
func (k *DPoPKeys) Alg() string { return string(k.set.Load().keys[0].alg) }

// Has reports whether the key with thumbprint jkt is still in the set.
func (k *DPoPKeys) Has(jkt string) bool {
	_, ok := k.key(jkt)
	return ok
}

func (k *DPoPKeys) key(jkt string) (dpopKey, bool) {
	for _, key := range k.set.Load().keys {
		if key.jkt == jkt {
			return key, true
		}
	}
	return dpopKey{}, false
}

// proofClaims are a DPoP proof's claims (RFC 9449 section 4.2).
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof is a fresh DPoP proof by the key with thumbprint jkt for a request
// of method to target (its query and fragment are left out, as htu
// requires); accessToken, when not empty, is hashed into ath; nonce, when
// not empty, is the server's last DPoP-Nonce. ErrDPoPKeyGone when the key
// is no longer in the set.
func (k *DPoPKeys) Proof(jkt, method string, target *url.URL, accessToken, nonce string, now time.Time) (string, error) {
	key, ok := k.key(jkt)
	if !ok {
		return "", ErrDPoPKeyGone
	}
	c := proofClaims{JTI: random16(), HTM: method, HTU: HTU(target), IAT: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	p, err := key.signer.proof(c)
	if err != nil {
		return "", fmt.Errorf("oauth: DPoP proof: %w", err)
	}
	return p, nil
}

// HTU is target as a DPoP proof's htu: scheme, host and path, without query
// or fragment (RFC 9449 section 4.2).
func HTU(target *url.URL) string {
	u := url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path, RawPath: target.RawPath}
	return u.String()
}

func random16() string {
	return random32()[:22] // 132 random bits, as long as a UUID's
}

// ValidNonce reports whether v may be echoed as a DPoP nonce: 1 to
// MaxDPoPNonce characters of RFC 9449's NQCHAR (printable ASCII but space,
// quote and backslash), so a nonce can never inject into a header or JSON.
func ValidNonce(v string) bool {
	if v == "" || len(v) > MaxDPoPNonce {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ResourceNonceChallenge reports whether resp is a resource server's
// demand for a nonce (RFC 9449 section 9: 401, a DPoP challenge with
// error="use_dpop_nonce", a DPoP-Nonce header) and returns the nonce.
func ResourceNonceChallenge(resp *http.Response) (string, bool) {
	if resp.StatusCode != http.StatusUnauthorized {
		return "", false
	}
	nonce := resp.Header.Get("DPoP-Nonce")
	if !ValidNonce(nonce) {
		return "", false
	}
	for _, c := range resp.Header.Values("WWW-Authenticate") {
		if scheme, params, _ := strings.Cut(strings.TrimSpace(c), " "); strings.EqualFold(scheme, "DPoP") &&
			challengeError(params) == "use_dpop_nonce" {
			return nonce, true
		}
	}
	return "", false
}

// challengeError is the error parameter of a WWW-Authenticate challenge's
// auth-params (quoted or token), "" when there is none.
func challengeError(params string) string {
	for _, p := range strings.Split(params, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(name), "error") {
			return strings.Trim(strings.TrimSpace(value), `"`)
		}
	}
	return ""
}

// tokenNonceChallenge reports whether a token endpoint's answer demands a
// nonce (RFC 9449 section 8: 400, error use_dpop_nonce, a DPoP-Nonce
// header) and returns it. It reads the body of a 400 that carries a nonce
// and puts it back, so the caller still sees the whole answer.
func tokenNonceChallenge(resp *http.Response) (string, bool) {
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != http.StatusBadRequest || !ValidNonce(nonce) {
		return "", false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	if err != nil {
		return "", false
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error != "use_dpop_nonce" {
		return "", false
	}
	return nonce, true
}
