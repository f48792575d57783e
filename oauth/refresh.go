package oauth

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
)

// Refresh redeems refreshToken for a new token set (RFC 6749 section 6). The
// result's RefreshToken is the rotated one when the provider rotates, else the
// same one. A new ID token, when the provider sends one, is verified and must
// name the same subject as sub.
//
// Refresh does no locking of its own: with rotating refresh tokens the caller
// must make sure one refresh token is redeemed once (see package proxy).
// Errors: ErrReauthRequired (wrapped in *TokenError) when the grant is gone;
// ErrProvider when the provider is down; ErrInvalidResponse.
func (c *Client) Refresh(ctx context.Context, refreshToken, sub string) (*Tokens, error) {
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: no refresh token", ErrReauthRequired)
	}
	tctx, bound := c.ctx(ctx)
	tok, err := p.oauth2.TokenSource(tctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, classify("refresh", err)
	}
	return c.tokens(ctx, p, tok, "", sub, bound.jkt)
}
