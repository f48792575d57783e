package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/session"
)

// reloadConfig is a configuration with every reloadable and every
// restart-only setting given a value, as the config file would: Prefix,
// CookieName, Lifetime and SameSite are left to their defaults, which
// is what a file that does not mention them gives on every reload.
func reloadConfig(t *testing.T) Config {
	t.Helper()
	api, err := url.Parse("http://127.0.0.1:9/")
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		PublicURL: "https://app.example.com",
		OIDC: oauth.Config{
			Issuer: "http://127.0.0.1:1", ClientID: "bff-test", ClientSecret: "client-secret",
			AuthMethod: "client_secret_basic", Scopes: []string{"openid", "profile"},
			AuthParams:            map[string]string{"prompt": "login"},
			PostLogoutRedirectURL: "https://app.example.com/bye",
		},
		Secrets:           [][]byte{[]byte("0123456789abcdef0123456789ABCDEF-reload-one")},
		Rotation:          time.Hour,
		RefreshMargin:     time.Minute,
		SuccessorGrace:    5 * time.Second,
		Routes:            []proxy.Route{{Path: "/api/", Upstream: api}},
		UpstreamIdleConns: 7,
		TrustedProxies:    []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		SnapshotFile:      "",
		StaticCSP:         "default-src 'self'",
		LoginParams:       []string{"login_hint"},
		LoginErrorPath:    "/oops",
		IdleTimeout:       time.Hour,
		Persistent:        true,
		InternalURL:       "",
		Logger:            slog.New(slog.DiscardHandler),
	}
}

func newReloadServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(reloadConfig(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reloaded is the configuration a reload that succeeds would install: new
// master secrets and one more route.
func reloaded(t *testing.T) Config {
	t.Helper()
	cfg := reloadConfig(t)
	cfg.Secrets = [][]byte{[]byte("fedcba9876543210fedcba9876543210-reload-two"), cfg.Secrets[0]}
	api2, _ := url.Parse("http://127.0.0.1:10/")
	cfg.Routes = append(cfg.Routes, proxy.Route{Path: "/api2/", Upstream: api2, StripPrefix: true})
	return cfg
}

// routePaths lists the routes' paths, sorted (the proxy keeps its routes
// longest prefix first).
func routePaths(rs []proxy.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Path)
	}
	slices.Sort(out)
	return out
}

