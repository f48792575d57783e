// Package revocation is the BFF's list of ended sessions: session ids revoked
// at logout, and subjects whose sessions started before a moment (back-channel
// logout by sub). Sealed cookies cannot be recalled, so every request that opens
// a session asks this list whether the session still counts.
//
// Entries expire when no session they could match can still be alive, so the
// list stays small. A single instance keeps it in memory and snapshots it to a
// file after every change, so a restart loses nothing. It does not replicate
// between instances (that is the cluster layer's job) and does not log.
package revocation
