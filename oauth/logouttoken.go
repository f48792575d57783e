package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// backchannelEvent is the events member that makes a JWT a logout token.
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutTokenAge bounds how old (by iat) a logout token may be, and how far
// in the future its iat may be (clock skew).
const (
	maxLogoutTokenAge  = 5 * time.Minute
	logoutTokenMaxSkew = time.Minute
)

// ErrInvalidLogoutToken means a back-channel logout token failed a check.
var ErrInvalidLogoutToken = errors.New("oauth: invalid logout token")

// LogoutToken is a verified OpenID Connect Back-Channel Logout 1.0 token.
type LogoutToken struct {
	Subject   string    // sub, may be empty when SessionID is set
	SessionID string    // sid, may be empty when Subject is set
	JTI       string    // unique id; the caller refuses replays
	IssuedAt  time.Time // iat
}

// VerifyLogoutToken verifies a logout token (Back-Channel Logout 1.0 section
// 2.6): signature by the provider's keys with an allowed algorithm, iss, aud,
// iat within a few minutes, exp when present, a jti, the backchannel-logout
// event, a sub or sid, and no nonce (so an ID token can never pass as one).
// Replays of a jti are the caller's to refuse.
func (c *Client) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	if len(raw) > 16<<10 {
		return nil, fmt.Errorf("%w: too large", ErrInvalidLogoutToken)
	}
	if typ := jwtType(raw); typ != "" && !strings.EqualFold(typ, "logout+jwt") && !strings.EqualFold(typ, "JWT") {
		return nil, fmt.Errorf("%w: typ %q", ErrInvalidLogoutToken, sanitizeCode(typ))
	}
	idt, err := p.logoutVerifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLogoutToken, err)
	}
	var claims struct {
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
		Nonce  *json.RawMessage           `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
		IAT    *json.Number               `json:"iat"`
		Exp    *json.Number               `json:"exp"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidLogoutToken, err)
	}
	now := c.now()
	switch {
	case claims.Nonce != nil:
		return nil, fmt.Errorf("%w: has a nonce", ErrInvalidLogoutToken)
	case claims.JTI == "" || len(claims.JTI) > 256:
		return nil, fmt.Errorf("%w: no jti", ErrInvalidLogoutToken)
	case idt.Subject == "" && claims.SID == "":
		return nil, fmt.Errorf("%w: neither sub nor sid", ErrInvalidLogoutToken)
	case claims.IAT == nil || idt.IssuedAt.IsZero():
		return nil, fmt.Errorf("%w: no iat", ErrInvalidLogoutToken)
	case idt.IssuedAt.Before(now.Add(-maxLogoutTokenAge)) || idt.IssuedAt.After(now.Add(logoutTokenMaxSkew)):
		return nil, fmt.Errorf("%w: iat out of range", ErrInvalidLogoutToken)
	case claims.Exp != nil && !idt.Expiry.After(now):
		return nil, fmt.Errorf("%w: expired", ErrInvalidLogoutToken)
	}
	ev, ok := claims.Events[backchannelEvent]
	if !ok {
		return nil, fmt.Errorf("%w: no backchannel-logout event", ErrInvalidLogoutToken)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(ev, &obj); err != nil {
		return nil, fmt.Errorf("%w: event is not an object", ErrInvalidLogoutToken)
	}
	return &LogoutToken{Subject: idt.Subject, SessionID: claims.SID, JTI: claims.JTI, IssuedAt: idt.IssuedAt}, nil
}

// jwtType returns the typ header of a JWT, or "" when absent or unreadable
// (the verifier then refuses what is unreadable).
func jwtType(raw string) string {
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return ""
	}
	return hdr.Typ
}

// newLogoutVerifier checks signature, iss and aud; expiry is checked by
// VerifyLogoutToken because exp is optional in logout tokens.
func newLogoutVerifier(op *oidc.Provider, clientID string, algs []string, now func() time.Time) *oidc.IDTokenVerifier {
	return op.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: algs, SkipExpiryCheck: true, Now: now})
}
