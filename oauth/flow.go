package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

var (
	// ErrStateMismatch means the callback's state does not match the flow's.
	ErrStateMismatch = errors.New("oauth: state mismatch")
	// ErrAuthTooOld means the flow asked for a max_age and the ID token has
	// no auth_time, or one older than max_age allows (OpenID Connect Core
	// 3.1.3.7): the provider did not re-authenticate the user as asked.
	ErrAuthTooOld = errors.New("oauth: authentication older than max_age")
)

// AuthTimeSkew is the clock difference with the provider that the max_age
// check tolerates.
const AuthTimeSkew = 2 * time.Minute

// Flow is the per-login material the caller keeps (sealed, in a per-flow
// cookie) between AuthURL and Callback. State, Nonce and Verifier are
// secrets.
type Flow struct {
	State    string // CSRF binding of the callback to this browser
	Nonce    string // binds the ID token to this flow
	Verifier string // PKCE code verifier (RFC 7636); only its S256 hash leaves

	// Params are extra authorization-request parameters of this flow only
	// (sign-in options such as prompt or login_hint); they win over
	// Config.AuthParams. AuthURL refuses a ProtocolParam and max_age (see
	// MaxAge). Callback does not need them.
	Params map[string]string
	// MaxAge, when not nil, is sent as max_age (OpenID Connect Core
	// 3.1.2.1), in whole seconds, and Callback requires the ID token's
	// auth_time to be at most that old (AuthTimeSkew allowed). Keep it with
	// the flow for the callback.
	MaxAge *time.Duration
}

// protocolParams are the authorization-request parameters the protocol sets
// itself (RFC 6749, RFC 7636, OpenID Connect Core 3.1.2.1 and 6, RFC 9101,
// RFC 9126, RFC 9449) or that must never travel in a browser's URL.
var protocolParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true, "state": true,
	"nonce": true, "code_challenge": true, "code_challenge_method": true, "response_mode": true,
	"request": true, "request_uri": true, "id_token_hint": true, "dpop_jkt": true,
	"client_secret": true, "client_assertion": true, "client_assertion_type": true,
	"code": true, "code_verifier": true, "grant_type": true,
}

// ProtocolParam reports whether name is an authorization-request parameter
// that the protocol sets (state, nonce, PKCE, redirect_uri, ...) or that is
// a client credential: Config.AuthParams and Flow.Params may not carry it.
func ProtocolParam(name string) bool { return protocolParams[name] }

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
// nonce and a PKCE S256 challenge, then Config.AuthParams, f.Params and
// f.MaxAge. It refuses a Flow whose Params name a ProtocolParam or max_age,
// or whose MaxAge is negative.
//
// When the client pushes authorization requests (Config.PAR), those
// parameters go to the provider's PAR endpoint and the URL carries only
// client_id and request_uri. The push's errors: ErrClientAuth when the
// provider refuses the client, ErrProvider when it is unreachable or failing,
// *AuthorizationError when it refuses a parameter, ErrInvalidResponse when
// its answer has no request_uri.
func (c *Client) AuthURL(ctx context.Context, f Flow) (string, error) {
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
	for k, v := range f.Params {
		if ProtocolParam(k) || k == "max_age" {
			return "", fmt.Errorf("oauth: flow parameter %q is set by the protocol or by MaxAge", k)
		}
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	if f.MaxAge != nil {
		if *f.MaxAge < 0 {
			return "", errors.New("oauth: negative max_age")
		}
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(*f.MaxAge/time.Second), 10)))
	}
	u := p.oauth2.AuthCodeURL(f.State, opts...)
	if p.parURL == "" {
		return u, nil
	}
	return c.push(ctx, p, u)
}

// Callback completes the flow f with the authorization response's query:
// it checks error, state (in constant time) and iss (RFC 9207), exchanges the
// code with the PKCE verifier and verifies the ID token (see verifyIDToken).
//
// When f.MaxAge is set, the ID token must carry an auth_time no older than
// it (OpenID Connect Core 3.1.3.7).
//
// Errors: *AuthorizationError when the provider answered error=...;
// ErrStateMismatch; ErrIssuerMismatch; ErrReauthRequired when the code is
// rejected (replayed, expired); ErrProvider when the provider is unreachable;
// ErrInvalidResponse when the tokens fail verification; ErrAuthTooOld.
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
	tctx, bound := c.ctx(ctx)
	tok, err := p.oauth2.Exchange(tctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, classify("code exchange", err)
	}
	t, err := c.tokens(ctx, p, tok, f.Nonce, "", bound.jkt)
	if err != nil {
		return nil, err
	}
	if f.MaxAge != nil {
		if err := c.checkAuthTime(t.IDToken, *f.MaxAge); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkAuthTime requires the ID token's auth_time to be no older than
// maxAge, AuthTimeSkew allowed. The token was verified by tokens: only its
// payload is read here.
func (c *Client) checkAuthTime(idToken string, maxAge time.Duration) error {
	at, ok := authTime(idToken)
	if !ok {
		return fmt.Errorf("%w: the ID token has no auth_time", ErrAuthTooOld)
	}
	if at.Add(maxAge).Before(c.now().Add(-AuthTimeSkew)) {
		return fmt.Errorf("%w: authenticated %s ago, max_age %s", ErrAuthTooOld,
			c.now().Sub(at).Truncate(time.Second), maxAge)
	}
	return nil
}

// authTime reads auth_time (a JSON number of seconds) from a JWT's payload.
func authTime(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		AuthTime json.Number `json:"auth_time"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return time.Time{}, false
	}
	secs, err := claims.AuthTime.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
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