// TestReloadApplies is the positive control of TestReloadRefused: the same
// file with new secrets and routes reloads, defaults left implicit or spelt
// out, and the new secrets seal and the new routes serve.
func TestReloadApplies(t *testing.T) {
	tests := []struct {
		name string
		edit func(cfg *Config, running Config)
	}{
		{"defaults left implicit", func(*Config, Config) {}},
		{"defaults spelt out", func(cfg *Config, running Config) {
			cfg.Prefix, cfg.CookieName = running.Prefix, running.CookieName
			cfg.Lifetime, cfg.SameSite = running.Lifetime, running.SameSite
		}},
		{"equal slices and maps, not the same ones", func(cfg *Config, _ Config) {
			cfg.OIDC.Scopes = slices.Clone(cfg.OIDC.Scopes)
			cfg.OIDC.AuthParams = map[string]string{"prompt": "login"}
			cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
			cfg.LoginParams = []string{"login_hint"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newReloadServer(t)
			before := s.ring.Sealing()
			cfg := reloaded(t)
			tt.edit(&cfg, s.cfg)
			if err := s.Reload(cfg); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if after := s.ring.Sealing(); bytes.Equal(after.Secret, before.Secret) || after.ID == before.ID {
				t.Errorf("sealing key %s after the reload, %s before: the new first secret does not seal", after.ID, before.ID)
			}
			if _, err := s.ring.Lookup(before.ID); err != nil {
				t.Errorf("the old secret, still listed, no longer opens: %v", err)
			}
			want := []string{"/api/", "/api2/"}
			if got := routePaths(s.proxy.Routes()); !slices.Equal(got, want) {
				t.Errorf("proxy routes %v, want %v", got, want)
			}
			if got := routePaths(s.cfg.Routes); !slices.Equal(got, want) {
				t.Errorf("recorded routes %v, want %v", got, want)
			}
			if len(s.cfg.Secrets) != 2 {
				t.Errorf("recorded %d secrets, want 2", len(s.cfg.Secrets))
			}
		})
	}
}

// TestReloadRefused: a reload that changes a setting which needs a restart,
// or carries an invalid secret or route, is refused with an error naming
// it, and the server keeps its old secrets and routes: all or nothing.
func TestReloadRefused(t *testing.T) {
	other := &cluster.Config{Bind: "127.0.0.1:7946"}
	tests := []struct {
		want string // in the error
		edit func(cfg *Config)
	}{
		{"public_url changed", func(c *Config) { c.PublicURL = "https://other.example.com" }},
		{"auth_prefix changed", func(c *Config) { c.Prefix = "/bff" }},
		{"oidc.issuer changed", func(c *Config) { c.OIDC.Issuer = "http://127.0.0.1:2" }},
		{"oidc.client_id changed", func(c *Config) { c.OIDC.ClientID = "other" }},
		{"oidc.client_secret changed", func(c *Config) { c.OIDC.ClientSecret = "other-secret" }},
		{"oidc.auth_method changed", func(c *Config) { c.OIDC.AuthMethod = "client_secret_post" }},
		{"oidc.scopes changed", func(c *Config) { c.OIDC.Scopes = []string{"openid"} }},
		{"oidc.auth_params changed", func(c *Config) { c.OIDC.AuthParams = map[string]string{"prompt": "consent"} }},
		{"oidc.post_logout_redirect_url changed", func(c *Config) { c.OIDC.PostLogoutRedirectURL = "https://app.example.com/" }},
		{"session.cookie_name changed", func(c *Config) { c.CookieName = "__Host-Http-other" }},
		{"session.lifetime changed", func(c *Config) { c.Lifetime = 2 * time.Hour }},
		{"session.same_site changed", func(c *Config) { c.SameSite = http.SameSiteStrictMode }},
		{"session.refresh_margin changed", func(c *Config) { c.RefreshMargin = 2 * time.Minute }},
		{"session.successor_grace changed", func(c *Config) { c.SuccessorGrace = time.Second }},
		{"keys.rotation changed", func(c *Config) { c.Rotation = 2 * time.Hour }},
		{"revocation.snapshot_file changed", func(c *Config) { c.SnapshotFile = "/tmp/bff-revocations" }},
		{"trusted_proxies changed", func(c *Config) { c.TrustedProxies = nil }},
		{"static_dir changed", func(c *Config) { c.StaticDir = "/srv/app" }},
		{"static_csp changed", func(c *Config) { c.StaticCSP = "default-src 'none'" }},
		{"login_params changed", func(c *Config) { c.LoginParams = []string{"ui_locales"} }},
		{"login_error_path changed", func(c *Config) { c.LoginErrorPath = "/" }},
		{"session.idle_timeout changed", func(c *Config) { c.IdleTimeout = 0 }},
		{"session.cache_entries changed", func(c *Config) { c.SessionCache = 64 }},
		{"revocation.max_single_use changed", func(c *Config) { c.MaxSingleUse = 1000 }},
		{"session.persistent changed", func(c *Config) { c.Persistent = false }},
		{"session.encoding changed", func(c *Config) { c.SessionJSON = true }},
		{"session.compress changed", func(c *Config) { c.SessionCompress = session.CompressAlways }},
		{"oidc.userinfo changed", func(c *Config) { c.OIDC.UserInfo = !c.OIDC.UserInfo }},
		{"oidc.par changed", func(c *Config) { c.OIDC.PAR = "off" }},
		{"upstream_idle_conns_per_host changed", func(c *Config) { c.UpstreamIdleConns = 8 }},
		{"metrics_listen changed", func(c *Config) { c.PublicMetrics = true }},
		{"cluster changed", func(c *Config) { c.Cluster = other }},
		{"cluster.internal_url changed", func(c *Config) { c.InternalURL = "http://127.0.0.1:9100" }},
		{"master secret", func(c *Config) { c.Secrets = [][]byte{[]byte("short")} }},
		{"master secret", func(c *Config) { c.Secrets = nil }},
		{"route", func(c *Config) { c.Routes[1].Path = "api2/" }},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			s := newReloadServer(t)
			before := s.ring.Sealing()
			cfg := reloaded(t) // valid new secrets and routes...
			tt.edit(&cfg)      // ...and one thing that refuses them
			err := s.Reload(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload: %v, want an error naming %q", err, tt.want)
			}
			if after := s.ring.Sealing(); after.ID != before.ID || !bytes.Equal(after.Secret, before.Secret) {
				t.Errorf("the refused reload changed the sealing key (%s -> %s)", before.ID, after.ID)
			}
			if got := routePaths(s.proxy.Routes()); !slices.Equal(got, []string{"/api/"}) {
				t.Errorf("the refused reload changed the proxy routes to %v", got)
			}
			if len(s.cfg.Secrets) != 1 || len(s.cfg.Routes) != 1 {
				t.Errorf("the refused reload was recorded: %d secrets, %d routes", len(s.cfg.Secrets), len(s.cfg.Routes))
			}
		})
	}
}

func TestSameCluster(t *testing.T) {
	base := func() *cluster.Config {
		return &cluster.Config{
			Bind: "127.0.0.1:7946", Advertise: "10.0.0.1:7946", Join: []string{"10.0.0.2:7946"},
			Secret: []byte("0123456789abcdef0123456789abcdef"), Name: "bff-1",
		}
	}
	tests := []struct {
		name string
		a, b *cluster.Config
		want bool
	}{
		{"both off", nil, nil, true},
		{"turned on", nil, base(), false},
		{"turned off", base(), nil, false},
		{"equal, other slices", base(), base(), true},
		{"bind", base(), func() *cluster.Config { c := base(); c.Bind = "127.0.0.1:7947"; return c }(), false},
		{"advertise", base(), func() *cluster.Config { c := base(); c.Advertise = "10.0.0.9:7946"; return c }(), false},
		{"join", base(), func() *cluster.Config { c := base(); c.Join = append(c.Join, "10.0.0.3:7946"); return c }(), false},
		{"secret", base(), func() *cluster.Config { c := base(); c.Secret = []byte("fedcba9876543210fedcba9876543210"); return c }(), false},
		{"name", base(), func() *cluster.Config { c := base(); c.Name = "bff-2"; return c }(), false},
		{"callbacks and timeouts do not count", base(), func() *cluster.Config {
			c := base()
			c.JoinTimeout, c.PushPullInterval = time.Minute, time.Minute
			return c
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameCluster(tt.a, tt.b); got != tt.want {
				t.Errorf("sameCluster = %v, want %v", got, tt.want)
			}
		})
	}
}
