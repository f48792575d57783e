package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/server"
	"github.com/bff-project/bff/session"
)

// Test master secrets (base64 of 33 bytes each); never used anywhere else.
const (
	secretOne   = "dGVzdC1tYXN0ZXItc2VjcmV0LW9uZS0wMTIzNDU2Nzg5"
	secretTwo   = "dGVzdC1tYXN0ZXItc2VjcmV0LXR3by0wMTIzNDU2Nzg5"
	secretThree = "dGVzdC1tYXN0ZXItc2VjcmV0LTMtMDEyMzQ1Njc4OWFi"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

// load is Load, with the server's part apart for the tests that look at it.
func load(path string, getenv func(string) string) (*Config, server.Config, error) {
	c, err := Load(path, getenv)
	if err != nil {
		return nil, server.Config{}, err
	}
	return c, c.Server, nil
}

func decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadValidFile(t *testing.T) {
	c, sc, err := load("testdata/valid.yaml", noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if c.Listen != "127.0.0.1:18080" || c.Log.Format != "text" || c.Log.Level != slog.LevelDebug {
		t.Errorf("listen %q log %+v", c.Listen, c.Log)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"PublicURL", sc.PublicURL, "https://app.example.com"},
		{"Prefix", sc.Prefix, "/bff"},
		{"TrustedProxies", sc.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}},
		{"OIDC.Issuer", sc.OIDC.Issuer, "https://idp.example.com"},
		{"OIDC.ClientID", sc.OIDC.ClientID, "bff-client"},
		{"OIDC.ClientSecret", sc.OIDC.ClientSecret, "file-client-secret-XYZ"},
		{"OIDC.AuthMethod", sc.OIDC.AuthMethod, "client_secret_post"},
		{"OIDC.PAR", sc.OIDC.PAR, "required"},
		{"OIDC.Scopes", sc.OIDC.Scopes, []string{"openid", "profile", "offline_access"}},
		{"OIDC.AuthParams", sc.OIDC.AuthParams, map[string]string{"audience": "https://api.example.com"}},
		{"OIDC.PostLogoutRedirectURL", sc.OIDC.PostLogoutRedirectURL, "https://app.example.com/"},
		{"OIDC.RedirectURL (derived by server)", sc.OIDC.RedirectURL, ""},
		{"CookieName", sc.CookieName, "__Host-Http-app"},
		{"Lifetime", sc.Lifetime, 4 * time.Hour},
		{"SameSite", sc.SameSite, http.SameSiteStrictMode},
		{"RefreshMargin", sc.RefreshMargin, 90 * time.Second},
		{"SuccessorGrace", sc.SuccessorGrace, 20 * time.Second},
		{"Secrets", sc.Secrets, [][]byte{decode(t, secretOne)}},
		{"Rotation", sc.Rotation, 12 * time.Hour},
		{"SnapshotFile", sc.SnapshotFile, "/var/lib/bff/revoked"},
		{"len(Routes)", len(sc.Routes), 2},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if len(sc.Routes) == 2 {
		r0, r1 := sc.Routes[0], sc.Routes[1]
		if r0.Path != "/api/" || r0.Upstream.String() != "http://127.0.0.1:9000" || r0.Token != proxy.TokenUser || r0.StripPrefix {
			t.Errorf("route 0 = %+v", r0)
		}
		if r1.Path != "/public/" || r1.Upstream.String() != "https://public.example.com/base" || r1.Token != proxy.TokenNone || !r1.StripPrefix {
			t.Errorf("route 1 = %+v", r1)
		}
	}
}

func TestLoadEnvOverlay(t *testing.T) {
	e := env(map[string]string{
		"BFF_OIDC_CLIENT_SECRET": "env-client-secret",
		"BFF_KEYS_SECRETS":       secretTwo + ", " + secretThree,
		"BFF_SESSION_LIFETIME":   "2h",
		"BFF_PUBLIC_URL":         "https://other.example.com",
		"BFF_TRUSTED_PROXIES":    "127.0.0.1",
		"BFF_SESSION_SAME_SITE":  "lax",
		"BFF_LISTEN":             "127.0.0.1:9999",
	})
	c, sc, err := load("testdata/valid.yaml", e)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"OIDC.ClientSecret", sc.OIDC.ClientSecret, "env-client-secret"},
		{"Secrets", sc.Secrets, [][]byte{decode(t, secretTwo), decode(t, secretThree)}},
		{"Lifetime", sc.Lifetime, 2 * time.Hour},
		{"PublicURL", sc.PublicURL, "https://other.example.com"},
		{"TrustedProxies", sc.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		{"SameSite", sc.SameSite, http.SameSiteLaxMode},
		{"Listen", c.Listen, "127.0.0.1:9999"},
		// Untouched by the environment.
		{"OIDC.ClientID", sc.OIDC.ClientID, "bff-client"},
		{"Rotation", sc.Rotation, 12 * time.Hour},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestLoadEnvOnly(t *testing.T) {
	e := env(map[string]string{
		"BFF_CONFIG":             "testdata/minimal.yaml",
		"BFF_OIDC_CLIENT_SECRET": "env-client-secret",
		"BFF_KEYS_SECRETS":       secretOne,
	})
	c, sc, err := load("", e)
	if err != nil {
		t.Fatalf("load with BFF_CONFIG: %v", err)
	}
	if sc.PublicURL != "http://localhost:8080" || c.Listen != "127.0.0.1:8080" || sc.OIDC.ClientSecret != "env-client-secret" {
		t.Errorf("public %q listen %q", sc.PublicURL, c.Listen)
	}
	// No file at all: everything from the environment.
	_, sc, err = load("", env(map[string]string{
		"BFF_PUBLIC_URL": "https://app.example.com", "BFF_OIDC_ISSUER": "https://idp.example.com",
		"BFF_OIDC_CLIENT_ID": "c", "BFF_OIDC_CLIENT_SECRET": "s", "BFF_KEYS_SECRETS": secretOne,
		"BFF_OIDC_SCOPES": "openid,email",
	}))
	if err != nil {
		t.Fatalf("environment only: %v", err)
	}
	if !reflect.DeepEqual(sc.OIDC.Scopes, []string{"openid", "email"}) {
		t.Errorf("scopes %v", sc.OIDC.Scopes)
	}
}

func TestLoadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, func(m map[string]any) {
		o := m["oidc"].(map[string]any)
		delete(o, "client_secret")
		o["client_secret_file"] = "testdata/client_secret.txt"
		k := m["keys"].(map[string]any)
		delete(k, "secrets")
		k["secrets_file"] = "testdata/secrets.txt"
	})
	_, sc, err := load(path, noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if sc.OIDC.ClientSecret != "client-secret-from-file" {
		t.Errorf("client secret %q, want the file's, trimmed", sc.OIDC.ClientSecret)
	}
	if !reflect.DeepEqual(sc.Secrets, [][]byte{decode(t, secretTwo), decode(t, secretThree)}) {
		t.Errorf("secrets from file: %d", len(sc.Secrets))
	}
}

// A secret or key file the configuration names is read up to 1 MiB: a path
// to /dev/zero or a log file fails naming the field, instead of filling the
// memory. The control: the same field with a file of the limit's size is
// read (and then refused as a key or certificate, or kept as a secret).
func TestLoadNamedFileBounded(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge")
	if err := os.WriteFile(huge, bytes.Repeat([]byte("a"), maxNamedFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	limit := filepath.Join(dir, "limit")
	if err := os.WriteFile(limit, bytes.Repeat([]byte("a"), maxNamedFile), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		field string
		set   func(m map[string]any, path string)
	}{
		{"oidc.client_secret_file", func(m map[string]any, p string) {
			delete(oidcOf(m), "client_secret")
			oidcOf(m)["client_secret_file"] = p
		}},
		{"keys.secrets_file", func(m map[string]any, p string) {
			k := m["keys"].(map[string]any)
			delete(k, "secrets")
			k["secrets_file"] = p
		}},
		{"oidc.client_key_file", func(m map[string]any, p string) {
			delete(oidcOf(m), "client_secret")
			oidcOf(m)["auth_method"] = "private_key_jwt"
			oidcOf(m)["client_key_file"] = p
		}},
	} {
		for _, file := range []string{huge, "/dev/zero"} {
			path := writeConfig(t, t.TempDir(), func(m map[string]any) { tt.set(m, file) })
			_, _, err := load(path, noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "larger than") {
				t.Errorf("%s = %s: %v, want an error naming the field and the size", tt.field, file, err)
			}
		}
		path := writeConfig(t, t.TempDir(), func(m map[string]any) { tt.set(m, limit) })
		if _, _, err := load(path, noEnv); err != nil && strings.Contains(err.Error(), "larger than") {
			t.Errorf("%s with a file of %d bytes: %v", tt.field, maxNamedFile, err)
		}
	}
}

func TestLoadUnknownField(t *testing.T) {
	_, _, err := load("testdata/unknown-field.yaml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "clientsecret") {
		t.Fatalf("error %v, want one naming the unknown field clientsecret", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := load("testdata/nope.yaml", noEnv)
	if err == nil || !strings.HasPrefix(err.Error(), "config:") {
		t.Fatalf("error %v, want a config error", err)
	}
}

// baseConfig is a valid config as a YAML tree, for tests to break.
func baseConfig() map[string]any {
	return map[string]any{
		"public_url": "https://app.example.com",
		"oidc": map[string]any{
			"issuer":        "https://idp.example.com",
			"client_id":     "bff-client",
			"client_secret": "base-client-secret",
		},
		"session": map[string]any{"lifetime": "8h"},
		"keys":    map[string]any{"secrets": []string{secretOne}},
		"routes": []map[string]any{
			{"path": "/api/", "upstream": "http://127.0.0.1:9000", "token": "user"},
		},
	}
}

func writeConfig(t *testing.T, dir string, mutate func(map[string]any)) string {
	t.Helper()
	m := baseConfig()
	if mutate != nil {
		mutate(m)
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bff.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func oidcOf(m map[string]any) map[string]any    { return m["oidc"].(map[string]any) }
func sessionOf(m map[string]any) map[string]any { return m["session"].(map[string]any) }

// TestLoadDPoP: dpop_key_file gives the client and the proxy their DPoP
// keys; a route may opt out with bearer_only.
func TestLoadDPoP(t *testing.T) {
	path := writeConfig(t, t.TempDir(), func(m map[string]any) {
		oidcOf(m)["dpop_key_file"] = "testdata/client_keys.json"
		m["routes"].([]map[string]any)[0]["bearer_only"] = true
	})
	_, sc, err := load(path, noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if sc.OIDC.DPoP == nil || sc.OIDC.DPoP.Alg() != "ES256" || !sc.Routes[0].BearerOnly {
		t.Fatalf("DPoP %v, route bearer_only %v: want the file's ES256 key and the opt-out", sc.OIDC.DPoP, sc.Routes[0].BearerOnly)
	}
	_, plain, err := load(writeConfig(t, t.TempDir(), nil), noEnv)
	if err != nil || plain.OIDC.DPoP != nil || plain.Routes[0].BearerOnly {
		t.Fatalf("without dpop_key_file: %v, DPoP %v, bearer_only %v", err, plain.OIDC.DPoP, plain.Routes[0].BearerOnly)
	}
}

// TestLoadRouteTargets: a route's resource, audience and scopes, and
// token: client, reach the proxy route.
func TestLoadRouteTargets(t *testing.T) {
	path := writeConfig(t, t.TempDir(), func(m map[string]any) {
		r := m["routes"].([]map[string]any)[0]
		r["resource"], r["audience"], r["scopes"], r["token"] = "https://orders.example", "orders", []string{"orders:read"}, "client"
	})
	_, sc, err := load(path, noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	r := sc.Routes[0]
	if r.Resource != "https://orders.example" || r.Audience != "orders" || len(r.Scopes) != 1 || r.Scopes[0] != "orders:read" || r.Token != proxy.TokenClient {
		t.Errorf("route %+v", r)
	}
}

// TestLoadClientCert: tls_client_auth takes its certificate and key from
// files and needs no client secret.
func TestLoadClientCert(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "bff-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	path := writeConfig(t, dir, func(m map[string]any) {
		o := oidcOf(m)
		delete(o, "client_secret")
		o["auth_method"], o["tls_client_cert_file"], o["tls_client_key_file"] = "tls_client_auth", certFile, keyFile
	})
	_, sc, err := load(path, noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if sc.OIDC.ClientCert == nil || sc.OIDC.ClientCert.Leaf().Subject.CommonName != "bff-client" || sc.OIDC.ClientSecret != "" {
		t.Fatalf("ClientCert %v, secret %q", sc.OIDC.ClientCert, sc.OIDC.ClientSecret)
	}
}

// TestLoadSessionEncoding: session.encoding json asks for JSON payloads.
func TestLoadSessionEncoding(t *testing.T) {
	for enc, want := range map[string]bool{"json": true, "binary": false, "": false} {
		path := writeConfig(t, t.TempDir(), func(m map[string]any) {
			if enc != "" {
				sessionOf(m)["encoding"] = enc
			}
		})
		if _, sc, err := load(path, noEnv); err != nil || sc.SessionJSON != want {
			t.Errorf("session.encoding %q: %v, SessionJSON %v", enc, err, sc.SessionJSON)
		}
	}
}

// TestLoadSessionCompress: session.compress picks the mode; auto is the
// default.
func TestLoadSessionCompress(t *testing.T) {
	for v, want := range map[string]session.Compression{"": session.CompressAuto, "auto": session.CompressAuto,
		"always": session.CompressAlways, "never": session.CompressNever} {
		path := writeConfig(t, t.TempDir(), func(m map[string]any) {
			if v != "" {
				sessionOf(m)["compress"] = v
			}
		})
		if _, sc, err := load(path, noEnv); err != nil || sc.SessionCompress != want {
			t.Errorf("session.compress %q: %v, SessionCompress %v", v, err, sc.SessionCompress)
		}
	}
}

// TestLoadClientKeys: private_key_jwt takes its keys from client_key_file
// and needs no client secret.
func TestLoadClientKeys(t *testing.T) {
	path := writeConfig(t, t.TempDir(), func(m map[string]any) {
		o := oidcOf(m)
		delete(o, "client_secret")
		o["auth_method"], o["client_key_file"] = "private_key_jwt", "testdata/client_keys.json"
	})
	_, sc, err := load(path, noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if sc.OIDC.ClientKeys == nil || sc.OIDC.ClientSecret != "" {
		t.Fatalf("ClientKeys %v, ClientSecret %q: want the file's keys and no secret", sc.OIDC.ClientKeys, sc.OIDC.ClientSecret)
	}
	var set struct{ Keys []struct{ Kid string } }
	b, _ := os.ReadFile("testdata/client_keys.json")
	json.Unmarshal(b, &set)
	if kid, alg := sc.OIDC.ClientKeys.Signing(); kid != set.Keys[0].Kid || alg != "ES256" {
		t.Errorf("signing key %q %s, want the file's %q ES256", kid, alg, set.Keys[0].Kid)
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(map[string]any)
		env    map[string]string
		field  string // the error must name it
		secret string // and must not contain it
	}{
		{name: "public_url missing", mutate: func(m map[string]any) { delete(m, "public_url") }, field: "public_url"},
		{name: "public_url relative", mutate: func(m map[string]any) { m["public_url"] = "/app" }, field: "public_url"},
		{name: "public_url http non-loopback", mutate: func(m map[string]any) { m["public_url"] = "http://app.example.com" }, field: "public_url"},
		{name: "public_url ftp", mutate: func(m map[string]any) { m["public_url"] = "ftp://app.example.com" }, field: "public_url"},
		{name: "public_url with a path", mutate: func(m map[string]any) { m["public_url"] = "https://app.example.com/app" }, field: "public_url"},
		{name: "oidc.issuer missing", mutate: func(m map[string]any) { delete(oidcOf(m), "issuer") }, field: "oidc.issuer"},
		{name: "oidc.client_id missing", mutate: func(m map[string]any) { delete(oidcOf(m), "client_id") }, field: "oidc.client_id"},
		{name: "no client secret", mutate: func(m map[string]any) { delete(oidcOf(m), "client_secret") }, field: "oidc.client_secret"},
		{name: "client_secret and client_secret_file", mutate: func(m map[string]any) { oidcOf(m)["client_secret_file"] = "testdata/client_secret.txt" },
			field: "oidc.client_secret_file", secret: "base-client-secret"},
		{name: "client_secret_file missing", mutate: func(m map[string]any) {
			delete(oidcOf(m), "client_secret")
			oidcOf(m)["client_secret_file"] = "testdata/nope.txt"
		}, field: "oidc.client_secret_file"},
		{name: "oidc scopes without openid", mutate: func(m map[string]any) { oidcOf(m)["scopes"] = []string{"email"} }, field: "oidc", secret: "base-client-secret"},
		{name: "private_key_jwt without client_key_file", mutate: func(m map[string]any) { oidcOf(m)["auth_method"] = "private_key_jwt" }, field: "oidc.client_key_file"},
		{name: "client_key_file with a secret method", mutate: func(m map[string]any) { oidcOf(m)["client_key_file"] = "testdata/client_keys.json" }, field: "oidc.client_key_file"},
		{name: "client_key_file missing", mutate: func(m map[string]any) {
			oidcOf(m)["auth_method"], oidcOf(m)["client_key_file"] = "private_key_jwt", "testdata/nope.json"
		}, field: "oidc.client_key_file"},
		{name: "client_key_file of public keys", mutate: func(m map[string]any) {
			oidcOf(m)["auth_method"], oidcOf(m)["client_key_file"] = "private_key_jwt", "testdata/client_keys_public.json"
		}, field: "oidc.client_key_file"},
		{name: "client_key_file not a JWK set", mutate: func(m map[string]any) {
			oidcOf(m)["auth_method"], oidcOf(m)["client_key_file"] = "private_key_jwt", "testdata/secrets.txt"
		}, field: "oidc.client_key_file", secret: secretTwo},
		{name: "dpop_key_file missing", mutate: func(m map[string]any) { oidcOf(m)["dpop_key_file"] = "testdata/nope.json" }, field: "oidc.dpop_key_file"},
		{name: "dpop_key_file of public keys", mutate: func(m map[string]any) { oidcOf(m)["dpop_key_file"] = "testdata/client_keys_public.json" }, field: "oidc.dpop_key_file"},
		{name: "tls_client_auth without a certificate", mutate: func(m map[string]any) { oidcOf(m)["auth_method"] = "tls_client_auth" }, field: "oidc.tls_client_cert_file"},
		{name: "a client certificate with a secret method", mutate: func(m map[string]any) { oidcOf(m)["tls_client_cert_file"] = "testdata/nope.pem" }, field: "oidc.tls_client_cert_file"},
		{name: "client certificate missing", mutate: func(m map[string]any) {
			o := oidcOf(m)
			o["auth_method"], o["tls_client_cert_file"], o["tls_client_key_file"] = "self_signed_tls_client_auth", "testdata/nope.pem", "testdata/nope.key"
		}, field: "oidc.tls_client_cert_file"},
		{name: "client certificate not PEM", mutate: func(m map[string]any) {
			o := oidcOf(m)
			o["auth_method"], o["tls_client_cert_file"], o["tls_client_key_file"] = "tls_client_auth", "testdata/client_keys.json", "testdata/secrets.txt"
		}, field: "oidc.tls_client_cert_file", secret: secretTwo},
		{name: "session.encoding bogus", mutate: func(m map[string]any) { sessionOf(m)["encoding"] = "cbor" }, field: "session.encoding"},
		{name: "session.compress bogus", mutate: func(m map[string]any) { sessionOf(m)["compress"] = "yes" }, field: "session.compress"},
		{name: "oidc auth_method bogus", mutate: func(m map[string]any) { oidcOf(m)["auth_method"] = "bogus" }, field: "oidc"},
		{name: "listen without host", mutate: func(m map[string]any) { m["listen"] = "23090" }, field: "listen"},
		{name: "listen port not a number", mutate: func(m map[string]any) { m["listen"] = "127.0.0.1:http-alt" }, field: "listen"},
		{name: "listen port out of range", mutate: func(m map[string]any) { m["listen"] = "127.0.0.1:65536" }, field: "listen"},
		{name: "metrics_listen without host", mutate: func(m map[string]any) { m["metrics_listen"] = "9090" }, field: "metrics_listen"},
		{name: "issuer scheme typo", mutate: func(m map[string]any) { oidcOf(m)["issuer"] = "htp://idp.example.com" }, field: "oidc.issuer"},
		{name: "issuer relative", mutate: func(m map[string]any) { oidcOf(m)["issuer"] = "idp.example.com" }, field: "oidc.issuer"},
		{name: "issuer http non-loopback", mutate: func(m map[string]any) { oidcOf(m)["issuer"] = "http://idp.example.com" }, field: "oidc.issuer"},
		{name: "issuer with a query", mutate: func(m map[string]any) { oidcOf(m)["issuer"] = "https://idp.example.com/?tenant=1" }, field: "oidc.issuer"},
		{name: "refresh_margin not under lifetime", mutate: func(m map[string]any) { sessionOf(m)["refresh_margin"] = "8h" }, field: "session.refresh_margin"},
		{name: "refresh_margin over the default lifetime", mutate: func(m map[string]any) {
			delete(sessionOf(m), "lifetime")
			sessionOf(m)["refresh_margin"] = "9h"
		}, field: "session.refresh_margin"},
		{name: "idle_timeout not under lifetime", mutate: func(m map[string]any) { sessionOf(m)["idle_timeout"] = "8h" }, field: "session.idle_timeout"},
		{name: "unknown nested key", mutate: func(m map[string]any) { oidcOf(m)["clent_id"] = "x" }, field: "oidc.clent_id"},
		{name: "unknown top-level key", mutate: func(m map[string]any) { m["listn"] = "x" }, field: "listn"},
		{name: "unknown key in a route", mutate: func(m map[string]any) {
			m["routes"] = []map[string]any{{"path": "/api/", "upstrem": "http://127.0.0.1:9000"}}
		}, field: "routes[0].upstrem"},
		{name: "admin token without listen", mutate: func(m map[string]any) { m["admin"] = map[string]any{"token": strings.Repeat("t", 40)} }, field: "admin.listen"},
		{name: "admin listen without token", mutate: func(m map[string]any) { m["admin"] = map[string]any{"listen": "127.0.0.1:9091"} }, field: "admin.token"},
		{name: "admin token short", mutate: func(m map[string]any) {
			m["admin"] = map[string]any{"listen": "127.0.0.1:9091", "token": strings.Repeat("t", 31)}
		}, field: "admin.token"},
		{name: "admin on the public listener", mutate: func(m map[string]any) {
			m["listen"] = "127.0.0.1:8080"
			m["admin"] = map[string]any{"listen": "127.0.0.1:8080", "token": strings.Repeat("t", 40)}
		}, field: "admin.listen"},
		{name: "admin listen without a port", mutate: func(m map[string]any) {
			m["admin"] = map[string]any{"listen": "9091", "token": strings.Repeat("t", 40)}
		}, field: "admin.listen"},
		{name: "admin token and token_file", mutate: func(m map[string]any) {
			m["admin"] = map[string]any{"listen": "127.0.0.1:9091", "token": strings.Repeat("t", 40), "token_file": "testdata/client_secret.txt"}
		}, field: "admin.token_file"},
		{name: "oidc par bogus", mutate: func(m map[string]any) { oidcOf(m)["par"] = "sometimes" }, field: "oidc.par"},
		{name: "keys.secrets too short", mutate: func(m map[string]any) { m["keys"] = map[string]any{"secrets": []string{"c2hvcnQtc2VjcmV0LXZhbHVl"}} },
			field: "keys.secrets[0]", secret: "c2hvcnQtc2VjcmV0LXZhbHVl"},
		{name: "keys.secrets not base64", mutate: func(m map[string]any) { m["keys"] = map[string]any{"secrets": []string{secretOne, "not base64 !!"}} },
			field: "keys.secrets[1]", secret: "not base64"},
		{name: "keys.secrets too short from env", mutate: func(m map[string]any) { delete(m, "keys") },
			env: map[string]string{"BFF_KEYS_SECRETS": "c2hvcnQtc2VjcmV0LXZhbHVl"}, field: "keys.secrets[0]", secret: "c2hvcnQtc2VjcmV0LXZhbHVl"},
		{name: "no secrets", mutate: func(m map[string]any) { delete(m, "keys") }, field: "keys.secrets"},
		{name: "secrets_file missing", mutate: func(m map[string]any) { m["keys"] = map[string]any{"secrets_file": "testdata/nope.txt"} }, field: "keys.secrets_file"},
		{name: "session.cookie_name without __Host-", mutate: func(m map[string]any) { sessionOf(m)["cookie_name"] = "bff" }, field: "session.cookie_name"},
		{name: "session.same_site bogus", mutate: func(m map[string]any) { sessionOf(m)["same_site"] = "bogus" }, field: "session.same_site"},
		{name: "session.same_site none", mutate: func(m map[string]any) { sessionOf(m)["same_site"] = "none" }, field: "session.same_site"},
		{name: "bad duration in file", mutate: func(m map[string]any) { sessionOf(m)["lifetime"] = "8 hours" }, field: "session.lifetime"},
		{name: "negative duration in file", mutate: func(m map[string]any) { sessionOf(m)["refresh_margin"] = "-5s" }, field: "session.refresh_margin"},
		{name: "bad duration in env", env: map[string]string{"BFF_SESSION_LIFETIME": "forever"}, field: "BFF_SESSION_LIFETIME"},
		{name: "routes from env", env: map[string]string{"BFF_ROUTES": "x"}, field: "routes"},
		{name: "map field from env", env: map[string]string{"BFF_OIDC_AUTH_PARAMS": "x"}, field: "oidc.auth_params"},
		{name: "trusted_proxies bad", mutate: func(m map[string]any) { m["trusted_proxies"] = []string{"10.0.0.0/8", "not-an-ip"} }, field: "trusted_proxies"},
		{name: "route token bogus", mutate: func(m map[string]any) { m["routes"].([]map[string]any)[0]["token"] = "admin" }, field: "routes[0].token"},
		{name: "route upstream relative", mutate: func(m map[string]any) { m["routes"].([]map[string]any)[0]["upstream"] = "/relative" }, field: "routes[0].upstream"},
		{name: "log.format bogus", mutate: func(m map[string]any) { m["log"] = map[string]any{"format": "xml"} }, field: "log.format"},
		{name: "log.access_flush negative", mutate: func(m map[string]any) { m["log"] = map[string]any{"access_flush": "-1s"} }, field: "log.access_flush"},
		{name: "log.access_flush bogus in env", env: map[string]string{"BFF_LOG_ACCESS_FLUSH": "soon"}, field: "BFF_LOG_ACCESS_FLUSH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tt.mutate)
			out, err := check(path, env(tt.env), false)
			if err == nil {
				t.Fatalf("check accepted the config; printed:\n%s", out)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.field) {
				t.Errorf("error %q does not name %s", msg, tt.field)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			for _, s := range []string{tt.secret, secretOne} {
				if s != "" && strings.Contains(msg, s) {
					t.Errorf("error %q shows a secret", msg)
				}
			}
		})
	}
}

// TestConfigAcceptsEdges: the controls of TestConfigInvalid's new rules,
// values at their edges that serve must accept.
func TestConfigAcceptsEdges(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"listen on every interface", func(m map[string]any) { m["listen"] = ":8080" }},
		{"listen on IPv6 loopback", func(m map[string]any) { m["listen"] = "[::1]:8080" }},
		{"listen on the highest port", func(m map[string]any) { m["listen"] = "127.0.0.1:65535" }},
		{"listen on port 0 (any free port)", func(m map[string]any) { m["listen"] = "127.0.0.1:0" }},
		{"issuer http on loopback", func(m map[string]any) { oidcOf(m)["issuer"] = "http://127.0.0.1:8081" }},
		{"issuer http on localhost with a path", func(m map[string]any) { oidcOf(m)["issuer"] = "http://localhost:8080/realms/app" }},
		// One loopback rule with the proxy's (proxy.IsLoopback): the case
		// of "localhost" and an IPv4-mapped address do not matter.
		{"issuer http on LOCALHOST", func(m map[string]any) { oidcOf(m)["issuer"] = "http://LOCALHOST:8081" }},
		{"public_url http on an IPv4-mapped loopback", func(m map[string]any) { m["public_url"] = "http://[::ffff:127.0.0.1]:8080" }},
		{"refresh_margin just under lifetime", func(m map[string]any) { sessionOf(m)["refresh_margin"] = "7h59m" }},
		{"idle_timeout just under lifetime", func(m map[string]any) { sessionOf(m)["idle_timeout"] = "7h59m" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tt.mutate)
			if _, _, err := load(path, noEnv); err != nil {
				t.Fatalf("load: %v", err)
			}
		})
	}
	t.Run("YAML merge key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bff.yaml")
		y := `public_url: "https://app.example.com"
oidc:
  issuer: "https://idp.example.com"
  client_id: "bff-client"
  client_secret: "base-client-secret"
keys:
  secrets: ["` + secretOne + `"]
routes:
  - &api
    path: "/api/"
    upstream: "http://127.0.0.1:9000"
    token: "user"
  - <<: *api
    path: "/api2/"
`
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		_, sc, err := load(path, noEnv)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if len(sc.Routes) != 2 || sc.Routes[1].Path != "/api2/" || sc.Routes[1].Upstream.String() != "http://127.0.0.1:9000" {
			t.Errorf("routes %+v, want /api2/ merged from /api/", sc.Routes)
		}
	})
}

// TestRestartField: a reload that changes a listener, the logging or the
// admin API is refused by name (they are set up once, at start); the same
// file, and one that changes only what the server reloads, is not.
func TestRestartField(t *testing.T) {
	base := func(t *testing.T, mutate func(m map[string]any)) *Config {
		t.Helper()
		path := writeConfig(t, t.TempDir(), func(m map[string]any) {
			m["admin"] = map[string]any{"listen": "127.0.0.1:9091", "token": strings.Repeat("a", 40)}
			if mutate != nil {
				mutate(m)
			}
		})
		c, err := Load(path, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	running := base(t, nil)
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"same file", nil, ""},
		{"routes only (the server reloads them)", func(m map[string]any) {
			m["routes"] = []map[string]any{{"path": "/v2/", "upstream": "http://127.0.0.1:9001"}}
		}, ""},
		{"listen", func(m map[string]any) { m["listen"] = "127.0.0.1:8081" }, "listen"},
		{"metrics_listen", func(m map[string]any) { m["metrics_listen"] = "127.0.0.1:9090" }, "metrics_listen"},
		{"admin listener", func(m map[string]any) { m["admin"].(map[string]any)["listen"] = "127.0.0.1:9092" }, "admin.listen"},
		{"admin token", func(m map[string]any) { m["admin"].(map[string]any)["token"] = strings.Repeat("b", 40) }, "admin.token"},
		{"log level", func(m map[string]any) { m["log"] = map[string]any{"level": "debug"} }, "log.level"},
		{"log format", func(m map[string]any) { m["log"] = map[string]any{"format": "text"} }, "log.format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RestartField(running, base(t, tt.mutate)); got != tt.want {
				t.Errorf("RestartField = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLoadCluster: the cluster section's rules, each named by its field, and
// what a valid section becomes.
func TestLoadCluster(t *testing.T) {
	key := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	valid := func() map[string]any {
		return map[string]any{"bind": "127.0.0.1:7946", "secret": key(32), "join": []any{"10.0.0.2:7946"},
			"internal_url": "http://10.0.0.1:8080/", "name": "bff-1"}
	}
	tests := []struct {
		name   string
		mutate func(c map[string]any)
		field  string // "" when the section must load
	}{
		{"valid", func(map[string]any) {}, ""},
		{"secret of 16 bytes", func(c map[string]any) { c["secret"] = key(16) }, ""},
		{"secret of 24 bytes, unpadded url-safe base64", func(c map[string]any) {
			c["secret"] = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 24))
		}, ""},
		{"no bind, with a secret", func(c map[string]any) { delete(c, "bind") }, "cluster.bind"},
		{"no bind, with join only", func(c map[string]any) { delete(c, "bind"); delete(c, "secret") }, "cluster.bind"},
		{"bind without a port", func(c map[string]any) { c["bind"] = "127.0.0.1" }, "cluster.bind"},
		{"no secret", func(c map[string]any) { delete(c, "secret") }, "cluster.secret"},
		{"secret not base64", func(c map[string]any) { c["secret"] = "not*base64!" }, "cluster.secret"},
		{"secret of 10 bytes", func(c map[string]any) { c["secret"] = key(10) }, "cluster.secret"},
		{"secret of 33 bytes", func(c map[string]any) { c["secret"] = key(33) }, "cluster.secret"},
		{"join without a port", func(c map[string]any) { c["join"] = []any{"10.0.0.2:7946", "10.0.0.3"} }, "cluster.join[1]"},
		{"internal_url with a path", func(c map[string]any) { c["internal_url"] = "http://10.0.0.1:8080/bff" }, "cluster.internal_url"},
		{"internal_url not http", func(c map[string]any) { c["internal_url"] = "ftp://10.0.0.1" }, "cluster.internal_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			path := writeConfig(t, t.TempDir(), func(m map[string]any) { m["cluster"] = c })
			_, sc, err := load(path, noEnv)
			if tt.field != "" {
				if err == nil || !strings.Contains(err.Error(), tt.field+":") {
					t.Fatalf("load: %v, want an error naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if sc.Cluster == nil || sc.Cluster.Bind != c["bind"] || sc.Cluster.Name != "bff-1" ||
				len(sc.Cluster.Join) != 1 || sc.InternalURL != "http://10.0.0.1:8080" {
				t.Fatalf("cluster %+v, internal URL %q", sc.Cluster, sc.InternalURL)
			}
			if want, _ := decodeBase64(c["secret"].(string)); !bytes.Equal(sc.Cluster.Secret, want) {
				t.Errorf("secret %x, want %x", sc.Cluster.Secret, want)
			}
		})
	}
	t.Run("no section", func(t *testing.T) {
		_, sc, err := load(writeConfig(t, t.TempDir(), nil), noEnv)
		if err != nil || sc.Cluster != nil {
			t.Fatalf("load: %v, cluster %+v", err, sc.Cluster)
		}
	})
}
