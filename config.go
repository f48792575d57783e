package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
	"github.com/bff-project/bff/session"
)

// fileConfig is the YAML file (see README "Configuration"). Every scalar and
// list-of-strings field can be set from the environment as BFF_ + its upper-
// snake path (oidc.client_secret -> BFF_OIDC_CLIENT_SECRET); lists are comma
// separated. Routes are set in the file only.
type fileConfig struct {
	Listen     string `yaml:"listen"`
	PublicURL  string `yaml:"public_url"`
	AuthPrefix string `yaml:"auth_prefix"`
	StaticDir  string `yaml:"static_dir"`
	// StaticCSP is the Content-Security-Policy of the app's files: "" the
	// safe default, "off" none (set by the balancer or CDN), else as given.
	StaticCSP string `yaml:"static_csp"`
	// LoginParams are the parameters /auth/login passes on to the provider
	// (allow-list); default prompt, max_age, login_hint, acr_values.
	LoginParams []string `yaml:"login_params"`
	// LoginErrorPath is the same-origin path a failed or cancelled sign-in
	// lands on (with ?login_error=CODE); default: the flow's returnTo.
	LoginErrorPath string `yaml:"login_error_path"`
	MetricsListen  string `yaml:"metrics_listen"`
	// Admin is the incident-response API (server.AdminHandler), on a
	// listener of its own; off unless both listen and a token are set.
	Admin struct {
		Listen    string `yaml:"listen"`
		Token     string `yaml:"token"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"admin"`
	// UpstreamIdleConns is how many idle keep-alive connections the proxy
	// keeps per upstream host; zero means 128.
	UpstreamIdleConns int `yaml:"upstream_idle_conns_per_host"`
	TLS               struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	OIDC           struct {
		Issuer           string `yaml:"issuer"`
		ClientID         string `yaml:"client_id"`
		ClientSecret     string `yaml:"client_secret"`
		ClientSecretFile string `yaml:"client_secret_file"`
		AuthMethod       string `yaml:"auth_method"`
		// ClientKeyFile is a JWK set of private keys for auth_method
		// private_key_jwt: the first signs, all are served at
		// <auth_prefix>/jwks.json. Re-read on SIGHUP.
		ClientKeyFile string `yaml:"client_key_file"`
		// DPoPKeyFile is a JWK set of private keys that bind the access
		// tokens (RFC 9449): the first binds new ones, the others still
		// prove for tokens bound to them. Re-read on SIGHUP.
		DPoPKeyFile string `yaml:"dpop_key_file"`
		// TLSClientCertFile and TLSClientKeyFile are the PEM certificate
		// and key of auth_method tls_client_auth or
		// self_signed_tls_client_auth (RFC 8705). Re-read on SIGHUP.
		TLSClientCertFile     string            `yaml:"tls_client_cert_file"`
		TLSClientKeyFile      string            `yaml:"tls_client_key_file"`
		Scopes                []string          `yaml:"scopes"`
		AuthParams            map[string]string `yaml:"auth_params"`
		PostLogoutRedirectURL string            `yaml:"post_logout_redirect_url"`
		// UserInfo fetches the userinfo claims once at the callback into
		// the session (same sub required).
		UserInfo bool `yaml:"userinfo"`
		// PAR is auto (default: push when the provider offers it), required
		// or off: pushed authorization requests (RFC 9126).
		PAR string `yaml:"par"`
	} `yaml:"oidc"`
	Session struct {
		CookieName     string   `yaml:"cookie_name"`
		Lifetime       duration `yaml:"lifetime"`
		SameSite       string   `yaml:"same_site"`
		RefreshMargin  duration `yaml:"refresh_margin"`
		SuccessorGrace duration `yaml:"successor_grace"`
		CacheEntries   int      `yaml:"cache_entries"`
		// IdleTimeout ends a session unused this long (sliding); zero: none.
		IdleTimeout duration `yaml:"idle_timeout"`
		// Persistent cookies expire with the session; the default,
		// browser-session cookies, end when the browser closes.
		Persistent bool `yaml:"persistent"`
		// Encoding of the sealed session: binary (default) or json, which
		// builds before the binary payload can read (rolling upgrades,
		// rollbacks). Both are always read.
		Encoding string `yaml:"encoding"`
		// Compress: auto (default: only a session whose cookie would
		// otherwise take more than one chunk), always or never.
		Compress string `yaml:"compress"`
	} `yaml:"session"`
	Keys struct {
		Secrets     []string `yaml:"secrets"`
		SecretsFile string   `yaml:"secrets_file"`
		Rotation    duration `yaml:"rotation"`
	} `yaml:"keys"`
	Revocation struct {
		// SnapshotFile persists the list across restarts; default
		// $STATE_DIRECTORY/revoked (systemd's StateDirectory=), else
		// /var/lib/bff/revoked. It must be writable at start.
		SnapshotFile string `yaml:"snapshot_file"`
		// InMemory keeps the list in memory only: a restart then undoes
		// every logout. Never the default.
		InMemory bool `yaml:"in_memory"`
		// MaxSingleUse bounds the values remembered as used once (sign-in
		// states, logout-token ids); the oldest are evicted, never a new
		// one refused. Zero means 200,000.
		MaxSingleUse int `yaml:"max_single_use"`
	} `yaml:"revocation"`
	Cluster struct {
		Bind       string   `yaml:"bind"`
		Advertise  string   `yaml:"advertise"`
		Join       []string `yaml:"join"`
		Secret     string   `yaml:"secret"`
		SecretFile string   `yaml:"secret_file"`
		Name       string   `yaml:"name"`
		// InternalURL is how the other instances reach this one's
		// listener; default http://<listen> when listen names a host.
		InternalURL string `yaml:"internal_url"`
	} `yaml:"cluster"`
	Routes []struct {
		Path        string `yaml:"path"`
		Upstream    string `yaml:"upstream"`
		Token       string `yaml:"token"`
		StripPrefix bool   `yaml:"strip_prefix"`
		// InsecureUpstream allows a plain-http upstream on a host that is
		// not loopback for a route that sends a bearer token.
		InsecureUpstream bool `yaml:"insecure_upstream"`
		// BodyTimeout and BodyMinRate bound a request body's arrival:
		// within body_timeout plus 1 s per body_min_rate bytes (default
		// 30s and 1024); a negative body_timeout turns the limit off.
		BodyTimeout duration `yaml:"body_timeout"`
		BodyMinRate int64    `yaml:"body_min_rate"`
		// AntiForgery is "" (by kind of request: see README) or "header"
		// (X-CSRF on every request, WebSocket and EventSource included).
		AntiForgery string `yaml:"anti_forgery"`
		// Downloads lets top-level navigations reach the route; its
		// responses to them are forced to Content-Disposition: attachment.
		Downloads bool `yaml:"downloads"`
		// Resource (RFC 8707), Audience and Scopes restrict the token
		// this upstream receives (token exchange of the session's token;
		// with token: client, the client-credentials token asked for).
		Resource string   `yaml:"resource"`
		Audience string   `yaml:"audience"`
		Scopes   []string `yaml:"scopes"`
		// BearerOnly sends a DPoP-bound token as Bearer, without a
		// proof, to an upstream that does not take DPoP.
		BearerOnly bool `yaml:"bearer_only"`
	} `yaml:"routes"`
	Log struct {
		Format string `yaml:"format"` // json (default) or text
		Level  string `yaml:"level"`  // debug, info (default), warn, error
		// AccessFlush is how long access-log lines may wait in a 64 KiB
		// buffer before they are written (default 1s); "0s" writes each
		// line at once. Every other line is written at once, after them.
		AccessFlush duration `yaml:"access_flush"`
	} `yaml:"log"`

	// stateDirectory is $STATE_DIRECTORY (systemd), where the revocation
	// snapshot goes by default.
	stateDirectory string
}

// duration is a time.Duration written in Go syntax ("90s", "8h"), kept as
// written until serverConfig parses it, so that an error names the field.
type duration string

// parse returns the duration; empty means zero (the default).
func (d duration) parse(field string) (time.Duration, error) {
	if strings.TrimSpace(string(d)) == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(strings.TrimSpace(string(d)))
	if err != nil || v < 0 {
		return 0, &configError{field, fmt.Sprintf("%q is not a duration like 90s or 8h", string(d))}
	}
	return v, nil
}

// parseSigned is parse, also accepting a negative duration ("-1s": off).
func (d duration) parseSigned(field string) (time.Duration, error) {
	if v, ok := strings.CutPrefix(strings.TrimSpace(string(d)), "-"); ok {
		n, err := duration(v).parse(field)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, &configError{field, fmt.Sprintf("%q is not a duration like 90s or 8h", string(d))}
		}
		return -n, nil
	}
	return d.parse(field)
}

