package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The listener's TLS pair is read like every file the configuration names:
// a pair loads (the control), and a path to a device or a file over 1 MiB
// fails instead of filling the memory.
func TestCertLoaderBounded(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyFile := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	huge := write("huge.pem", []byte(strings.Repeat("a", 1<<20+1)))

	c, err := newCertLoader(certFile, keyFile)
	if err != nil {
		t.Fatalf("a valid pair: %v", err)
	}
	if got, _ := c.get(nil); got == nil || len(got.Certificate) != 1 {
		t.Fatalf("loaded certificate %v", got)
	}
	for _, pair := range [][2]string{{huge, keyFile}, {certFile, huge}, {"/dev/zero", keyFile}} {
		if _, err := newCertLoader(pair[0], pair[1]); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("cert %s, key %s: %v, want an error about the size", pair[0], pair[1], err)
		}
	}
}
