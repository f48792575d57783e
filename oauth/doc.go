// Package oauth is the BFF's OpenID Connect relying party: provider discovery,
// the authorization URL (state, nonce and PKCE S256, always), the code exchange
// with ID-token verification, refresh, RFC 7009 revocation and the RP-initiated
// logout URL.
//
// It is a leaf: it imports no other package of the project, never logs, and
// returns typed or sentinel errors that callers match with errors.Is/As. It does
// not store anything: where tokens live (sealed cookies) and when to refresh them
// is the caller's business. It does not authorize: which user may call which API
// stays with the APIs.
package oauth