// accessFlush is log.access_flush, 1s when not set.
func (fc *fileConfig) accessFlush() (time.Duration, error) {
	if strings.TrimSpace(string(fc.Log.AccessFlush)) == "" {
		return time.Second, nil
	}
	return fc.Log.AccessFlush.parse("log.access_flush")
}

// configError names the field that is wrong, never its value when secret.
type configError struct {
	field string
	msg   string
}

func (e *configError) Error() string { return "config: " + e.field + ": " + e.msg }

// loadConfig reads path (may be empty: environment only), then applies the
// environment.
func loadConfig(path string, getenv func(string) string) (*fileConfig, error) {
	fc := new(fileConfig)
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		// Unknown keys first, named by their path ("oidc.clent_id"), not
		// by the Go type the decoder would print.
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err == nil && len(doc.Content) == 1 {
			if err := unknownKeys(doc.Content[0], reflect.TypeOf(*fc), ""); err != nil {
				err.msg += " in " + path
				return nil, err
			}
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(fc); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config: %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	if err := applyEnv(reflect.ValueOf(fc).Elem(), "BFF", "", getenv); err != nil {
		return nil, err
	}
	// systemd passes StateDirectory= as a colon-separated list; the first.
	fc.stateDirectory, _, _ = strings.Cut(getenv("STATE_DIRECTORY"), ":")
	return fc, nil
}

// unknownEnv lists, sorted, the BFF_* variables of environ (KEY=VALUE, as
// os.Environ) that name no config field: a typo such as
// BFF_OIDC_CLIENT_SECERT would otherwise be ignored without a word.
func unknownEnv(environ []string) []string {
	// The names applyEnv itself asks for, so the two cannot drift.
	known := map[string]bool{"BFF_CONFIG": true}
	applyEnv(reflect.ValueOf(&fileConfig{}).Elem(), "BFF", "", func(name string) string {
		known[name] = true
		return ""
	})
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "BFF_") && !known[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// applyEnv overlays BFF_<PATH> variables onto the struct's scalar and
// []string fields, recursively; path is the dotted YAML path so far.
func applyEnv(v reflect.Value, prefix, path string, getenv func(string) string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		field := tag
		if path != "" {
			field = path + "." + tag
		}
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, field, getenv); err != nil {
				return err
			}
			continue
		}
		val := getenv(name)
		if val == "" {
			continue
		}
		switch p := fv.Addr().Interface().(type) {
		case *string:
			*p = val
		case *int:
			n, err := strconv.Atoi(val)
			if err != nil {
				return &configError{field, "must be a whole number (from " + name + ")"}
			}
			*p = n
		case *bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return &configError{field, "must be true or false (from " + name + ")"}
			}
			*p = b
		case *duration:
			if _, err := duration(val).parse(field); err != nil {
				return &configError{field, fmt.Sprintf("%q is not a duration like 90s or 8h (from %s)", val, name)}
			}
			*p = duration(val)
		case *[]string:
			var items []string
			for s := range strings.SplitSeq(val, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
			*p = items
		default:
			return &configError{field, "cannot be set from the environment"}
		}
	}
	return nil
}

