package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Derived tokens: an access token restricted to one upstream (RFC 8707
// resource, or an audience), obtained without touching the refresh token,
// so one refresh token is still redeemed once:
//   - Exchange trades the session's access token for it (RFC 8693 token
//     exchange): same user, narrower audience and scopes;
//   - ClientCredentials gets one for the BFF itself (RFC 6749 section 4.4),
//     for routes without a user.

// RFC 8693 identifiers.
const (
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// ErrOutranks means a derived token would carry a scope the session was
// not granted: refused before asking, or when the provider answers one.
var ErrOutranks = errors.New("oauth: the derived token would outrank the session")

// Target is the upstream a derived token is for. Resource is an RFC 8707
// resource indicator (an absolute URI), Audience a provider-specific
// audience name (RFC 8693 audience); at least one, or Scopes alone to
// narrow the token's scopes.
type Target struct {
	Resource string
	Audience string
	Scopes   []string
}

func (t Target) params() url.Values {
	v := url.Values{}
	if t.Resource != "" {
		v.Set("resource", t.Resource)
	}
	if t.Audience != "" {
		v.Set("audience", t.Audience)
	}
	return v
}

// Exchange trades subjectToken, the session's access token whose granted
// scopes are grantedScope (space separated, "" when the provider did not
// say), for an access token restricted to t. Every scope of t, and every
// scope the provider answers, must be among the granted ones
// (ErrOutranks). The token request carries the client's authentication and
// a DPoP proof like every other. Errors are those of Refresh.
func (c *Client) Exchange(ctx context.Context, subjectToken, grantedScope string, t Target) (*Tokens, error) {
	if subjectToken == "" {
		return nil, fmt.Errorf("%w: no access token to exchange", ErrReauthRequired)
	}
	granted := strings.Fields(grantedScope)
	for _, s := range t.Scopes {
		if len(granted) > 0 && !slices.Contains(granted, s) {
			return nil, fmt.Errorf("%w: scope %q was not granted to the session", ErrOutranks, s)
		}
	}
	params := t.params()
	params.Set("grant_type", GrantTokenExchange)
	params.Set("subject_token", subjectToken)
	params.Set("subject_token_type", TokenTypeAccess)
	params.Set("requested_token_type", TokenTypeAccess)
	allowed := granted
	if len(allowed) == 0 {
		allowed = t.Scopes
	}
	return c.derive(ctx, "token exchange", t.Scopes, params, allowed)
}

// ClientCredentials gets an access token for the BFF itself, restricted to
// t (RFC 6749 section 4.4 with RFC 8707's resource).
func (c *Client) ClientCredentials(ctx context.Context, t Target) (*Tokens, error) {
	return c.derive(ctx, "client credentials", t.Scopes, t.params(), nil)
}

// derive posts a token request of x/oauth2's client-credentials shape
// (whose grant_type may be overridden) through the token transport.
// allowed, when not nil, bounds the scopes the answer may carry.
func (c *Client) derive(ctx context.Context, op string, scopes []string, params url.Values, allowed []string) (*Tokens, error) {
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	cc := clientcredentials.Config{
		ClientID:       p.oauth2.ClientID,
		ClientSecret:   p.oauth2.ClientSecret,
		TokenURL:       p.oauth2.Endpoint.TokenURL,
		AuthStyle:      p.oauth2.Endpoint.AuthStyle,
		Scopes:         scopes,
		EndpointParams: params,
	}
	tctx, bound := c.ctx(ctx)
	tok, err := cc.Token(tctx)
	if err != nil {
		return nil, classify(op, err)
	}
	return c.derivedTokens(tok, bound.jkt, allowed)
}

// derivedTokens checks a derived token's answer: an access token of a type
// the request can use, scopes within allowed (when not nil), an expiry.
func (c *Client) derivedTokens(tok *oauth2.Token, bound string, allowed []string) (*Tokens, error) {
	if it, _ := tok.Extra("issued_token_type").(string); it != "" && it != TokenTypeAccess {
		return nil, fmt.Errorf("%w: issued token type %q is not an access token", ErrInvalidResponse, sanitizeCode(it))
	}
	t, err := c.accessTokens(tok, bound, "n_a")
	if err != nil {
		return nil, err
	}
	for _, sc := range strings.Fields(t.Scope) {
		if allowed != nil && !slices.Contains(allowed, sc) {
			return nil, fmt.Errorf("%w: the provider answered scope %q", ErrOutranks, sanitizeCode(sc))
		}
	}
	return t, nil
}
