package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// withConfig rebuilds f.store with its config changed by change (a new,
// empty cache).
func (f *fixture) withConfig(t testing.TB, change func(*Config)) *fixture {
	t.Helper()
	cfg := f.store.cfg
	change(&cfg)
	var err error
	if f.store, err = NewStore(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) advance(d time.Duration) { f.clock.t = f.clock.t.Add(d) }

// resealed returns a request carrying the cookies of h, or r when h sets
// none (the browser keeps what it has).
func resealed(h http.Header, r *http.Request) *http.Request {
	var set []*http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.MaxAge >= 0 {
			set = append(set, c)
		}
	}
	if len(set) == 0 {
		return r
	}
	out := httptest.NewRequest("GET", "/", nil)
	for _, c := range set {
		out.AddCookie(c)
	}
	return out
}

func TestIdleTimeout(t *testing.T) {
	const idle = 30 * time.Minute // slides every 3 minutes
	tests := []struct {
		name      string
		noLastSee bool          // sealed while no idle timeout applied
		after     time.Duration // since the last seal
		want      error
		stale     bool
	}{
		{"just sealed", false, 0, nil, false},
		{"within the slide interval", false, 3 * time.Minute, nil, false},
		{"due to slide", false, 3*time.Minute + time.Second, nil, true},
		{"last second", false, idle - time.Second, nil, true},
		{"idle", false, idle, ErrIdle, false},
		{"long idle", false, 7 * time.Hour, ErrIdle, false},
		{"sealed without last-seen: counts from sign-in", true, idle, ErrIdle, false},
		{"sealed without last-seen: used since sign-in", true, idle - time.Second, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.session()
			if !tt.noLastSee {
				f.withConfig(t, func(c *Config) { c.IdleTimeout = idle })
			}
			r := f.roundTrip(t, s)
			if tt.noLastSee {
				if s.LastSeen != 0 {
					t.Fatalf("LastSeen %d written without an idle timeout", s.LastSeen)
				}
				f.withConfig(t, func(c *Config) { c.IdleTimeout = idle })
			} else if s.LastSeen != f.clock.t.Unix() {
				t.Fatalf("LastSeen %d, want the time of Save %d", s.LastSeen, f.clock.t.Unix())
			}
			f.advance(tt.after)
			got, err := f.store.Load(r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load after %s: err = %v, want %v", tt.after, err, tt.want)
			}
			if err != nil {
				if !errors.Is(err, ErrExpired) {
					t.Errorf("%v is not ErrExpired: the server would not clear the cookies", err)
				}
				return
			}
			if got.Stale() != tt.stale {
				t.Errorf("Stale() = %v, want %v", got.Stale(), tt.stale)
			}
		})
	}
}

func TestNewStoreIdleTimeout(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, time.Millisecond, 999 * time.Millisecond} {
		f := newFixture(t)
		cfg := f.store.cfg
		cfg.IdleTimeout = d
		if _, err := NewStore(cfg); err == nil {
			t.Errorf("NewStore accepted idle timeout %s", d)
		}
	}
	f := newFixture(t)
	f.withConfig(t, func(c *Config) { c.IdleTimeout = time.Second }) // the positive control
	if f.store.slideEvery != time.Second {
		t.Errorf("slide interval %s, want 1s (LastSeen is in seconds)", f.store.slideEvery)
	}
	f.withConfig(t, func(c *Config) { c.IdleTimeout = 8 * time.Hour })
	if f.store.slideEvery != 5*time.Minute {
		t.Errorf("slide interval %s, want the 5 minute cap", f.store.slideEvery)
	}
}

// A session used every idle/2 by a caller that re-seals what Load returns
// Stale (the proxy, GET /auth/user) lives past the idle timeout; once it is
// left alone, it ends after the idle timeout.
func TestActiveSessionSlides(t *testing.T) {
	const idle = 10 * time.Minute
	f := newFixture(t).withConfig(t, func(c *Config) { c.IdleTimeout = idle })
	s := f.session()
	start := f.clock.t
	r := f.roundTrip(t, s)
	for f.clock.t.Sub(start) < 3*idle {
		f.advance(idle / 2)
		got, err := f.store.Load(r)
		if err != nil {
			t.Fatalf("used every %s, refused %s after sign-in: %v", idle/2, f.clock.t.Sub(start), err)
		}
		h := http.Header{}
		if got.Stale() {
			if err := f.store.Save(h, r, got); err != nil {
				t.Fatal(err)
			}
		}
		r = resealed(h, r)
	}
	f.advance(idle - time.Second)
	if _, err := f.store.Load(r); err != nil {
		t.Fatalf("within the idle timeout of the last use: %v", err)
	}
	f.advance(time.Second)
	if _, err := f.store.Load(r); !errors.Is(err, ErrIdle) {
		t.Fatalf("left alone for the idle timeout: err = %v, want ErrIdle", err)
	}
}

