package server

import (
	"fmt"
	"maps"
	"slices"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/keys"
)

// Reload applies a new configuration without a restart: the master secrets
// and the proxy routes. It is all or nothing: when anything is invalid, or a
// setting that needs a restart changed, it returns an error naming it and the
// server keeps its old configuration.
func (s *Server) Reload(cfg Config) error {
	if field := s.restartField(cfg); field != "" {
		return fmt.Errorf("server: reload: %s changed; that needs a restart", field)
	}
	// Validate the secrets before touching anything.
	if _, err := keys.New(keys.Config{Secrets: cfg.Secrets, Rotation: s.cfg.Rotation, Window: s.cfg.Lifetime}); err != nil {
		return fmt.Errorf("server: reload: %w", err)
	}
	if err := s.proxy.SetRoutes(cfg.Routes); err != nil {
		return fmt.Errorf("server: reload: %w", err)
	}
	if err := s.ring.Reload(cfg.Secrets); err != nil {
		// Unreachable after the check above; keep the routes consistent.
		return fmt.Errorf("server: reload: %w", err)
	}
	if n := cfg.OIDC.ClientKeys; n != nil && n != s.cfg.OIDC.ClientKeys {
		// The running client holds s.cfg's set: swap its keys in place.
		s.cfg.OIDC.ClientKeys.Replace(n)
		kid, _ := n.Signing()
		s.log.Info("client keys reloaded", "signing_kid", kid)
	}
	if n := cfg.OIDC.ClientCert; n != nil && n != s.cfg.OIDC.ClientCert {
		// New connections to the provider present the new certificate.
		s.cfg.OIDC.ClientCert.Replace(n)
		s.log.Info("client certificate reloaded", "subject", n.Leaf().Subject.String(), "not_after", n.Leaf().NotAfter)
	}
	if n := cfg.OIDC.DPoP; n != nil && n != s.cfg.OIDC.DPoP {
		// The client and the proxy hold s.cfg's set: swap its keys in place.
		s.cfg.OIDC.DPoP.Replace(n)
		s.log.Info("DPoP keys reloaded", "binding_jkt", n.Binding())
	}
	s.cfg.Routes, s.cfg.Secrets = cfg.Routes, cfg.Secrets
	s.log.Info("configuration reloaded", "master_secrets", len(cfg.Secrets), "routes", len(cfg.Routes))
	return nil
}

// restartField names the first setting in cfg that differs from the running
// one and cannot change while running, or "".
func (s *Server) restartField(cfg Config) string {
	o, n := s.cfg.OIDC, cfg.OIDC
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "/auth"
	}
	checks := []struct {
		field   string
		changed bool
	}{
		{"public_url", cfg.PublicURL != s.cfg.PublicURL},
		{"auth_prefix", prefix != s.cfg.Prefix},
		{"oidc.issuer", n.Issuer != o.Issuer},
		{"oidc.client_id", n.ClientID != o.ClientID},
		{"oidc.client_secret", n.ClientSecret != o.ClientSecret},
		{"oidc.auth_method", n.AuthMethod != o.AuthMethod},
		{"oidc.client_key_file", (n.ClientKeys == nil) != (o.ClientKeys == nil)},
		{"oidc.dpop_key_file", (n.DPoP == nil) != (o.DPoP == nil)},
		{"oidc.tls_client_cert_file", (n.ClientCert == nil) != (o.ClientCert == nil)},
		{"oidc.scopes", !slices.Equal(n.Scopes, o.Scopes)},
		{"oidc.auth_params", !maps.Equal(n.AuthParams, o.AuthParams)},
		{"oidc.post_logout_redirect_url", n.PostLogoutRedirectURL != o.PostLogoutRedirectURL},
		{"session.cookie_name", cfg.CookieName != "" && cfg.CookieName != s.cfg.CookieName},
		{"session.lifetime", cfg.Lifetime != 0 && cfg.Lifetime != s.cfg.Lifetime},
		{"session.same_site", cfg.SameSite != 0 && cfg.SameSite != s.cfg.SameSite},
		{"session.refresh_margin", cfg.RefreshMargin != s.cfg.RefreshMargin},
		{"session.successor_grace", cfg.SuccessorGrace != s.cfg.SuccessorGrace},
		{"keys.rotation", cfg.Rotation != s.cfg.Rotation},
		{"revocation.snapshot_file", cfg.SnapshotFile != s.cfg.SnapshotFile},
		{"trusted_proxies", !slices.Equal(cfg.TrustedProxies, s.cfg.TrustedProxies)},
		{"static_dir", cfg.StaticDir != s.cfg.StaticDir},
		{"static_csp", cfg.StaticCSP != s.cfg.StaticCSP},
		{"login_params", !slices.Equal(cfg.LoginParams, s.cfg.LoginParams)},
		{"login_error_path", cfg.LoginErrorPath != s.cfg.LoginErrorPath},
		{"session.idle_timeout", cfg.IdleTimeout != s.cfg.IdleTimeout},
		{"session.cache_entries", cfg.SessionCache != s.cfg.SessionCache},
		{"revocation.max_single_use", cfg.MaxSingleUse != s.cfg.MaxSingleUse},
		{"session.persistent", cfg.Persistent != s.cfg.Persistent},
		{"session.encoding", cfg.SessionJSON != s.cfg.SessionJSON},
		{"session.compress", cfg.SessionCompress != s.cfg.SessionCompress},
		{"oidc.userinfo", n.UserInfo != o.UserInfo},
		{"oidc.par", n.PAR != o.PAR},
		{"upstream_idle_conns_per_host", cfg.UpstreamIdleConns != s.cfg.UpstreamIdleConns},
		{"metrics_listen", cfg.PublicMetrics != s.cfg.PublicMetrics},
		{"cluster", !sameCluster(cfg.Cluster, s.cfg.Cluster)},
		{"cluster.internal_url", cfg.InternalURL != s.cfg.InternalURL},
	}
	for _, c := range checks {
		if c.changed {
			return c.field
		}
	}
	return ""
}

func sameCluster(a, b *cluster.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Bind == b.Bind && a.Advertise == b.Advertise && slices.Equal(a.Join, b.Join) &&
		string(a.Secret) == string(b.Secret) && a.Name == b.Name
}
