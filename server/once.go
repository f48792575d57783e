package server

import (
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/revocation"
)

var (
	_ onceStore = (*revocation.List)(nil)
	_ onceStore = (*cluster.Cluster)(nil)
)

// onceStore records values that may be used once, on every instance: the
// revocation list (single instance) or the cluster, which replicates what it
// records to every member the way it replicates revocations. Use reports
// whether key is used for the first time; a full store evicts the entries
// that expire first, never refusing a new one (a full store that refused
// would let anyone stop every sign-in by filling it).
type onceStore interface {
	Use(key string, expiry time.Time) (first bool, err error)
}

// Kinds of single-use value, as key prefixes: a sign-in state and a logout
// token's jti never collide.
const (
	onceState      = "state:" // sign-in state at the callback
	onceLogoutJTI  = "jti:"   // back-channel logout token id (with its issuer)
	onceInternal   = "rr:"    // internal refresh request id
	onceEndSession = "end:"   // end-session ticket id
)

// useOnce records value of kind as used until expiry and reports whether
// this is its first use. The key is a hash of the value: the list holds no
// state or jti that could be replayed from a snapshot file.
//
// An internal refresh request names the one member it is for, so its id is
// recorded on that member only (persisted, not replicated): a copy sent to
// any other member is refused by the name already.
func (s *Server) useOnce(kind, value string, expiry time.Time) (bool, error) {
	h := sha256.Sum256([]byte(value))
	key := kind + base64.RawURLEncoding.EncodeToString(h[:18])
	if kind == onceInternal {
		return s.revoked.Use(key, expiry)
	}
	return s.once.Use(key, expiry)
}
