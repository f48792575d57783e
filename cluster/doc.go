// Package cluster replicates the revocation list between BFF instances with
// nothing shared but configuration: hashicorp/memberlist gossips membership,
// every revocation, and every first use of a single-use value (Use), is sent
// at once to every live member and gossiped as well, and a periodic
// full-state push/pull heals a node that was down or cut off. So a logout
// holds, and a replayed sign-in state or logout token is refused, on every
// instance a balancer may pick.
//
// All traffic is encrypted and authenticated with the cluster secret
// (AES-GCM); a packet that fails that, or that does not decode as entries,
// is dropped, changes nothing, and is counted (Config.OnDrop).
//
// It does not decide anything about sessions: it moves entries, and tells
// which instances are alive (for choosing a refresh owner). It does not
// persist anything itself; the revocation list does.
package cluster