// Many requests re-seal a session once per slide interval, not per request.
func TestSlideAtMostOncePerInterval(t *testing.T) {
	const idle = 10 * time.Minute // slides every minute
	f := newFixture(t).withConfig(t, func(c *Config) { c.IdleTimeout = idle })
	s := f.session()
	start := f.clock.t
	r := f.roundTrip(t, s)
	var reseals []time.Duration
	for range 85 { // a request every 7 s for 595 s
		f.advance(7 * time.Second)
		got, err := f.store.Load(r)
		if err != nil {
			t.Fatalf("refused %s after sign-in: %v", f.clock.t.Sub(start), err)
		}
		h := http.Header{}
		if got.Stale() {
			if err := f.store.Save(h, r, got); err != nil {
				t.Fatal(err)
			}
			reseals = append(reseals, f.clock.t.Sub(start))
		}
		r = resealed(h, r)
	}
	// The first request more than a minute after the last seal: 63 s, 126 s, ...
	if len(reseals) != 9 {
		t.Fatalf("%d re-seals in 85 requests over 595 s, want 9 (one per interval): %v", len(reseals), reseals)
	}
	for i, at := range reseals {
		if want := time.Duration(i+1) * 63 * time.Second; at != want {
			t.Errorf("re-seal %d at %s, want %s", i, at, want)
		}
	}
}

// The open cache keeps the sealed LastSeen: hits within the idle timeout do
// not make the cookie look used, and a hit after it is refused.
func TestCacheHitEnforcesIdle(t *testing.T) {
	const idle = 2 * time.Minute // the access token (and cache entry) lives 5
	f := newFixture(t).withConfig(t, func(c *Config) { c.IdleTimeout = idle })
	s := f.session()
	r := f.roundTrip(t, s)
	key := cacheKey(mustRead(t, f, r))
	hit := func() {
		t.Helper()
		if f.store.cache.get(key, f.clock.t.Unix()) == nil {
			t.Fatalf("%s: not a cache hit", f.clock.t.Format(time.TimeOnly))
		}
	}
	for range 3 {
		f.advance(30 * time.Second)
		hit()
		if _, err := f.store.Load(r); err != nil { // not re-sealed: the cookie stays
			t.Fatalf("hit within the idle timeout: %v", err)
		}
	}
	f.advance(idle - 90*time.Second)
	hit()
	if _, err := f.store.Load(r); !errors.Is(err, ErrIdle) {
		t.Fatalf("hit %s after the seal: err = %v, want ErrIdle", idle, err)
	}
}

// Persistent cookies carry Max-Age = the seconds left until the absolute
// expiry, the same end at every re-seal; browser-session cookies carry none.
func TestPersistentCookies(t *testing.T) {
	maxAges := func(t *testing.T, h http.Header) []int {
		t.Helper()
		var out []int
		for _, line := range h.Values("Set-Cookie") {
			ck, err := http.ParseSetCookie(line)
			if err != nil {
				t.Fatal(err)
			}
			if ck.MaxAge == 0 && strings.Contains(line, "Max-Age") {
				t.Fatalf("Max-Age attribute that parses to none: %q", line)
			}
			out = append(out, ck.MaxAge)
		}
		if len(out) < 2 {
			t.Fatalf("%d chunks, want a session of several", len(out))
		}
		return out
	}
	save := func(t *testing.T, f *fixture, s *Session) http.Header {
		t.Helper()
		h := http.Header{}
		if err := f.store.Save(h, httptest.NewRequest("GET", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		return h
	}
	t.Run("persistent", func(t *testing.T) {
		f := newFixture(t).withConfig(t, func(c *Config) { c.Persistent = true })
		s := bigSession(f) // expires in 8 h
		for _, tc := range []struct {
			after time.Duration
			want  int
		}{{0, 8 * 3600}, {time.Hour, 7 * 3600}, {8*time.Hour - time.Second, 1}, {time.Hour, 1}} {
			f.advance(tc.after)
			for i, got := range maxAges(t, save(t, f, s)) {
				if got != tc.want {
					t.Errorf("%s: chunk %d Max-Age %d, want %d", f.clock.t.Format(time.TimeOnly), i, got, tc.want)
				}
			}
		}
	})
	t.Run("browser session", func(t *testing.T) {
		f := newFixture(t)
		h := save(t, f, bigSession(f))
		for i, got := range maxAges(t, h) {
			if got != 0 || strings.Contains(h.Values("Set-Cookie")[i], "Max-Age") {
				t.Errorf("chunk %d: %q, want no Max-Age", i, h.Values("Set-Cookie")[i])
			}
		}
	})
}

// bigSession is a session with an incompressible access token of about 5 KB,
// so that its cookie takes several chunks.
func bigSession(f *fixture) *Session {
	s := f.session()
	var b strings.Builder
	for range 250 {
		b.WriteString(NewID()[:20])
	}
	s.AccessToken = b.String()
	return s
}
