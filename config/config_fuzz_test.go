package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secret values the fuzz target puts in the environment. They are long and
// unusual so that finding one in an error message cannot be an accident.
const (
	fuzzEnvClientSecret  = "fuzz-env-client-secret-3c9d7e21a0b64f58"
	fuzzEnvKeySecret     = "ZnV6ei1lbnYta2V5LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm" // base64 of 36 bytes
	fuzzEnvClusterSecret = "ZnV6ei1lbnYtY2x1c3Rlci1zZWNyZXQtMDEyMzQ1Njc4OTA=" // base64 of 35 bytes: refused as a length
	// fuzzEnvBadKeySecret is a secret that is not base64: its error must
	// still not quote it.
	fuzzEnvBadKeySecret = "fuzz-env-not-base64!!-secret-71f0c2d9e8"
	// fuzzFileSecret is what a *_file field of the fuzzed YAML reads.
	fuzzFileSecret = "fuzz-file-secret-5b2e8a91c7d04f36"
)

// fuzzEnv returns the environment of one fuzz case: mode picks which secret
// variables are set and whether they are valid.
func fuzzEnv(mode uint8) (func(string) string, []string) {
	m := map[string]string{}
	if mode&1 != 0 {
		m["BFF_OIDC_CLIENT_SECRET"] = fuzzEnvClientSecret
	}
	switch mode >> 1 & 3 {
	case 1:
		m["BFF_KEYS_SECRETS"] = fuzzEnvKeySecret
	case 2:
		m["BFF_KEYS_SECRETS"] = fuzzEnvBadKeySecret
	case 3:
		m["BFF_KEYS_SECRETS"] = fuzzEnvKeySecret + "," + fuzzEnvKeySecret // a duplicate
	}
	if mode&8 != 0 {
		m["BFF_CLUSTER_SECRET"] = fuzzEnvClusterSecret
	}
	if mode&16 != 0 {
		m["BFF_SESSION_LIFETIME"] = "not-a-duration"
	}
	if mode&32 != 0 {
		m["BFF_SESSION_CACHE_ENTRIES"] = "many"
	}
	secrets := []string{fuzzEnvClientSecret, fuzzEnvKeySecret, fuzzEnvBadKeySecret, fuzzEnvClusterSecret, fuzzFileSecret}
	return func(k string) string { return m[k] }, secrets
}

// seed is a fuzz input: the environment mode byte, then the YAML file.
func seed(mode uint8, yaml []byte) []byte { return append([]byte{mode}, yaml...) }

// FuzzConfig feeds arbitrary bytes as the YAML file through loadFile and
// resolve, with secrets in the environment. It must never panic; every
// error must start with "config:" and quote none of the secrets.
//
// The first byte of the input picks the environment (see fuzzEnv), the rest
// is the file.
//
// The secret *_file fields of a parsed config are pointed at a file of the
// test's own before resolve reads them; the others (key, certificate and
// token files) may name anything the fuzzer writes, and every file the
// configuration names is read up to 1 MiB (ReadNamedFile), so a device
// cannot make the target fill the memory.
func FuzzConfig(f *testing.F) {
	for _, name := range []string{"valid.yaml", "minimal.yaml", "unknown-field.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seed(7, b))
		f.Add(seed(0, b))
	}
	f.Add(seed(1, []byte("public_url: x\n")))
	f.Add(seed(3, []byte("session:\n  lifetime: [1, 2]\n")))
	f.Add(seed(3, []byte("routes:\n  - path: api\n    upstream: \"%zz\"\n")))
	f.Add(seed(15, []byte("cluster:\n  bind: \"127.0.0.1:7946\"\n  join: [\"x\"]\n")))
	dir := f.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(fuzzFileSecret+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		if len(input) == 0 {
			return
		}
		mode, data := input[0], input[1:]
		getenv, secrets := fuzzEnv(mode)
		path := filepath.Join(dir, "bff.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fc, err := loadFile(path, getenv)
		if err == nil {
			for _, p := range []*string{&fc.OIDC.ClientSecretFile, &fc.Keys.SecretsFile, &fc.Cluster.SecretFile} {
				if *p != "" {
					*p = secretFile
				}
			}
			_, err = fc.resolve()
		}
		if err == nil {
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "config:") {
			t.Fatalf("error %q does not start with \"config:\"", msg)
		}
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Fatalf("error %q quotes a secret value", msg)
			}
		}
	})
}
