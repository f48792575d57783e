// Package keys holds the BFF's key ring: the operator's master secrets and the
// per-epoch keys derived from them.
//
// Time is cut into epochs of Config.Rotation (default 24h). The key of epoch e
// under master m is HKDF-SHA256(m, salt "bff epoch key v1", info = e as 8
// big-endian bytes). Every instance that shares the master secrets and a
// roughly correct clock derives the same keys, so rotation needs no messages
// between instances. The first master secret seals; every master opens, so a
// master secret can be replaced without logging anyone out, and removing one
// invalidates everything it sealed.
//
// A key id (the JWE "kid") is "<master id>.<epoch>", where the master id is a
// 12-character base64url HMAC of the master secret: it names the master
// without revealing anything about it or the derived key.
//
// What it does not do: it does not encrypt anything (see package crypto), it
// does not read files or the environment (ParseSecrets only decodes a string
// the caller has read) and it never logs. Error messages never contain key
// material.
package keys
