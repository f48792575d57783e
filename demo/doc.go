// Package demo is the embedded demo behind `bff demo`: a development OpenID
// provider, a sample API and a sample single-page app, so a newcomer can watch
// the whole BFF flow work in a browser with no setup.
//
// The provider (StartProvider) is built on zitadel/oidc's op package with a
// small in-memory storage: discovery, JWKS, authorization code with PKCE
// (S256, required), client_secret_basic and client_secret_post, JWT access
// tokens, refresh tokens with rotation, RFC 7009 revocation, RP-initiated
// logout, and a plain HTML login form for one demo user.
//
// The API (StartAPI) verifies bearer tokens against the provider's JWKS and
// answers /api/whoami, /api/echo and /api/events (a Server-Sent Events tick
// every second, which the page opens with an EventSource: no custom header,
// accepted by the BFF as a same-origin GET). Page serves the sample app and
// GET /demo/cookies, the names and sizes (never values) of the cookies the
// browser sent, which page script cannot list itself.
//
// It is NOT production code and is never imported by `serve`: it keeps
// everything in memory, generates its keys at start, serves plain http on
// loopback, has exactly one user whose password is compared in plain text, and
// asks for no consent. Nothing here survives a restart.
package demo
