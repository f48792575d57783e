package crypto

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/keys"
)

// clock is a settable fixed clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func testSecret(b byte) []byte       { return bytes.Repeat([]byte{b}, 32) }
func b64(s string) string            { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
func mustDecode(s string) []byte     { b, _ := base64.RawURLEncoding.DecodeString(s); return b }

// t0 starts an epoch for any rotation that divides a day.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestRing returns a ring with 2s epochs and a 10s window.
func newTestRing(tb testing.TB, c *clock, secrets ...[]byte) *keys.Ring {
	tb.Helper()
	r, err := keys.New(keys.Config{Secrets: secrets, Rotation: 2 * time.Second, Window: 10 * time.Second, MaxSkew: 500 * time.Millisecond, Now: c.now})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func newTestSealer(tb testing.TB, cfg Config) *Sealer {
	tb.Helper()
	s, err := NewSealer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// tokenPlaintext returns about 3 KB of token-like JSON: two ~1.1 KB JWT-ish
// strings and a 100-byte refresh token, deterministic for a given seed.
func tokenPlaintext(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	jwt := func() string {
		hdr := b64(`{"alg":"RS256","kid":"` + random(12) + `","typ":"JWT"}`)
		claims := fmt.Sprintf(`{"iss":"https://idp.example.com","sub":"%s","aud":["bff","api"],"exp":%d,"iat":%d,"jti":"%s","scope":"openid profile email offline_access","email":"user%d@example.com","name":"Example User %d","roles":["reader","writer"],"azp":"bff","sid":"%s","auth_time":%d}`,
			random(16), 1735693200+rng.IntN(1000), 1735689600, random(16), rng.IntN(1000), rng.IntN(1000), random(16), 1735689600)
		return hdr + "." + b64(claims) + "." + random(256)
	}
	at, id := jwt(), jwt()
	for len(at) < 1100 {
		at += "A"
	}
	return fmt.Appendf(nil, `{"v":1,"sid":"%s","sub":"%s","iss":"https://idp.example.com","start":1735689600,"exp":1735718400,"at":"%s","at_exp":1735693200,"rt":"%s","id":"%s","scope":"openid profile email offline_access"}`,
		random(16), random(12), at, random(75), id)
}

// randomBytes returns n deterministic incompressible bytes.
func randomBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// cookieRequest returns a request carrying the given "name=value" pairs in one
// Cookie header.
func cookieRequest(pairs ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	if len(pairs) > 0 {
		r.Header.Set("Cookie", strings.Join(pairs, "; "))
	}
	return r
}

// replay returns a request carrying the cookies that h's Set-Cookie lines
// set (deletions excluded), in order.
func replay(h http.Header) *http.Request {
	var pairs []string
	for _, line := range h.Values("Set-Cookie") {
		nv, _, _ := strings.Cut(line, ";")
		if strings.Contains(line, "Max-Age=0") {
			continue
		}
		pairs = append(pairs, nv)
	}
	return cookieRequest(pairs...)
}
