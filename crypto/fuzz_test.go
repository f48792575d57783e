package crypto

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/keys"
)

// fuzzPlaintexts are the only plaintexts the fuzz seeds seal. A successful
// Open must return one of them.
var fuzzPlaintexts = [][]byte{
	[]byte("fuzz seed"),
	[]byte(`{"v":1,"sid":"fuzz"}`),
	bytes.Repeat([]byte("fuzz seed, compressible. "), 20),
}

// fuzzSealer uses a fixed secret and a fixed clock, so the checked-in seeds
// in testdata/fuzz/FuzzOpen keep opening.
func fuzzSealer(tb testing.TB) *Sealer {
	tb.Helper()
	fixed := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	ring, err := keys.New(keys.Config{Secrets: [][]byte{testSecret(0x42)}, Now: func() time.Time { return fixed }})
	if err != nil {
		tb.Fatal(err)
	}
	return newTestSealer(tb, Config{Ring: ring, MaxSealed: 4096, MaxPlaintext: 1024})
}

// FuzzOpen checks that Open never panics, fails only with ErrInvalid, and
// opens nothing but canonical values carrying a plaintext that was sealed.
// Since AES-GCM authenticates the header and ciphertext, a mutated input that
// opens would mean Open accepts two spellings of one value. Whatever opens
// here opens to the same plaintext in go-jose, the reference reader.
func FuzzOpen(f *testing.F) {
	s := fuzzSealer(f)
	for _, pt := range fuzzPlaintexts {
		for _, p := range []Purpose{Session, Login} {
			v, err := s.Seal(p, pt)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(v)
		}
	}
	f.Add("")
	f.Add("....")
	f.Add(b64(`{"alg":"none"}`) + "....")
	f.Fuzz(func(t *testing.T, sealed string) {
		for _, p := range []Purpose{Session, Login} {
			pt, _, err := s.Open(p, sealed)
			if err != nil {
				if err != ErrInvalid {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				continue
			}
			known := false
			for _, k := range fuzzPlaintexts {
				known = known || bytes.Equal(pt, k)
			}
			// A standard JOSE reader agrees: go-jose opens it to the same.
			body, _, err := goJoseOpen(sealed, s.ring.Sealing().Secret)
			if got, ok := decode(body, s.maxPlaintext); err != nil || !ok || !bytes.Equal(got, pt) {
				t.Fatalf("opened here to %q; go-jose: %q, %v", pt, got, err)
			}
			if !known {
				t.Fatalf("opened to an unknown plaintext %q", pt)
			}
			// Every part must be the one canonical encoding of its bytes.
			for _, part := range strings.Split(sealed, ".") {
				raw, err := base64.RawURLEncoding.DecodeString(part)
				if err != nil || base64.RawURLEncoding.EncodeToString(raw) != part {
					t.Fatalf("opened a non-canonical part %q", part)
				}
			}
		}
	})
}

// FuzzChunks checks that Read never panics on any Cookie header, fails only
// with ErrNoCookie or ErrInvalid, and that a value it returns is written back
// and read again unchanged.
func FuzzChunks(f *testing.F) {
	c := newTestChunker(f, ChunkConfig{Name: "b", MaxCookieSize: 120, MaxChunks: 4})
	f.Add("b.0=abc")
	f.Add("b.1=def; b.0=abc; other=1")
	f.Add("b.0=abc; b.2=def")
	f.Add("b.0=abc; b.0=abc")
	f.Add("b.01=abc")
	f.Add(`b.0="abc"`)
	f.Add("b-login.ab12=x; b.0=" + strings.Repeat("A", 80))
	f.Fuzz(func(t *testing.T, header string) {
		r := cookieRequest()
		r.Header.Set("Cookie", header)
		v, err := c.Read(r)
		if err != nil {
			if err != ErrNoCookie && err != ErrInvalid {
				t.Fatalf("err = %v", err)
			}
			return
		}
		h := http.Header{}
		if err := c.Write(h, r, v); err != nil {
			t.Fatalf("Write of a value Read returned: %v", err)
		}
		for _, line := range h.Values("Set-Cookie") {
			if len(line) > 120 {
				t.Fatalf("Set-Cookie of %d bytes", len(line))
			}
		}
		got, err := c.Read(replay(h))
		if err != nil || got != v {
			t.Fatalf("re-read %q, %v; want %q", got, err, v)
		}
		// Writing the re-read value gives the same cookies, without deletions.
		var written []string
		for _, line := range h.Values("Set-Cookie") {
			if !strings.Contains(line, "Max-Age=0") {
				written = append(written, line)
			}
		}
		h2 := http.Header{}
		if err := c.Write(h2, replay(h), got); err != nil {
			t.Fatal(err)
		}
		if a, b := strings.Join(h2.Values("Set-Cookie"), "\n"), strings.Join(written, "\n"); a != b {
			t.Fatalf("rewrite differs:\n%s\n%s", a, b)
		}
	})
}