// serverConfig validates fc and turns it into a server.Config. Every error
// names the field.
func (fc *fileConfig) serverConfig() (server.Config, error) {
	var sc server.Config
	if fc.Listen == "" {
		fc.Listen = "127.0.0.1:8080"
	}
	if _, err := newLogger(fc.Log.Format, fc.Log.Level, io.Discard); err != nil {
		return sc, err
	}
	if _, err := fc.accessFlush(); err != nil {
		return sc, err
	}
	if _, err := fc.adminToken(); err != nil {
		return sc, err
	}
	for _, l := range []struct{ field, addr string }{{"listen", fc.Listen}, {"metrics_listen", fc.MetricsListen}, {"admin.listen", fc.Admin.Listen}} {
		if err := validListen(l.field, l.addr); err != nil {
			return sc, err
		}
	}
	if fc.PublicURL == "" {
		return sc, &configError{"public_url", "required (the origin the browser sees, e.g. https://app.example.com)"}
	}
	if u, err := url.Parse(fc.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return sc, &configError{"public_url", "must be an absolute http(s) origin"}
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
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

	o := fc.OIDC
	if o.Issuer == "" {
		return sc, &configError{"oidc.issuer", "required"}
	}
	if err := validIssuer(o.Issuer); err != nil {
		return sc, err
	}
	if o.ClientID == "" {
		return sc, &configError{"oidc.client_id", "required"}
	}
	secret, err := secretOrFile("oidc.client_secret", o.ClientSecret, o.ClientSecretFile)
	if err != nil {
		return sc, err
	}
	clientKeys, err := loadClientKeys(o.AuthMethod, o.ClientKeyFile)
	if err != nil {
		return sc, err
	}
	clientCert, err := loadClientCert(o.AuthMethod, o.TLSClientCertFile, o.TLSClientKeyFile)
	if err != nil {
		return sc, err
	}
	var dpopKeys *oauth.DPoPKeys
	if o.DPoPKeyFile != "" {
		if dpopKeys, err = parseKeyFile("oidc.dpop_key_file", o.DPoPKeyFile, oauth.ParseDPoPKeys, "oauth: DPoP keys: "); err != nil {
			return sc, err
		}
	}
	if secret == "" && clientKeys == nil && clientCert == nil {
		return sc, &configError{"oidc.client_secret", "required (or client_secret_file, or BFF_OIDC_CLIENT_SECRET), or auth_method private_key_jwt with client_key_file, or tls_client_auth with tls_client_cert_file"}
	}
	sc.OIDC = oauth.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, AuthMethod: o.AuthMethod, ClientKeys: clientKeys, DPoP: dpopKeys, ClientCert: clientCert,
		Scopes: o.Scopes, AuthParams: o.AuthParams, PostLogoutRedirectURL: o.PostLogoutRedirectURL,
		UserInfo: o.UserInfo, PAR: o.PAR,
	}
	switch o.PAR {
	case "", "auto", oauth.PARRequired, oauth.PAROff:
	default:
		return sc, &configError{"oidc.par", fmt.Sprintf("%q: want auto, required or off", o.PAR)}
	}
	if _, err := oauth.New(oauth.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, ClientKeys: clientKeys, ClientCert: clientCert, RedirectURL: "https://x/", Scopes: o.Scopes, AuthMethod: o.AuthMethod, AuthParams: o.AuthParams}); err != nil {
		return sc, &configError{"oidc", strings.TrimPrefix(err.Error(), "oauth: ")}
	}

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
		b, err := os.ReadFile(k.SecretsFile)
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
		sc.InternalURL = fc.Cluster.InternalURL
		if sc.InternalURL == "" {
			host, _, _ := net.SplitHostPort(fc.Listen)
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) || fc.TLS.CertFile != "" {
				return sc, &configError{"cluster.internal_url", "required when listen has no specific host or TLS is on (e.g. http://10.0.0.5:8080)"}
			}
			sc.InternalURL = "http://" + fc.Listen
		}
		if u, err := url.Parse(sc.InternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return sc, &configError{"cluster.internal_url", "must be an http(s) origin like http://10.0.0.5:8080"}
		}
		sc.InternalURL = strings.TrimSuffix(sc.InternalURL, "/")
	}

	for i, r := range fc.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		u, err := url.Parse(r.Upstream)
		if err != nil {
			return sc, &configError{field + ".upstream", "not a URL"}
		}
		if !strings.HasPrefix(r.Path, "/") {
			return sc, &configError{field + ".path", "must start with /"}
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return sc, &configError{field + ".upstream", "must be an absolute http(s) URL"}
		}
		switch r.Token {
		case "", "user", "optional", "none", "client":
		default:
			return sc, &configError{field + ".token", "must be user, optional, none or client"}
		}
		switch r.AntiForgery {
		case "", "header":
		default:
			return sc, &configError{field + ".anti_forgery", `must be "" (by kind of request) or "header"`}
		}
		bodyTimeout, err := r.BodyTimeout.parseSigned(field + ".body_timeout")
		if err != nil {
			return sc, err
		}
		if r.BodyMinRate < 0 {
			return sc, &configError{field + ".body_min_rate", "must not be negative (bytes per second)"}
		}
		rt := proxy.Route{
			Path: r.Path, Upstream: u, Token: proxy.TokenMode(r.Token), StripPrefix: r.StripPrefix,
			InsecureUpstream: r.InsecureUpstream, BodyTimeout: bodyTimeout, BodyMinRate: r.BodyMinRate,
			AntiForgery: proxy.AntiForgery(r.AntiForgery), Downloads: r.Downloads, BearerOnly: r.BearerOnly,
			Resource: r.Resource, Audience: r.Audience, Scopes: r.Scopes,
		}
		sc.Routes = append(sc.Routes, rt)
	}
	return sc, nil
}

