package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
// written until resolve parses it, so that an error names the field.
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

// loadFile reads path (may be empty: environment only), then applies the
// environment.
func loadFile(path string, getenv func(string) string) (*fileConfig, error) {
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
