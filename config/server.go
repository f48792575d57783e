package config

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
	"github.com/bff-project/bff/session"
)

// serverConfig validates what fc says of the server (all but the
// listeners, the logging and the admin API, which resolve checks first)
// and turns it into a server.Config. Every error names the field.
func (fc *fileConfig) serverConfig() (server.Config, error) {
	var sc server.Config
	if fc.PublicURL == "" {
		return sc, &configError{"public_url", "required (the origin the browser sees, e.g. https://app.example.com)"}
	}
	if u, err := url.Parse(fc.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return sc, &configError{"public_url", "must be an absolute http(s) origin"}
	} else if u.Scheme == "http" && !proxy.IsLoopback(u.Hostname()) {
		return sc, &configError{"public_url", "must be https (browsers refuse Secure cookies over http except on localhost)"}
	}
	if (fc.TLS.CertFile == "") != (fc.TLS.KeyFile == "") {
		return sc, &configError{"tls", "set both cert_file and key_file, or neither"}
	}
	sc.PublicURL = fc.PublicURL
	sc.Prefix = fc.AuthPrefix
	sc.StaticDir = fc.StaticDir
	sc.StaticCSP = fc.StaticCSP
	sc.LoginParams = fc.LoginParams
	sc.LoginErrorPath = fc.LoginErrorPath
	if fc.UpstreamIdleConns < 0 {
		return sc, &configError{"upstream_idle_conns_per_host", "must not be negative"}
	}
	sc.UpstreamIdleConns = fc.UpstreamIdleConns
	for _, p := range fc.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, err2 := netip.ParseAddr(p)
			if err2 != nil {
				return sc, &configError{"trusted_proxies", fmt.Sprintf("%q is not an IP address or CIDR prefix", p)}
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		sc.TrustedProxies = append(sc.TrustedProxies, pfx.Masked())
	}

	oc, err := fc.oidcConfig()
	if err != nil {
		return sc, err
	}
	sc.OIDC = oc

	s := fc.Session
	sc.CookieName = s.CookieName
	if s.CookieName != "" && !strings.HasPrefix(s.CookieName, "__Host-") {
		return sc, &configError{"session.cookie_name", "must start with __Host- (host-only, Secure, Path=/)"}
	}
	for _, d := range []struct {
		field string
		in    duration
		out   *time.Duration
	}{
		{"session.lifetime", s.Lifetime, &sc.Lifetime},
		{"session.refresh_margin", s.RefreshMargin, &sc.RefreshMargin},
		{"session.successor_grace", s.SuccessorGrace, &sc.SuccessorGrace},
		{"session.idle_timeout", s.IdleTimeout, &sc.IdleTimeout},
		{"keys.rotation", fc.Keys.Rotation, &sc.Rotation},
	} {
		v, err := d.in.parse(d.field)
		if err != nil {
			return sc, err
		}
		*d.out = v
	}
	lifetime := sc.Lifetime
	if lifetime == 0 {
		lifetime = server.DefaultLifetime
	}
	if sc.RefreshMargin >= lifetime {
		return sc, &configError{"session.refresh_margin", fmt.Sprintf("%s is not shorter than session.lifetime (%s): every request would refresh", sc.RefreshMargin, lifetime)}
	}
	if sc.IdleTimeout >= lifetime {
		return sc, &configError{"session.idle_timeout", fmt.Sprintf("%s is not shorter than session.lifetime (%s): it would never end a session", sc.IdleTimeout, lifetime)}
	}
	sc.SessionCache = s.CacheEntries
	sc.Persistent = s.Persistent
	switch s.Encoding {
	case "", "binary":
	case "json":
		sc.SessionJSON = true
	default:
		return sc, &configError{"session.encoding", fmt.Sprintf("%q: want binary or json", s.Encoding)}
	}
	switch s.Compress {
	case "", "auto":
		sc.SessionCompress = session.CompressAuto
	case "always":
		sc.SessionCompress = session.CompressAlways
	case "never":
		sc.SessionCompress = session.CompressNever
	default:
		return sc, &configError{"session.compress", fmt.Sprintf("%q: want auto, always or never", s.Compress)}
	}
	switch strings.ToLower(s.SameSite) {
	case "", "lax":
		sc.SameSite = http.SameSiteLaxMode
	case "strict":
		sc.SameSite = http.SameSiteStrictMode
	default:
		return sc, &configError{"session.same_site", "must be lax or strict"}
	}

	k := fc.Keys
	var secrets [][]byte
	for i, v := range k.Secrets {
		b, err := keys.ParseSecret(v)
		if err != nil {
			return sc, &configError{fmt.Sprintf("keys.secrets[%d]", i), strings.TrimPrefix(err.Error(), "keys: ")}
		}
		secrets = append(secrets, b)
	}
	if k.SecretsFile != "" {
		b, err := ReadNamedFile(k.SecretsFile)
		if err != nil {
			return sc, &configError{"keys.secrets_file", err.Error()}
		}
		more, err := keys.ParseSecrets(string(b))
		if err != nil {
			return sc, &configError{"keys.secrets_file", strings.TrimPrefix(err.Error(), "keys: ")}
		}
		secrets = append(secrets, more...)
	}
	if len(secrets) == 0 {
		return sc, &configError{"keys.secrets", "at least one master secret is required (bff keygen makes one; pass it as BFF_KEYS_SECRETS or keys.secrets_file)"}
	}
	sc.Secrets = secrets
	if err := fc.revocationConfig(&sc); err != nil {
		return sc, err
	}

	if cc, err := fc.clusterConfig(); err != nil {
		return sc, err
	} else if cc != nil {
		sc.Cluster = cc
		if sc.InternalURL, err = fc.internalURL(); err != nil {
			return sc, err
		}
	}
	routes, err := fc.routes()
	if err != nil {
		return sc, err
	}
	sc.Routes = routes
	return sc, nil
}
