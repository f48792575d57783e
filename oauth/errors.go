package oauth

import (
	"errors"
	"fmt"
)

var (
	// ErrNotReady means discovery has not succeeded yet; retry later (503).
	ErrNotReady = errors.New("oauth: provider metadata not loaded yet")
	// ErrReauthRequired means the grant is gone (invalid_grant, revoked or
	// rotated refresh token, no refresh token): the session must end and the
	// user sign in again.
	ErrReauthRequired = errors.New("oauth: re-authentication required")
	// ErrProvider means the provider could not be reached or answered with a
	// server error. The grant may still be good: keep the session.
	ErrProvider = errors.New("oauth: provider unavailable")
	// ErrClientAuth means the provider refused the BFF's own credentials
	// (invalid_client): oidc.client_id, oidc.client_secret or
	// oidc.auth_method do not match the client's registration. A
	// configuration error: neither the user's nor transient, so the session
	// is kept and nobody is told to retry.
	ErrClientAuth = errors.New("oauth: the provider refused the client credentials (invalid_client)")
	// ErrInvalidResponse means the provider answered something that fails
	// verification: an ID token with a wrong issuer, audience, nonce, azp,
	// signature or expiry, or a malformed token response.
	ErrInvalidResponse = errors.New("oauth: invalid provider response")
	// ErrIssuerMismatch means the callback's RFC 9207 iss parameter does not
	// name the configured provider (a mix-up attack, or a misconfiguration).
	ErrIssuerMismatch = errors.New("oauth: authorization response issuer mismatch")
)

// AuthorizationError is an error=... answer of the authorization endpoint
// (RFC 6749 section 4.1.2.1), e.g. access_denied when the user cancels.
type AuthorizationError struct {
	Code string // the error parameter, e.g. "access_denied"
}

func (e *AuthorizationError) Error() string {
	return fmt.Sprintf("oauth: authorization failed: %s", e.Code)
}
