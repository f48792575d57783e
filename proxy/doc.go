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
// A refresh forced by an upstream's 401 invalid_token is bounded per session
// (Config.ForcedRefreshCooldown), and a refresh the provider refuses ends the
// session and is reported (Config.OnSessionEnded) so the server revokes it.
//
// It strips what must not reach an upstream (the inbound Authorization header,
// the BFF's own cookies, untrusted X-Forwarded-* values) and what must not
// come back from one (Set-Cookie for the BFF's cookie names, Clear-Site-Data,
// shared-cache permissions on a response to a cookie-authenticated request).
// It forwards WebSocket upgrades and no other, and refuses plain-http
// upstreams off loopback for routes that send a bearer, unless told otherwise.
// It never authorizes: the upstream API validates the bearer token and
// decides. It does not check anti-forgery headers (the server's middleware
// does that before it), does not enforce the routes' body limits (the server
// reads them through RouteFor) and does not render errors: every error goes
// to the configured ErrorHandler.
package proxy
