package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// syncBuffer collects output that several goroutines write.
type syncBuffer = testsupport.Buffer

// A test master secret (base64 of 33 bytes); never used anywhere else.
const secretOne = "dGVzdC1tYXN0ZXItc2VjcmV0LW9uZS0wMTIzNDU2Nzg5"

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

// writeConfig writes a complete config, and extra YAML after it, to a file
// of the test's own and returns its path.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bff.yaml")
	y := `public_url: "http://localhost:8080"
oidc:
  issuer: "https://idp.example.com"
  client_id: "bff-client"
  client_secret: "main-test-client-secret"
keys:
  secrets: ["` + secretOne + `"]
` + extra
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeygen(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"keygen"}, noEnv, &out); err != nil {
			t.Fatalf("keygen: %v", err)
		}
		s := strings.TrimSpace(out.String())
		if strings.Count(out.String(), "\n") != 1 {
			t.Errorf("keygen printed %q, want one line", out.String())
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("keygen printed %q: %d bytes, %v; want base64 of 32 bytes", s, len(b), err)
		}
		if _, err := keys.ParseSecret(s); err != nil {
			t.Errorf("keygen output is not a usable secret: %v", err)
		}
		if seen[s] {
			t.Error("keygen repeated a secret")
		}
		seen[s] = true
	}
}

// TestKeygenJWK: keygen -jwk prints a key set the BFF reads as
// oidc.client_key_file, kid the RFC 7638 thumbprint, a new key each run.
func TestKeygenJWK(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "PS256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			var kids []string
			for range 2 {
				var out bytes.Buffer
				if err := run(context.Background(), []string{"keygen", "-jwk", alg}, noEnv, &out); err != nil {
					t.Fatalf("keygen -jwk: %v", err)
				}
				ck, err := oauth.ParseClientKeys(out.Bytes())
				if err != nil {
					t.Fatalf("output is not a client key set: %v\n%s", err, out.String())
				}
				kid, got := ck.Signing()
				var set jose.JSONWebKeySet
				json.Unmarshal(out.Bytes(), &set)
				tp, _ := set.Keys[0].Thumbprint(crypto.SHA256)
				if got != alg || kid != base64.RawURLEncoding.EncodeToString(tp) {
					t.Errorf("key %q %s, want alg %s and kid the thumbprint", kid, got, alg)
				}
				kids = append(kids, kid)
			}
			if kids[0] == kids[1] {
				t.Error("keygen -jwk repeated a key")
			}
		})
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"keygen", "-jwk", "HS256"}, noEnv, &out)
	if err == nil || !strings.Contains(err.Error(), "want ES256") || out.Len() != 0 {
		t.Errorf("keygen -jwk HS256: %v, printed %q; want a refusal and nothing printed", err, out.String())
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), []string{arg}, noEnv, &out); err != nil {
				t.Fatalf("%s: %v", arg, err)
			}
			for _, want := range []string{"usage: bff", "serve", "demo", "keygen", "check", "version", "BFF_OIDC_CLIENT_SECRET", "COMMAND -h"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("usage lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// TestCommandHelp: every command's -h (and -help, --help) prints its own
// usage and flags to stdout and succeeds, without running the command.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"serve", []string{"usage: bff serve", "-config", "BFF_CONFIG"}},
		{"check", []string{"usage: bff check", "-config", "without binding"}},
		{"demo", []string{"usage: bff demo", "-addr", "-public-url", "-idp-addr", "-api-addr", "-access-ttl"}},
		{"keygen", []string{"usage: bff keygen", "master secret"}},
		{"version", []string{"usage: bff version", "Go version"}},
	}
	for _, tt := range tests {
		for _, h := range []string{"-h", "-help", "--help"} {
			t.Run(tt.cmd+" "+h, func(t *testing.T) {
				var out bytes.Buffer
				if err := run(context.Background(), []string{tt.cmd, h}, noEnv, &out); err != nil {
					t.Fatalf("%s %s: %v", tt.cmd, h, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(out.String(), w) {
						t.Errorf("%s %s lacks %q:\n%s", tt.cmd, h, w, out.String())
					}
				}
				if tt.cmd == "keygen" && strings.Count(out.String(), "=") > 0 {
					t.Errorf("keygen -h printed a secret:\n%s", out.String())
				}
			})
		}
	}
	// The default command's help, after its flag.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-config", "x.yaml", "-h"}, noEnv, &out); err != nil || !strings.Contains(out.String(), "usage: bff serve") {
		t.Errorf("-config x.yaml -h = %v:\n%s", err, out.String())
	}
}

