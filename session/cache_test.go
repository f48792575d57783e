package session

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The open cache must never serve what a full open would refuse.
func TestCacheNeverServesWhatOpenRefuses(t *testing.T) {
	tests := []struct {
		name string
		// after a first successful Load of r (which fills the cache)
		change func(f *fixture, s *Session, r *http.Request) *http.Request
		want   error
	}{
		{"revoked", func(f *fixture, s *Session, r *http.Request) *http.Request {
			f.revoked[s.ID] = true
			return r
		}, ErrRevoked},
		{"session expired", func(f *fixture, s *Session, r *http.Request) *http.Request {
			f.clock.t = f.clock.t.Add(8*time.Hour + time.Second)
			return r
		}, ErrExpired},
		{"tampered chunk", func(f *fixture, s *Session, r *http.Request) *http.Request {
			c, _ := r.Cookie("__Host-Http-bff.0")
			b := []byte(c.Value)
			b[len(b)-5] ^= 1
			out := httptest.NewRequest("GET", "/", nil)
			out.AddCookie(&http.Cookie{Name: c.Name, Value: string(b)})
			return out
		}, ErrInvalid},
		{"sealing secret removed", func(f *fixture, s *Session, r *http.Request) *http.Request {
			if err := f.ring.Reload([][]byte{bytes.Repeat([]byte{9}, 32)}); err != nil {
				t.Fatal(err)
			}
			return r
		}, ErrInvalid},
		{"cleared at logout, then tampered copy", func(f *fixture, s *Session, r *http.Request) *http.Request {
			f.store.Clear(http.Header{}, r)
			return r // the same bytes still open (not revoked here), but via a full open
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.session()
			r := f.roundTrip(t, s)
			if _, err := f.store.Load(r); err != nil {
				t.Fatal(err)
			}
			if f.store.CacheLen() == 0 {
				t.Fatal("the first load did not fill the cache")
			}
			_, err := f.store.Load(tt.change(f, s, r))
			if !errors.Is(err, tt.want) {
				t.Errorf("Load after %s: err = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestCacheEntryEndsAtAccessExpiry(t *testing.T) {
	f := newFixture(t)
	s := f.session() // access token lives 5 minutes
	r := f.roundTrip(t, s)
	f.store.Load(r)
	key := cacheKey(mustRead(t, f, r))
	if f.store.cache.get(key, f.clock.t.Unix()) == nil {
		t.Fatal("not cached")
	}
	if f.store.cache.get(key, f.clock.t.Add(5*time.Minute).Unix()) != nil {
		t.Error("cache entry outlives the access token")
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t)
	f.store.cache = newOpenCache(8)
	for range 50 {
		f.roundTrip(t, f.session())
	}
	if n := f.store.CacheLen(); n > 8 {
		t.Errorf("cache holds %d entries, bound is 8", n)
	}
}

func mustRead(t *testing.T, f *fixture, r *http.Request) string {
	t.Helper()
	v, err := f.store.cfg.Chunker.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func BenchmarkLoad(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "cold"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			if !cached {
				f.store.cache = nil
			}
			r := f.roundTrip(b, f.session())
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := f.store.Load(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A cached session hands out one prebuilt Authorization value; a copy whose
// access token changed (a refresh) gets its own, never the old token.
func TestBearerHeader(t *testing.T) {
	f := newFixture(t)
	s := f.session()
	r := f.roundTrip(t, s)
	a, err := f.store.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.store.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "Bearer " + s.AccessToken
	ha, hb := a.BearerHeader(), b.BearerHeader()
	if len(ha) != 1 || ha[0] != want || len(hb) != 1 || hb[0] != want {
		t.Fatalf("BearerHeader = %.20q, %.20q; want %.20q", ha, hb, want)
	}
	if &ha[0] != &hb[0] {
		t.Error("two loads of a cached session built the bearer twice")
	}
	c := *b
	c.AccessToken = "at-refreshed"
	if got := c.BearerHeader(); len(got) != 1 || got[0] != "Bearer at-refreshed" {
		t.Errorf("after the token changed: %q, want the new token", got)
	}
	if got := (&Session{AccessToken: "x"}).BearerHeader(); len(got) != 1 || got[0] != "Bearer x" {
		t.Errorf("uncached session: %q", got)
	}
}

// The cache key hashes the exact bytes without copying them.
func TestCacheKeyNoCopy(t *testing.T) {
	v := strings.Repeat("eyJhbGciOiJkaXIi.", 200)
	if cacheKey(v) != sha256.Sum256([]byte(v)) {
		t.Fatal("cacheKey differs from SHA-256 of the value")
	}
	if n := testing.AllocsPerRun(100, func() { _ = cacheKey(v) }); n != 0 {
		t.Errorf("cacheKey allocates %v times", n)
	}
}

// TestLookups: every Load of a cookie counts as a cache hit or an open.
func TestLookups(t *testing.T) {
	f := newFixture(t)
	r := f.roundTrip(t, f.session()) // Save caches it
	for range 3 {
		if _, err := f.store.Load(r); err != nil {
			t.Fatal(err)
		}
	}
	if hits, opens := f.store.Lookups(); hits != 3 || opens != 0 {
		t.Errorf("hits %d opens %d after three cached loads, want 3 0", hits, opens)
	}
	f.store.cache = nil
	f.store.Load(r)
	if hits, opens := f.store.Lookups(); hits != 3 || opens != 1 {
		t.Errorf("hits %d opens %d after an uncached load, want 3 1", hits, opens)
	}
}

// TestCacheMemory: what one cached session costs (the README's cost table):
// provider-shaped tokens (an RS256 access token, an ID token), each session
// distinct. `go test -run TestCacheMemory -v ./session/`
func TestCacheMemory(t *testing.T) {
	const n = 2000
	f := newFixture(t)
	f.store.cache = newOpenCache(n)
	reqs := make([]*http.Request, n)
	for i := range reqs {
		s := f.session()
		s.AccessToken = realJWT(fmt.Sprintf(`{"iss":"https://idp.example.com/realms/acme","sub":"user-%07d","aud":["https://api.example.com","account"],"exp":1764503600,"iat":1764500000,"jti":%q,"scope":"openid profile email offline_access","azp":"bff","sid":%q,"email":"user-%07d@example.com","client_id":"bff"}`, i, NewID(), NewID(), i))
		s.IDToken = realJWT(fmt.Sprintf(`{"iss":"https://idp.example.com/realms/acme","sub":"user-%07d","aud":"bff","exp":1764503600,"iat":1764500000,"sid":%q,"name":"User %d"}`, i, NewID(), i))
		s.RefreshToken = NewID() + NewID()
		s.Scope = "openid profile email offline_access"
		reqs[i] = f.roundTrip(t, s)
	}
	f.store.cache = newOpenCache(n) // Save cached them: start empty
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, r := range reqs {
		if _, err := f.store.Load(r); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := f.store.CacheLen(); got != n {
		t.Fatalf("cache holds %d sessions, want %d", got, n)
	}
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d cached sessions: %d bytes of heap each (default cache_entries 4096: %.1f MB)", n, per, float64(per*4096)/(1<<20))
	if per > 8<<10 {
		t.Errorf("a cached session takes %d bytes, budget 8 KB", per)
	}
	runtime.KeepAlive(reqs)
}
