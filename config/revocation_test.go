package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain keeps the package's tests from creating the default state
// directory (or any directory a config names) on the machine: directories
// are only recorded. TestRevocationPersistence restores the real check.
func TestMain(m *testing.M) {
	checkWritable = func(string) error { return nil }
	os.Exit(m.Run())
}

// minimalYAML is a complete config but for revocation.
const minimalYAML = `public_url: "http://localhost:8080"
oidc:
  issuer: "https://idp.example.com"
  client_id: "bff-client"
  client_secret: "state-test-client-secret"
keys:
  secrets: ["` + secretOne + `"]
`

// TestRevocationPersistence: persistence is the default, its place comes
// from snapshot_file, then STATE_DIRECTORY, then /var/lib/bff, and a place
// that cannot be written stops the start with the field named.
func TestRevocationPersistence(t *testing.T) {
	checkWritable = writableDir
	t.Cleanup(func() { checkWritable = func(string) error { return nil } })
	tmp := t.TempDir()
	defaultStateDir = filepath.Join(tmp, "default")
	t.Cleanup(func() { defaultStateDir = "/var/lib/bff" })
	file := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    string // SnapshotFile; "" with wantErr empty means in memory
		wantErr string
	}{
		{name: "default", want: filepath.Join(tmp, "default", "revoked")},
		{name: "systemd state directory", env: map[string]string{"STATE_DIRECTORY": filepath.Join(tmp, "state") + ":/other"},
			want: filepath.Join(tmp, "state", "revoked")},
		{name: "snapshot_file wins", yaml: "revocation:\n  snapshot_file: " + filepath.Join(tmp, "x", "list") + "\n",
			env: map[string]string{"STATE_DIRECTORY": filepath.Join(tmp, "state")}, want: filepath.Join(tmp, "x", "list")},
		{name: "explicitly in memory", yaml: "revocation:\n  in_memory: true\n", want: ""},
		{name: "in memory and a file", yaml: "revocation:\n  in_memory: true\n  snapshot_file: /x/y\n", wantErr: "config: revocation.in_memory:"},
		{name: "not writable", yaml: "revocation:\n  snapshot_file: " + filepath.Join(file, "revoked") + "\n",
			wantErr: "config: revocation.snapshot_file: " + filepath.Join(file, "revoked")},
		{name: "negative single-use bound", yaml: "revocation:\n  in_memory: true\n  max_single_use: -1\n", wantErr: "config: revocation.max_single_use:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bff.yaml")
			if err := os.WriteFile(path, []byte(minimalYAML+tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			getenv := env(tt.env)
			if tt.env == nil {
				getenv = noEnv
			}
			_, sc, err := load(path, getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				if strings.Contains(tt.name, "writable") && !strings.Contains(err.Error(), "in_memory: true") {
					t.Errorf("error %q does not say how to opt out", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sc.SnapshotFile != tt.want {
				t.Errorf("SnapshotFile = %q, want %q", sc.SnapshotFile, tt.want)
			}
			if tt.want != "" {
				if st, err := os.Stat(filepath.Dir(tt.want)); err != nil || !st.IsDir() {
					t.Errorf("directory %s not created: %v", filepath.Dir(tt.want), err)
				}
			}
		})
	}
}