func TestDemoPublicURL(t *testing.T) {
	tests := []struct {
		addr, public, want string
	}{
		{"127.0.0.1:8080", "", "http://localhost:8080"},
		{"127.0.0.1:9000", "", "http://localhost:9000"},
		{":9000", "", "http://localhost:9000"},
		{"0.0.0.0:9000", "", "http://localhost:9000"},
		{"[::1]:9000", "", "http://localhost:9000"},
		{"localhost:9000", "", "http://localhost:9000"},
		{"192.0.2.7:9000", "", "http://192.0.2.7:9000"},
		{"bff.lan:9000", "", "http://bff.lan:9000"},
		{"127.0.0.1:9000", "https://app.example.com/", "https://app.example.com"},
	}
	for _, tt := range tests {
		if got, err := demoPublicURL(tt.addr, tt.public); err != nil || got != tt.want {
			t.Errorf("demoPublicURL(%q, %q) = %q, %v; want %q", tt.addr, tt.public, got, err, tt.want)
		}
	}
	if _, err := demoPublicURL("9000", ""); err == nil || !strings.Contains(err.Error(), "-addr") {
		t.Errorf("demoPublicURL(9000) = %v, want an error naming -addr", err)
	}
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"check", "-nope"}, "check:"},
		{"extra argument", []string{"check", "-config", "config/testdata/valid.yaml", "extra"}, `unexpected argument "extra"`},
		{"serve without config", []string{"serve"}, "public_url"},
		{"default command is serve", []string{"-config", "config/testdata/unknown-field.yaml"}, "clientsecret"},
		{"demo bad flag", []string{"demo", "-bogus"}, "demo:"},
		{"demo extra argument", []string{"demo", "now"}, `unexpected argument "now"`},
		{"demo address without a port", []string{"demo", "-addr", "9000"}, "-addr"},
		{"version argument", []string{"version", "now"}, `unexpected argument "now"`},
		{"keygen flag", []string{"keygen", "-n", "2"}, "keygen:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, noEnv, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestServeBadLog(t *testing.T) {
	for field, l := range map[string]string{
		"log.format": "log:\n  format: xml\n",
		"log.level":  "log:\n  level: loud\n",
	} {
		t.Run(field, func(t *testing.T) {
			path := writeConfig(t, l)
			err := run(context.Background(), []string{"serve", "-config", path}, noEnv, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Fatalf("serve = %v, want an error naming %s", err, field)
			}
		})
	}
}

// TestCheck: `bff check` reads -config and -online, prints its report on
// stdout and warns of BFF_* variables that name no field; what it checks and
// reports is package config's (its tests).
func TestCheck(t *testing.T) {
	t.Setenv("BFF_OIDC_CLIENT_SECERT", "typo")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	path := writeConfig(t, "revocation:\n  in_memory: true\n")
	e := env(map[string]string{"BFF_OIDC_ISSUER": down.URL})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "-config", path}, e, &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"config ok: listen 127.0.0.1:8080\n", "warning: BFF_OIDC_CLIENT_SECERT names no config field", "not reachable from here now"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	// The config file from $BFF_CONFIG; -online fails on the provider.
	e = env(map[string]string{"BFF_OIDC_ISSUER": down.URL, "BFF_CONFIG": path})
	if err := run(context.Background(), []string{"check", "-online"}, e, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "provider not reachable (-online)") {
		t.Errorf("check -online with an unreachable provider = %v", err)
	}
}

// TestServeStartsAndStops serves on a free loopback port, answers /healthz,
// and shuts down cleanly when the context ends. The provider is unreachable,
// so /readyz says 503 the whole time.
func TestServeStartsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The issuer is a closed loopback port: discovery keeps failing.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	issuer := "http://" + dead.Addr().String()
	dead.Close()

	e := env(map[string]string{
		"BFF_LISTEN":             addr,
		"BFF_PUBLIC_URL":         "http://localhost:8080",
		"BFF_OIDC_ISSUER":        issuer,
		"BFF_OIDC_CLIENT_ID":     "c",
		"BFF_OIDC_CLIENT_SECRET": "serve-test-client-secret",
		"BFF_KEYS_SECRETS":       secretOne,
		"STATE_DIRECTORY":        t.TempDir(), // the revocation snapshot's default place
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, e, out) }()

	client := &http.Client{Timeout: 2 * time.Second}
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err = client.Get("http://" + addr + "/healthz")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve never answered: %v; output:\n%s; run: %v", err, out, <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	// /healthz just answered: a /readyz that does not answer at all is a
	// failure, not a check to leave out.
	r, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		cancel()
		t.Fatalf("/readyz: %v; run: %v", err, <-done)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with an unreachable provider: %d, want 503", r.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after the context ended", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := out.String()
	if !strings.Contains(logs, "listening") || !strings.Contains(logs, "shutting down") {
		t.Errorf("serve logs lack start or stop:\n%s", logs)
	}
	for _, s := range []string{"serve-test-client-secret", secretOne} {
		if strings.Contains(logs, s) {
			t.Errorf("serve logged a secret:\n%s", logs)
		}
	}
}

func TestParseDemoRoute(t *testing.T) {
	good := []struct{ in, path, upstream string }{
		{"/api/=http://127.0.0.1:3000", "/api/", "http://127.0.0.1:3000"},
		{"/v1/=https://api.example.com/base", "/v1/", "https://api.example.com/base"},
	}
	for _, tt := range good {
		r, err := parseDemoRoute(tt.in)
		if err != nil || r.Path != tt.path || r.Upstream.String() != tt.upstream || r.Token != proxy.TokenUser {
			t.Errorf("parseDemoRoute(%q) = %+v, %v", tt.in, r, err)
		}
	}
	for _, bad := range []string{"/api/", "api/=http://x", "/api/=", "/api/=127.0.0.1:3000", "/api/=ftp://x", "=http://x"} {
		if _, err := parseDemoRoute(bad); err == nil || !strings.Contains(err.Error(), "-route") {
			t.Errorf("parseDemoRoute(%q) = %v, want an error naming -route", bad, err)
		}
	}
}