// defaultStateDir is where the revocation snapshot goes when neither
// revocation.snapshot_file nor STATE_DIRECTORY says otherwise.
var defaultStateDir = "/var/lib/bff"

// revocationConfig chooses where the revocation list persists. Persistence
// is the default, since a restart must never undo a logout: the snapshot
// goes under $STATE_DIRECTORY or /var/lib/bff unless snapshot_file names
// another place, and its directory must be writable now, not at the first
// logout. Only an explicit in_memory: true keeps the list in memory.
func (fc *fileConfig) revocationConfig(sc *server.Config) error {
	rc := fc.Revocation
	if rc.MaxSingleUse < 0 {
		return &configError{"revocation.max_single_use", "must not be negative"}
	}
	sc.MaxSingleUse = rc.MaxSingleUse
	if rc.InMemory {
		if rc.SnapshotFile != "" {
			return &configError{"revocation.in_memory", "set either in_memory or snapshot_file, not both"}
		}
		return nil
	}
	path := rc.SnapshotFile
	if path == "" {
		dir := fc.stateDirectory
		if dir == "" {
			dir = defaultStateDir
		}
		path = filepath.Join(dir, "revoked")
	}
	if err := checkWritable(filepath.Dir(path)); err != nil {
		return &configError{"revocation.snapshot_file", fmt.Sprintf("%s: %v; set revocation.snapshot_file to a writable path "+
			"(systemd: StateDirectory=bff), or revocation.in_memory: true to keep logouts in memory only (a restart then undoes them)", path, err)}
	}
	sc.SnapshotFile = path
	return nil
}

