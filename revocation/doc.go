// Package revocation is the BFF's list of ended sessions: session ids revoked
// at logout, and subjects whose sessions started before a moment (back-channel
// logout by sub). Sealed cookies cannot be recalled, so every request that opens
// a session asks this list whether the session still counts. It also
// remembers values that may be used only once (sign-in states, logout-token
// ids, internal request ids): Use records one and says whether it was new.
//
// Entries expire when no session they could match can still be alive (or the
// value could no longer be accepted), so the list stays small. It is bounded
// all the same, revocations and single-use values each on their own: a full
// list evicts the entries that expire first and never refuses a new one.
// A single instance keeps it in memory and appends every change to a log
// file before reporting it done, so a restart loses nothing. It does not
// replicate between instances (that is the cluster layer's job) and does not
// log.
package revocation
