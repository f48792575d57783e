// Package proxy forwards the app's API calls to upstream APIs with the
// session's access token as Authorization: Bearer, refreshing the token first
// when it is about to expire.
//
// It guarantees that one refresh token is redeemed once per instance: requests
// of one session that need a refresh at the same time share one refresh
// (single flight), and a request that still carries the pre-refresh cookie
// gets the winner's tokens from a short-lived successor cache instead of
// replaying a rotated refresh token. The refreshed session cookie rides on the
// same response.
//
// It strips what must not reach an upstream (the inbound Authorization header,
// the BFF's own cookies, untrusted X-Forwarded-* values) and never authorizes:
// the upstream API validates the bearer token and decides. It does not check
// anti-forgery headers (the server's middleware does that before it) and does
// not render errors: every error goes to the configured ErrorHandler.
package proxy