// checkWritable is writableDir; the package's tests replace it so that a
// config naming /var/lib/bff creates nothing on the test machine.
var checkWritable = writableDir

// writableDir creates dir (0700) when missing and proves a file can be
// created in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errors.Unwrap(err)
	}
	f, err := os.CreateTemp(dir, ".bff-check-*")
	if err != nil {
		if u := errors.Unwrap(err); u != nil {
			return u
		}
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// clusterConfig validates the cluster section; nil when it is absent.
func (fc *fileConfig) clusterConfig() (*cluster.Config, error) {
	c := fc.Cluster
	if c.Bind == "" {
		if c.Secret != "" || c.SecretFile != "" || len(c.Join) > 0 {
			return nil, &configError{"cluster.bind", "required when the cluster section is used"}
		}
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(c.Bind); err != nil {
		return nil, &configError{"cluster.bind", "must be host:port"}
	}
	secret, err := secretOrFile("cluster.secret", c.Secret, c.SecretFile)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, &configError{"cluster.secret", "required (base64 of 32 random bytes; bff keygen makes one)"}
	}
	key, err := decodeBase64(secret)
	if err != nil {
		return nil, &configError{"cluster.secret", "is not base64"}
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, &configError{"cluster.secret", fmt.Sprintf("must decode to 16, 24 or 32 bytes, not %d", n)}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return nil, &configError{fmt.Sprintf("cluster.join[%d]", i), "must be host:port"}
		}
	}
	return &cluster.Config{Bind: c.Bind, Advertise: c.Advertise, Join: c.Join, Secret: key, Name: c.Name}, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// secretOrFile returns a secret given either inline (field) or as a file
// (field + "_file"), never both; a file's content is trimmed.
func secretOrFile(field, inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	if inline != "" {
		name := field[strings.LastIndex(field, ".")+1:]
		return "", &configError{field + "_file", "set either " + name + " or " + name + "_file, not both"}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", &configError{field + "_file", err.Error()}
	}
	return strings.TrimSpace(string(b)), nil
}

// loadClientKeys reads oidc.client_key_file, which private_key_jwt needs
// and no other method uses; nil without one.
func loadClientKeys(method, file string) (*oauth.ClientKeys, error) {
	switch {
	case method == oauth.AuthMethodPrivateKeyJWT && file == "":
		return nil, &configError{"oidc.client_key_file", "required with auth_method private_key_jwt (a JWK set of private keys; bff keygen makes one)"}
	case method != oauth.AuthMethodPrivateKeyJWT && file != "":
		return nil, &configError{"oidc.client_key_file", "only used with auth_method private_key_jwt"}
	case file == "":
		return nil, nil
	}
	return parseKeyFile("oidc.client_key_file", file, oauth.ParseClientKeys, "oauth: client keys: ")
}

// parseKeyFile reads a JWK set file with parse; errors name field, parse's
// without its prefix.
func parseKeyFile[T any](field, file string, parse func([]byte) (T, error), prefix string) (T, error) {
	var zero T
	b, err := os.ReadFile(file)
	if err != nil {
		return zero, &configError{field, err.Error()}
	}
	keys, err := parse(b)
	if err != nil {
		return zero, &configError{field, strings.TrimPrefix(err.Error(), prefix)}
	}
	return keys, nil
}

// loadClientCert reads oidc.tls_client_cert_file and tls_client_key_file,
// which the mTLS methods need and no other method uses; nil without them.
func loadClientCert(method, certFile, keyFile string) (*oauth.ClientCert, error) {
	mtls := method == oauth.AuthMethodTLSClient || method == oauth.AuthMethodSelfSignedTLSClient
	switch {
	case mtls && (certFile == "" || keyFile == ""):
		return nil, &configError{"oidc.tls_client_cert_file", "tls_client_cert_file and tls_client_key_file are required with auth_method " + method}
	case !mtls && (certFile != "" || keyFile != ""):
		return nil, &configError{"oidc.tls_client_cert_file", "only used with auth_method tls_client_auth or self_signed_tls_client_auth"}
	case !mtls:
		return nil, nil
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &configError{"oidc.tls_client_cert_file", err.Error()}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &configError{"oidc.tls_client_key_file", err.Error()}
	}
	c, err := oauth.ParseClientCert(certPEM, keyPEM, time.Now())
	if err != nil {
		return nil, &configError{"oidc.tls_client_cert_file", strings.TrimPrefix(err.Error(), "oauth: ")}
	}
	return c, nil
}

// adminToken validates the admin section and returns its token, "" when
// the admin API is off.
func (fc *fileConfig) adminToken() (string, error) {
	a := fc.Admin
	token, err := secretOrFile("admin.token", a.Token, a.TokenFile)
	if err != nil {
		return "", err
	}
	switch {
	case a.Listen == "" && token == "":
		return "", nil
	case a.Listen == "":
		return "", &configError{"admin.listen", "required with an admin token (a loopback or private address, never the public listener)"}
	case token == "":
		return "", &configError{"admin.token", "required with admin.listen (or token_file, or BFF_ADMIN_TOKEN)"}
	case len(token) < server.MinAdminToken:
		return "", &configError{"admin.token", fmt.Sprintf("%d bytes; use at least %d (bff keygen makes one)", len(token), server.MinAdminToken)}
	case a.Listen == fc.Listen:
		return "", &configError{"admin.listen", "must differ from listen: the admin API never shares the public listener"}
	}
	return token, nil // admin.listen's syntax: validListen, with the other listeners
}

// validListen checks a listen address: host:port with a port number (the
// host may be empty: every interface). Empty addr is valid (unset).
func validListen(field, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &configError{field, fmt.Sprintf("%q: want host:port, e.g. 127.0.0.1:8080 (%s)", addr, strings.TrimPrefix(err.Error(), "address "+addr+": "))}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &configError{field, fmt.Sprintf("%q: the port must be a number from 0 to 65535", addr)}
	}
	return nil
}

