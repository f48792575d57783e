// Package crypto seals values for the browser and splits them into cookies.
//
// A Sealer turns a plaintext into a compact JWE (RFC 7516) with alg "dir",
// enc "A256GCM", the "kid" of the key ring's current sealing key and a "cty"
// naming the purpose (Session or Login), so a value sealed for one purpose
// never opens as another. Open parses with explicit allow-lists, accepts
// exactly those four protected header members, refuses a "zip" or "crit"
// header, and reports every failure as ErrInvalid with no further detail.
//
// Compression is done here rather than by go-jose: the plaintext is prefixed
// with one format byte (0 raw, 1 raw DEFLATE) and compressed only when that
// makes it shorter. Open bounds decompressed output by MaxPlaintext.
//
// A Chunker writes a sealed value as NAME.0, NAME.1, ... cookies that each fit
// the browsers' per-cookie limit, deletes chunks that are no longer needed,
// and reads them back, refusing gaps, duplicates and extra chunks.
//
// What it does not do: it does not choose or rotate keys (package keys), it
// does not know what a session contains, it never logs, and its errors never
// contain a plaintext, a sealed value or key material.
package crypto
