package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DefaultAccessLifetime is assumed for an access token whose lifetime the
// provider did not state (no expires_in, not a JWT with exp): short, so the BFF
// refreshes early rather than forwarding an expired token.
const DefaultAccessLifetime = 5 * time.Minute

// Tokens is a verified token set. It implements slog.LogValuer so that it can
// never be logged in full by mistake.
type Tokens struct {
	AccessToken  string
	Expiry       time.Time // when AccessToken expires
	RefreshToken string    // empty when the provider issued none
	IDToken      string    // raw, for id_token_hint and the user's claims
	Scope        string    // granted scopes, space separated, when the provider said
	Subject      string    // the verified ID token's sub
	SessionID    string    // the ID token's sid (Back-Channel Logout), if any
	// DPoPKey is the thumbprint (jkt) of the DPoP key AccessToken is bound
	// to (token_type DPoP); empty for a bearer token.
	DPoPKey string
}

// LogValue prints a short hash of the subject, the expiry and whether a
// refresh token is held; never a token.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("sub_hash", ShortHash(t.Subject)),
		slog.Time("expiry", t.Expiry),
		slog.Bool("refresh_token", t.RefreshToken != ""),
	)
}

// ShortHash is a 12-hex-digit SHA-256 prefix of s, for correlating values in
// logs without revealing them.
func ShortHash(s string) string {
	if s == "" {
		return ""
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// TokenError is an error answer of the token endpoint (RFC 6749 section 5.2).
// It unwraps to its class (see tokenErrorClass), so callers branch with
// errors.Is and read Code when they log.
type TokenError struct {
	Op     string // "code exchange" or "refresh"
	Code   string // the error code, e.g. "invalid_grant"; empty for a non-JSON answer
	Status int    // HTTP status
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("oauth: %s: token endpoint answered %d %s", e.Op, e.Status, e.Code)
}

func (e *TokenError) Unwrap() error { return tokenErrorClass(e.Code, e.Status) }

// tokenErrorClass sorts a token-endpoint error answer:
//   - invalid_client (or a 401 without an error code): ErrClientAuth, the
//     BFF's credentials are refused;
//   - 5xx, 429, temporarily_unavailable, server_error: ErrProvider, try
//     again later (the grant may be good);
//   - any other error code: ErrReauthRequired. Providers do not agree on the
//     code for a dead refresh token (Dex answers invalid_request, most
//     invalid_grant), and none of the others gets better by retrying: the
//     session ends and the user signs in again;
//   - no error code at all (an HTML error page of a proxy in between):
//     ErrProvider, since nothing says the grant is gone.
func tokenErrorClass(code string, status int) error {
	switch {
	case code == "invalid_client", code == "" && status == http.StatusUnauthorized:
		return ErrClientAuth
	case code == "temporarily_unavailable", code == "server_error",
		status >= 500, status == http.StatusTooManyRequests:
		return ErrProvider
	case code != "":
		return ErrReauthRequired
	default:
		return ErrProvider
	}
}

// classify turns an x/oauth2 error into ours, without the response body (it
// may echo a credential).
func classify(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenError{Op: op, Code: sanitizeCode(re.ErrorCode)}
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		return te
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %s: %w", ErrProvider, op, err)
	}
	// x/oauth2 reports a response without access_token, or an unparsable
	// one, as a plain error.
	return fmt.Errorf("%w: %s: %v", ErrProvider, op, err)
}

// tokens verifies what the token endpoint returned. nonce is checked when not
// empty (code exchange); wantSub is checked when not empty (refresh); bound
// is the jkt of the DPoP proof the request carried, "" for none.
func (c *Client) tokens(ctx context.Context, p *provider, tok *oauth2.Token, nonce, wantSub, bound string) (*Tokens, error) {
	t, err := c.accessTokens(tok, bound)
	if err != nil {
		return nil, err
	}
	t.RefreshToken = tok.RefreshToken
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if nonce != "" {
			return nil, fmt.Errorf("%w: no ID token", ErrInvalidResponse)
		}
		// A refresh need not return a new ID token (OIDC Core 12.2).
		t.Subject = wantSub
		return t, nil
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: ID token: %w", ErrInvalidResponse, err)
	}
	var claims struct {
		AZP string `json:"azp"`
		SID string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: ID token claims: %w", ErrInvalidResponse, err)
	}
	if len(idt.Audience) > 1 || claims.AZP != "" {
		if claims.AZP != c.cfg.ClientID {
			return nil, fmt.Errorf("%w: ID token azp is not this client", ErrInvalidResponse)
		}
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("%w: ID token nonce mismatch", ErrInvalidResponse)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("%w: at_hash mismatch", ErrInvalidResponse)
		}
	}
	if idt.Subject == "" || (wantSub != "" && idt.Subject != wantSub) {
		return nil, fmt.Errorf("%w: ID token subject changed", ErrInvalidResponse)
	}
	t.IDToken, t.Subject, t.SessionID = raw, idt.Subject, claims.SID
	return t, nil
}

// accessTokens reads the access token of a token-endpoint answer: present,
// of a type the BFF can present (bearer, or one of otherTypes; DPoP only
// when bound names the key the request proved: a provider without DPoP
// answers a proof with a bearer token), its scope, and its expiry
// (expires_in on the injectable clock, else the JWT's exp, else
// DefaultAccessLifetime).
func (c *Client) accessTokens(tok *oauth2.Token, bound string, otherTypes ...string) (*Tokens, error) {
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("%w: no access token", ErrInvalidResponse)
	}
	t := &Tokens{AccessToken: tok.AccessToken}
	switch tt := strings.ToLower(tok.TokenType); {
	case tt == "" || tt == "bearer" || slices.Contains(otherTypes, tt):
	case tt == "dpop" && bound != "":
		t.DPoPKey = bound
	default:
		return nil, fmt.Errorf("%w: token type %q is not bearer", ErrInvalidResponse, sanitizeCode(tok.TokenType))
	}
	if s, ok := tok.Extra("scope").(string); ok {
		t.Scope = s
	}
	// x/oauth2 computes Expiry with the wall clock; ours is injectable. Its
	// client-credentials path keeps no ExpiresIn: read the answer's.
	secs := tok.ExpiresIn
	if v, ok := tok.Extra("expires_in").(float64); secs == 0 && ok {
		secs = int64(v)
	}
	if secs > 0 {
		t.Expiry = c.now().Add(time.Duration(secs) * time.Second)
	} else if t.Expiry = jwtExpiry(tok.AccessToken); t.Expiry.IsZero() {
		t.Expiry = c.now().Add(DefaultAccessLifetime)
	}
	return t, nil
}

// jwtExpiry reads exp from a JWT access token without verifying it: it only
// schedules the refresh, the API verifies the token itself.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return time.Time{}
	}
	n, err := c.Exp.Int64()
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}
