package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// minimalConfig is enough for server.New, which never contacts the provider.
func minimalConfig(public string, logs *syncBuffer) server.Config {
	return server.Config{
		PublicURL: public,
		OIDC:      oauthConfig("https://idp.example.com", public),
		Secrets:   [][]byte{testMaster},
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
	}
}

const sharedCookieWarning = "cookies ignore ports: another app on this host with the same session.cookie_name shares and overwrites these cookies; set session.cookie_name per app"

// Two BFFs on one loopback host share cookies whatever their ports: New warns
// once when the default cookie name is kept there, and only there.
func TestSharedCookieWarning(t *testing.T) {
	tests := []struct {
		name       string
		public     string
		cookieName string
		warn       bool
	}{
		{"localhost", "http://localhost:8080", "", true},
		{"localhost in capitals", "http://LOCALHOST:8080", "", true},
		{"default name set explicitly", "http://localhost:8081", sessionCookie, true},
		{"127.0.0.1", "http://127.0.0.1:8080", "", true},
		{"another loopback address", "https://127.0.0.2", "", true},
		{"IPv6 loopback", "http://[::1]:8080", "", true},
		{"public host", "https://app.example.com", "", false},
		{"private address", "http://10.0.0.5:8080", "", false},
		{"localhost with its own name", "http://localhost:8080", "__Host-Http-app1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			cfg := minimalConfig(tt.public, logs)
			cfg.CookieName = tt.cookieName
			if _, err := server.New(cfg); err != nil {
				t.Fatal(err)
			}
			got := strings.Count(logs.String(), sharedCookieWarning)
			if tt.warn && got != 1 {
				t.Fatalf("%d warnings, want 1; logs:\n%s", got, logs)
			}
			if !tt.warn && got != 0 {
				t.Fatalf("warned for %s: %s", tt.public, logs)
			}
			if tt.warn && !strings.Contains(logs.String(), `"level":"WARN"`) {
				t.Errorf("not logged as a warning: %s", logs)
			}
		})
	}
}

func TestIdleTimeoutValidated(t *testing.T) {
	for _, tt := range []struct {
		idle time.Duration
		ok   bool
	}{
		{0, true},
		{5 * time.Second, true},
		{time.Hour, true},
		{5*time.Second - time.Millisecond, false},
		{time.Second, false},
		{-time.Minute, false},
	} {
		t.Run(tt.idle.String(), func(t *testing.T) {
			cfg := minimalConfig("https://app.example.com", &syncBuffer{})
			cfg.IdleTimeout = tt.idle
			_, err := server.New(cfg)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "session.idle_timeout")) {
				t.Fatalf("err = %v, want one naming session.idle_timeout", err)
			}
		})
	}
}

// sessionMaxAges returns the Max-Age of every session chunk a response sets,
// and whether any carries an Expires.
func sessionMaxAges(t *testing.T, r *result) ([]int, bool) {
	t.Helper()
	var ages []int
	expires := false
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.Name, sessionCookie+".") || c.MaxAge < 0 {
			continue
		}
		if c.MaxAge == 0 && strings.Contains(line, "Max-Age") {
			t.Fatalf("a Max-Age that parses to none: %q", line)
		}
		ages = append(ages, c.MaxAge)
		expires = expires || !c.Expires.IsZero()
	}
	if len(ages) == 0 {
		t.Fatalf("%s %s sets no session chunk", r.Request.Method, r.Request.URL.Path)
	}
	return ages, expires
}

// session.persistent: every chunk expires with the session (Max-Age = the
// seconds left, the same end at a re-seal); by default the cookies are
// browser-session ones. The login cookie keeps its 10 minutes either way.
func TestPersistentCookies(t *testing.T) {
	const lifetime = time.Hour
	for _, persistent := range []bool{true, false} {
		name := "browser session"
		if persistent {
			name = "persistent"
		}
		t.Run(name, func(t *testing.T) {
			e, clock := newIdleEnv(t, 30*time.Minute, func(c *server.Config) {
				c.Lifetime = lifetime
				c.Persistent = persistent
			})
			b := e.browser()
			f, cb := b.signIn("/")
			if lc := f.login.Cookies(); len(lc) != 1 || lc[0].MaxAge != 600 {
				t.Errorf("login cookie %v, want Max-Age 600", lc)
			}
			clock.advance(20 * time.Minute) // a re-seal: the session slides
			api := b.do(http.MethodGet, "/api/whoami", e.apiHeaders())
			if api.StatusCode != http.StatusOK {
				t.Fatalf("api: %d", api.StatusCode)
			}
			for _, tc := range []struct {
				r    *result
				want int // seconds left
			}{{cb, 3600}, {api, 2400}} {
				ages, expires := sessionMaxAges(t, tc.r)
				if expires {
					t.Errorf("%s: a session chunk carries Expires", tc.r.Request.URL.Path)
				}
				want := 0
				if persistent {
					want = tc.want
				}
				for i, got := range ages {
					if got != want {
						t.Errorf("%s: chunk %d Max-Age %d, want %d", tc.r.Request.URL.Path, i, got, want)
					}
				}
			}
		})
	}
}
