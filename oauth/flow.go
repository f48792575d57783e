package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"
)

// ErrStateMismatch means the callback's state does not match the flow's.
var ErrStateMismatch = errors.New("oauth: state mismatch")

// Flow is the per-login secret material the caller keeps (sealed, in a
// per-flow cookie) between AuthURL and Callback.
type Flow struct {
	State    string // CSRF binding of the callback to this browser
	Nonce    string // binds the ID token to this flow
	Verifier string // PKCE code verifier (RFC 7636); only its S256 hash leaves
}

// NewFlow returns fresh random state, nonce and PKCE verifier.
func NewFlow() Flow {
	return Flow{State: random32(), Nonce: random32(), Verifier: oauth2.GenerateVerifier()}
}

func random32() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AuthURL returns the authorization-endpoint URL for f, always with state,
// nonce and a PKCE S256 challenge.
func (c *Client) AuthURL(f Flow) (string, error) {
	p, err := c.provider()
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("nonce", f.Nonce),
	}
	for k, v := range c.cfg.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return p.oauth2.AuthCodeURL(f.State, opts...), nil
}

// Callback completes the flow f with the authorization response's query:
// it checks error, state (in constant time) and iss (RFC 9207), exchanges the
// code with the PKCE verifier and verifies the ID token (see verifyIDToken).
//
// Errors: *AuthorizationError when the provider answered error=...;
// ErrStateMismatch; ErrIssuerMismatch; ErrReauthRequired when the code is
// rejected (replayed, expired); ErrProvider when the provider is unreachable;
// ErrInvalidResponse when the tokens fail verification.
func (c *Client) Callback(ctx context.Context, f Flow, q url.Values) (*Tokens, error) {
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	if f.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return nil, ErrStateMismatch
	}
	if f.Nonce == "" || f.Verifier == "" {
		// An incomplete flow would silently turn the nonce or PKCE check off.
		return nil, ErrStateMismatch
	}
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != c.cfg.Issuer {
			return nil, ErrIssuerMismatch
		}
	} else if p.issParameter {
		return nil, ErrIssuerMismatch
	}
	if code := q.Get("error"); code != "" {
		return nil, &AuthorizationError{Code: sanitizeCode(code)}
	}
	code := q.Get("code")
	if code == "" {
		return nil, fmt.Errorf("%w: no code in the authorization response", ErrInvalidResponse)
	}
	tok, err := p.oauth2.Exchange(c.ctx(ctx), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, classify("code exchange", err)
	}
	return c.tokens(ctx, p, tok, f.Nonce, "")
}

// sanitizeCode keeps an error code printable and short: it comes from the
// query string and may end up in logs and JSON.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '_'
		}
	}
	return string(b)
}
