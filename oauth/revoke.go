package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// ErrUnsupported means the provider's metadata lacks the endpoint needed.
var ErrUnsupported = errors.New("oauth: not supported by the provider")

// Revoke asks the provider to revoke token (RFC 7009). hint is
// "refresh_token" or "access_token" (or empty). Revoking a refresh token also
// ends the grant's access tokens at most providers.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	p, err := c.provider()
	if err != nil {
		return err
	}
	if p.revokeURL == "" {
		return fmt.Errorf("%w: revocation endpoint", ErrUnsupported)
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, err := c.postAuthenticated(ctx, p, "revoke", p.revokeURL, form)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: revoke: status %d", ErrProvider, resp.StatusCode)
	default:
		return fmt.Errorf("oauth: revoke: status %d", resp.StatusCode)
	}
}

// EndSessionURL returns the provider's RP-initiated logout URL (OpenID Connect
// RP-Initiated Logout 1.0) with id_token_hint, client_id and the configured
// post_logout_redirect_uri. ErrUnsupported when the provider has none.
func (c *Client) EndSessionURL(idTokenHint string) (string, error) {
	p, err := c.provider()
	if err != nil {
		return "", err
	}
	if p.endSession == "" {
		return "", fmt.Errorf("%w: end_session_endpoint", ErrUnsupported)
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return "", fmt.Errorf("%w: end_session_endpoint", ErrInvalidResponse)
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if c.cfg.PostLogoutRedirectURL != "" {
		q.Set("post_logout_redirect_uri", c.cfg.PostLogoutRedirectURL)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