// validIssuer checks oidc.issuer before discovery would: an https URL with
// a host (http only on loopback, like public_url: discovery and the keys
// that sign ID tokens must not travel in clear), no query or fragment.
func validIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return &configError{"oidc.issuer", fmt.Sprintf("%q: want an absolute https URL, e.g. https://idp.example.com", issuer)}
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return &configError{"oidc.issuer", fmt.Sprintf("%q: must be https (http only on loopback): discovery and the ID-token signing keys would travel in clear", issuer)}
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return &configError{"oidc.issuer", fmt.Sprintf("%q: an issuer has no query, fragment or credentials", issuer)}
	}
	return nil
}

// unknownKeys returns an error naming the first key of the mapping n (and of
// the mappings inside it) that t, a struct with yaml tags, has no field for.
// Anything that is not a mapping where t is a struct is left to the decoder.
func unknownKeys(n *yaml.Node, t reflect.Type, path string) *configError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" && n.Content[i].Tag == "!!merge" {
				continue // a merge key: the decoder checks what it brings in
			}
			ft, ok := fields[k]
			if !ok {
				where := "top level"
				if path != "" {
					where = path
				}
				known := make([]string, 0, len(fields))
				for f := range fields {
					known = append(known, f)
				}
				slices.Sort(known)
				return &configError{joinPath(path, k), fmt.Sprintf("unknown field %q (known at %s: %s), line %d", k, where, strings.Join(known, ", "), n.Content[i].Line)}
			}
			if err := unknownKeys(n.Content[i+1], ft, joinPath(path, k)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := unknownKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
