// Command mint writes N distinct session cookies, one Cookie header per line,
// sealed with the master secret in $BFF_KEYS_SECRETS exactly as `bff serve`
// seals them (same key ring, sealer, chunker and session store), so that the
// benchmark can load a population of sessions instead of one that the
// open-session cache serves after its first request. Each session carries
// tokens shaped like a provider's (an RS256-sized JWT access token with a
// dozen claims, an ID token, an opaque refresh token), distinct per session.
//
// -pad adds a claim of that many bytes to every access token (to load
// sessions of 2 or 4 cookie chunks). With -revoked N it also writes a
// revocation log (-revocation-file, the BFF's revocation.snapshot_file,
// before the BFF starts) holding N revoked sessions that are none of the
// minted ones, so the benchmark can load a BFF with a full revocation list.
//
// It is a benchmark tool: it lives under bench/ and is never part of the
// bff binary. It writes nothing but -out (mode 0600) and -revocation-file.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/revocation"
	"github.com/bff-project/bff/session"
)

func main() {
	n := flag.Int("n", 10000, "sessions to mint")
	issuer := flag.String("issuer", "", "the provider's issuer (as the BFF is configured)")
	name := flag.String("cookie-name", "__Host-Http-bff", "session.cookie_name")
	lifetime := flag.Duration("lifetime", 8*time.Hour, "session.lifetime")
	rotation := flag.Duration("rotation", 24*time.Hour, "keys.rotation")
	out := flag.String("out", "", "file to write, one Cookie header per line")
	pad := flag.Int("pad", 0, "bytes of extra claim in each access token")
	revoked := flag.Int("revoked", 0, "revoked sessions to write to -revocation-file")
	revFile := flag.String("revocation-file", "", "revocation log to write (must not exist)")
	flag.Parse()
	if *revoked > 0 || *revFile != "" {
		if err := revoke(*revoked, *revFile, *lifetime); err != nil {
			fmt.Fprintln(os.Stderr, "mint:", err)
			os.Exit(1)
		}
		if *out == "" {
			return
		}
	}
	if err := run(*n, *issuer, *name, *lifetime, *rotation, *out, *pad); err != nil {
		fmt.Fprintln(os.Stderr, "mint:", err)
		os.Exit(1)
	}
}

// revoke writes n revoked session ids, expiring after lifetime, to file.
func revoke(n int, file string, lifetime time.Duration) error {
	if n <= 0 || file == "" {
		return fmt.Errorf("-revoked needs a positive count and -revocation-file")
	}
	if _, err := os.Stat(file); err == nil {
		return fmt.Errorf("%s exists: the revocation log is written only before the BFF starts", file)
	}
	l, err := revocation.New(revocation.Config{SnapshotFile: file, MaxEntries: max(n, revocation.DefaultMaxEntries)})
	if err != nil {
		return err
	}
	exp := time.Now().Add(lifetime)
	entries := make([]revocation.Entry, n)
	for i := range entries {
		entries[i] = revocation.Entry{Kind: revocation.KindSession, Key: session.NewID(), Expiry: exp}
	}
	if _, err := l.Merge(entries); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}

func run(n int, issuer, name string, lifetime, rotation time.Duration, out string, pad int) error {
	if out == "" || issuer == "" || n <= 0 {
		return fmt.Errorf("-out, -issuer and a positive -n are required")
	}
	var secrets [][]byte
	for _, s := range strings.Split(os.Getenv("BFF_KEYS_SECRETS"), ",") {
		b, err := keys.ParseSecret(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("BFF_KEYS_SECRETS: %w", err)
		}
		secrets = append(secrets, b)
	}
	ring, err := keys.New(keys.Config{Secrets: secrets, Rotation: rotation, Window: lifetime})
	if err != nil {
		return err
	}
	sealer, err := crypto.NewSealer(crypto.Config{Ring: ring})
	if err != nil {
		return err
	}
	chunker, err := crypto.NewChunker(crypto.ChunkConfig{Name: name, SameSite: http.SameSiteLaxMode})
	if err != nil {
		return err
	}
	store, err := session.NewStore(session.Config{Sealer: sealer, Chunker: chunker, CacheEntries: -1})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	now := time.Now()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for i := range n {
		sub := fmt.Sprintf("user-%07d", i)
		s := &session.Session{
			ID: session.NewID(), Subject: sub, Issuer: issuer, Start: now.Unix(), Expiry: now.Add(lifetime).Unix(),
			AccessToken: jwt(fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":["https://api.example.com","account"],"exp":%d,"iat":%d,"jti":%q,"scope":"openid profile email offline_access","azp":"bff","sid":%q,"email":"%s@example.com","preferred_username":%q,"client_id":"bff"%s}`,
				issuer, sub, now.Add(24*time.Hour).Unix(), now.Unix(), session.NewID(), session.NewID(), sub, sub, padClaim(pad))),
			AccessExpiry: now.Add(24 * time.Hour).Unix(),
			RefreshToken: session.NewID() + session.NewID(),
			IDToken: jwt(fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":"bff","exp":%d,"iat":%d,"sid":%q,"name":"User %d"}`,
				issuer, sub, now.Add(time.Hour).Unix(), now.Unix(), session.NewID(), i)),
			Scope: "openid profile email offline_access",
		}
		h := http.Header{}
		if err := store.Save(h, req, s); err != nil {
			return err
		}
		var cookies []string
		for _, c := range (&http.Response{Header: h}).Cookies() {
			if c.MaxAge >= 0 {
				cookies = append(cookies, c.Name+"="+c.Value)
			}
		}
		if _, err := fmt.Fprintln(f, strings.Join(cookies, "; ")); err != nil {
			return err
		}
	}
	return f.Close()
}

// jwt is a token shaped like an RS256 JWT: header, claims, 256 random bytes.
func jwt(claims string) string {
	sig := make([]byte, 256)
	rand.Read(sig)
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(`{"alg":"RS256","kid":"bench-key","typ":"at+jwt"}`)) + "." +
		e.EncodeToString([]byte(claims)) + "." + e.EncodeToString(sig)
}

// padClaim is a claim of about n bytes of random base64url text ("" for 0):
// as incompressible as such claims are in a stored JWT.
func padClaim(n int) string {
	if n <= 0 {
		return ""
	}
	b := make([]byte, n*3/4+1)
	rand.Read(b)
	return `,"pad":"` + base64.RawURLEncoding.EncodeToString(b)[:n] + `"`
}
