package session

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"time"
)

// Version is the payload format written by this package.
const Version = 1

// Session is what the sealed cookie holds: nothing that is not needed. Times
// are Unix seconds to keep the cookie small.
type Session struct {
	V            int    `json:"v"`
	ID           string `json:"id"`             // random 128-bit session id, the revocation handle
	Subject      string `json:"sub"`            // the ID token's sub
	Issuer       string `json:"iss"`            // the provider that signed the user in
	IdPSession   string `json:"isid,omitempty"` // the ID token's sid (back-channel logout)
	Start        int64  `json:"st"`             // sign-in time
	Expiry       int64  `json:"exp"`            // absolute expiry
	AccessToken  string `json:"at"`
	AccessExpiry int64  `json:"ate"`
	RefreshToken string `json:"rt,omitempty"`
	IDToken      string `json:"idt,omitempty"` // for id_token_hint and the user's claims
	Scope        string `json:"scp,omitempty"`
	// DPoPKey is the thumbprint of the DPoP key AccessToken is bound to
	// (oauth.Tokens.DPoPKey); empty for a bearer token.
	DPoPKey string `json:"dpk,omitempty"`
	// UserInfo holds the userinfo claims (oidc.userinfo): scalars and string arrays, bounded.
	UserInfo map[string]any `json:"ui,omitempty"`
	// LastSeen is when the session was last sealed while an idle timeout
	// applies (Store.Save sets it); zero without one.
	LastSeen int64 `json:"ls,omitempty"`

	// stale: re-seal when a cookie can be written, because the session was
	// opened with a key other than the current sealing key or is due to
	// slide its LastSeen (Config.IdleTimeout).
	stale bool

	// bearer is {"Bearer " + AccessToken}, built when the session is
	// opened (sharing the access token's bytes) so that no request builds a
	// 1 KB string again; bearerOf is the token it was built from (a mutated
	// copy rebuilds).
	bearer   []string
	bearerOf string
}

// BearerHeader returns the Authorization header value for the access token
// as a header value slice. The slice may be shared: never modify it.
func (s *Session) BearerHeader() []string {
	if s.bearer != nil && s.bearerOf == s.AccessToken {
		return s.bearer
	}
	return []string{bearerPrefix + s.AccessToken}
}

const bearerPrefix = "Bearer "

// NewID returns a random 128-bit session id, base64url.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// StartTime, ExpiryTime and AccessExpiryTime convert the Unix fields.
func (s *Session) StartTime() time.Time        { return time.Unix(s.Start, 0) }
func (s *Session) ExpiryTime() time.Time       { return time.Unix(s.Expiry, 0) }
func (s *Session) AccessExpiryTime() time.Time { return time.Unix(s.AccessExpiry, 0) }

// Stale reports whether the session should be re-sealed the next time the
// BFF can write a cookie: it was sealed under an older key, or it is due to
// slide its idle timeout.
func (s *Session) Stale() bool { return s.stale }

// LogValue prints short hashes of the session id and subject, the expiries and
// whether a refresh token is held; never a token.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("sid_hash", shortHash(s.ID)),
		slog.String("sub_hash", shortHash(s.Subject)),
		slog.Time("expiry", s.ExpiryTime()),
		slog.Time("access_expiry", s.AccessExpiryTime()),
		slog.Bool("refresh_token", s.RefreshToken != ""),
	)
}

// wellFormed reports whether s has what every opened session must have.
func (s *Session) wellFormed() bool {
	return s.V == Version && s.ID != "" && s.AccessToken != ""
}
