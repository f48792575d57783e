package session

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

type revoker map[string]bool

func (r revoker) Revoked(id, _, _ string, _ time.Time) bool { return r[id] }

// fixture is a store over a real key ring, sealer and chunker.
type fixture struct {
	clock   *clock
	ring    *keys.Ring
	store   *Store
	revoked revoker
	over    []int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}, revoked: revoker{}}
	var err error
	f.ring, err = keys.New(keys.Config{Secrets: [][]byte{bytes.Repeat([]byte{7}, 32)}, Rotation: time.Hour, Window: 8 * time.Hour, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(crypto.Config{Ring: f.ring})
	if err != nil {
		t.Fatal(err)
	}
	chunker, err := crypto.NewChunker(crypto.ChunkConfig{Name: "__Host-Http-bff"})
	if err != nil {
		t.Fatal(err)
	}
	f.store, err = NewStore(Config{
		Sealer: sealer, Chunker: chunker, Revoker: f.revoked, Now: f.clock.Now,
		OverBudget: func(n int, _ *Session) { f.over = append(f.over, n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) session() *Session {
	now := f.clock.t
	return &Session{
		ID: NewID(), Subject: "alice", Issuer: "https://idp.test", Start: now.Unix(),
		Expiry: now.Add(8 * time.Hour).Unix(), AccessToken: "at-" + strings.Repeat("a", 900),
		AccessExpiry: now.Add(5 * time.Minute).Unix(), RefreshToken: "rt-123", IDToken: "id." + strings.Repeat("b", 900) + ".sig",
	}
}

// roundTrip saves s and returns a request carrying the cookies it set.
func (f *fixture) roundTrip(t testing.TB, s *Session) *http.Request {
	t.Helper()
	h := http.Header{}
	if err := f.store.Save(h, httptest.NewRequest("GET", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.MaxAge >= 0 {
			r.AddCookie(c)
		}
	}
	return r
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(f *fixture, s *Session) *http.Request
		want    error
	}{
		{"round trip", func(f *fixture, s *Session) *http.Request { return f.roundTrip(t, s) }, nil},
		{"no cookie", func(*fixture, *Session) *http.Request { return httptest.NewRequest("GET", "/", nil) }, ErrNoSession},
		{"garbage", func(*fixture, *Session) *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(&http.Cookie{Name: "__Host-Http-bff.0", Value: "eyJhbGciOiJub25lIn0.x.y.z.w"})
			return r
		}, ErrInvalid},
		{"expired", func(f *fixture, s *Session) *http.Request {
			r := f.roundTrip(t, s)
			f.clock.t = f.clock.t.Add(8*time.Hour + time.Second)
			return r
		}, ErrExpired},
		{"revoked", func(f *fixture, s *Session) *http.Request {
			r := f.roundTrip(t, s)
			f.revoked[s.ID] = true
			return r
		}, ErrRevoked},
		{"no access token inside", func(f *fixture, s *Session) *http.Request {
			s.AccessToken = ""
			return f.roundTrip(t, s)
		}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.session()
			got, err := f.store.Load(tt.prepare(f, s))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load: err = %v, want %v", err, tt.want)
			}
			if err == nil && (got.ID != s.ID || got.AccessToken != s.AccessToken || got.RefreshToken != s.RefreshToken || got.IDToken != s.IDToken) {
				t.Errorf("Load returned a different session")
			}
		})
	}
}

func TestStaleAfterRotation(t *testing.T) {
	f := newFixture(t)
	r := f.roundTrip(t, f.session())
	f.clock.t = f.clock.t.Add(time.Hour) // next epoch
	s, err := f.store.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Stale() {
		t.Error("a session sealed in the previous epoch must be reported stale")
	}
	s2, err := f.store.Load(f.roundTrip(t, s))
	if err != nil || s2.Stale() {
		t.Errorf("re-sealed session: stale=%v err=%v", s2 != nil && s2.Stale(), err)
	}
}

func TestOverBudget(t *testing.T) {
	f := newFixture(t)
	s := f.session()
	f.roundTrip(t, s)
	if len(f.over) != 0 {
		t.Fatalf("a small session was reported over budget: %v", f.over)
	}
	// Incompressible tokens of about 7 KB.
	var b strings.Builder
	for range 700 {
		b.WriteString(NewID()[:10])
	}
	s.AccessToken = b.String()
	f.roundTrip(t, s)
	if len(f.over) != 1 || f.over[0] <= 6000 {
		t.Errorf("over-budget callback: %v, want one call with > 6000", f.over)
	}
}

func TestLogValueHidesTokens(t *testing.T) {
	f := newFixture(t)
	s := f.session()
	v := s.LogValue().String()
	for _, secret := range []string{s.AccessToken, s.RefreshToken, s.IDToken, s.ID, s.Subject} {
		if strings.Contains(v, secret) {
			t.Errorf("LogValue leaks %q", secret[:min(10, len(secret))])
		}
	}
}

// TestCompress: auto compresses only a session whose stored cookie would
// take more than one chunk (and only when that is shorter); always and never
// do what they say; every choice opens.
func TestCompress(t *testing.T) {
	small := func(f *fixture) *Session { return f.session() } // ~2.5 KB stored: one chunk
	bigText := func(f *fixture) *Session {                    // compressible, two chunks stored
		s := f.session()
		s.AccessToken = "at-" + strings.Repeat("a", 4000)
		return s
	}
	bigRandom := func(f *fixture) *Session { // two chunks either way: DEFLATE cannot shorten it
		s := f.session()
		random := make([]byte, 3200) // a JWT's parts are stored decoded: random bytes
		rand.Read(random)
		s.AccessToken = "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(random) + ".c2ln"
		s.IDToken = ""
		return s
	}
	cookie := func(t *testing.T, mode Compression, persistent bool, mk func(*fixture) *Session) (bytes, chunks int) {
		f := newFixture(t)
		f.store.cfg.Compress = mode
		f.store.cfg.Persistent = persistent
		s := mk(f)
		r := f.roundTrip(t, s)
		f.store.cache = nil
		got, err := f.store.Load(r)
		if err != nil || got.AccessToken != s.AccessToken {
			t.Fatalf("mode %d: Load: %v", mode, err)
		}
		for _, c := range r.Cookies() {
			bytes += len(c.Value)
			chunks++
		}
		return bytes, chunks
	}
	for _, persistent := range []bool{false, true} {
		for _, tc := range []struct {
			name             string
			mk               func(*fixture) *Session
			autoCompresses   bool
			alwaysCompresses bool
		}{
			{"one chunk stored", small, false, true},
			{"two chunks stored, compressible", bigText, true, true},
			{"two chunks, incompressible", bigRandom, false, false},
		} {
			t.Run(fmt.Sprintf("%s/persistent=%v", tc.name, persistent), func(t *testing.T) {
				never, neverChunks := cookie(t, CompressNever, persistent, tc.mk)
				auto, autoChunks := cookie(t, CompressAuto, persistent, tc.mk)
				always, _ := cookie(t, CompressAlways, persistent, tc.mk)
				if (auto < never) != tc.autoCompresses {
					t.Errorf("auto: %d bytes in %d chunks, never: %d in %d; want compressed %v", auto, autoChunks, never, neverChunks, tc.autoCompresses)
				}
				if (always < never) != tc.alwaysCompresses {
					t.Errorf("always: %d bytes, never: %d; want compressed %v", always, never, tc.alwaysCompresses)
				}
				if tc.autoCompresses && autoChunks >= neverChunks {
					t.Errorf("auto compressed to %d chunks, stored takes %d", autoChunks, neverChunks)
				}
			})
		}
	}
}

// TestCompressBudget: a session of two chunks either way is stored as it is
// (inflating on every request is not worth bytes alone) unless its cookie is
// over the budget, where compressed is shorter.
func TestCompressBudget(t *testing.T) {
	mk := func(f *fixture) *Session {
		s := f.session()
		random := make([]byte, 3000)
		rand.Read(random)
		// Text tokens of random base64url: DEFLATE saves about a quarter.
		s.AccessToken = base64.RawURLEncoding.EncodeToString(random[:1500])
		s.IDToken = base64.RawURLEncoding.EncodeToString(random[1500:])
		return s
	}
	size := func(mode Compression, budget int) (bytes, chunks int) {
		f := newFixture(t)
		f.store.cfg.Compress, f.store.cfg.Budget = mode, budget
		r := f.roundTrip(t, mk(f))
		for _, c := range r.Cookies() {
			bytes += len(c.Value)
			chunks++
		}
		return bytes, chunks
	}
	never, neverChunks := size(CompressNever, 6000)
	always, alwaysChunks := size(CompressAlways, 6000)
	if neverChunks != 2 || alwaysChunks != 2 || always >= never {
		t.Fatalf("setup: stored %d bytes in %d chunks, compressed %d in %d; want 2 chunks each, compressed shorter",
			never, neverChunks, always, alwaysChunks)
	}
	if auto, _ := size(CompressAuto, 6000); auto != never {
		t.Errorf("under the budget: auto wrote %d bytes, stored is %d", auto, never)
	}
	if auto, _ := size(CompressAuto, never/2); auto >= never {
		t.Errorf("over a budget of %d: auto wrote %d bytes, stored is %d", never/2, auto, never)
	}
}

// TestCompressOverLimit: a session too large for the cookies (or for the
// sealer) stored is saved compressed by auto, and refused by never.
func TestCompressOverLimit(t *testing.T) {
	for _, size := range []int{20_000, 40_000} { // over 4 chunks; over crypto.DefaultMaxSealed
		for _, mode := range []Compression{CompressNever, CompressAuto} {
			f := newFixture(t)
			f.store.cfg.Compress = mode
			s := f.session()
			s.AccessToken = strings.Repeat("a", size)
			err := f.store.Save(http.Header{}, httptest.NewRequest("GET", "/", nil), s)
			if (err == nil) != (mode == CompressAuto) {
				t.Errorf("%d bytes, mode %d: Save: %v", size, mode, err)
			}
		}
	}
}
