package session

import (
	"bytes"
	"errors"
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
