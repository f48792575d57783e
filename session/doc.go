// Package session is the BFF's sealed session: the token set and the little
// the BFF must know about a sign-in, sealed with package crypto and carried by
// the browser as chunked HttpOnly cookies.
//
// It decides what is in a session and whether a presented one still counts
// (sealed by a known key, not past its absolute expiry, not revoked). It does
// not talk to the provider (refresh is package proxy's, sign-in package
// server's) and does not log: the Store reports an over-budget cookie through a
// callback.
package session
