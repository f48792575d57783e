package crypto

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestNewSealer(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no ring", Config{}, false},
		{"defaults", Config{Ring: ring}, true},
		{"negative plaintext limit", Config{Ring: ring, MaxPlaintext: -1}, false},
		{"negative sealed limit", Config{Ring: ring, MaxSealed: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSealer(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (s.maxPlaintext != DefaultMaxPlaintext || s.maxSealed != DefaultMaxSealed || !s.compress) {
				t.Fatal("defaults not applied")
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	plaintexts := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"short", []byte(`{"v":1}`)},
		{"tokens", tokenPlaintext(1)},
		{"incompressible", randomBytes(2000)},
		{"repetitive", bytes.Repeat([]byte("abc"), 5000)},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe, 0}},
	}
	for _, compress := range []bool{true, false} {
		s := newTestSealer(t, Config{Ring: ring, DisableCompression: !compress})
		for _, p := range []Purpose{Session, Login} {
			for _, pt := range plaintexts {
				name := string(p) + "/" + pt.name
				if !compress {
					name += "/raw"
				}
				t.Run(name, func(t *testing.T) {
					sealed, err := s.Seal(p, pt.data)
					if err != nil {
						t.Fatal(err)
					}
					got, stale, err := s.Open(p, sealed)
					if err != nil {
						t.Fatal(err)
					}
					if stale {
						t.Fatal("fresh value reported stale")
					}
					if !bytes.Equal(got, pt.data) {
						t.Fatal("plaintext differs")
					}
					if !canonicalCompact(sealed) {
						t.Fatal("Seal wrote a non-canonical value")
					}
					h, ok := parseHeader(strings.SplitN(sealed, ".", 2)[0])
					if !ok || h.alg != "dir" || h.enc != "A256GCM" || h.cty != string(p) || h.kid != ring.Sealing().ID {
						t.Fatalf("header %+v", h)
					}
					// The other purpose never opens it.
					other := Login
					if p == Login {
						other = Session
					}
					if _, _, err := s.Open(other, sealed); err != ErrInvalid {
						t.Fatalf("opened as %s: err = %v", other, err)
					}
				})
			}
		}
	}
}

func TestCompression(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	on := newTestSealer(t, Config{Ring: ring})
	off := newTestSealer(t, Config{Ring: ring, DisableCompression: true})
	pt := tokenPlaintext(2)
	a, _ := on.Seal(Session, pt)
	b, _ := off.Seal(Session, pt)
	if len(a) >= len(b) {
		t.Fatalf("compressed %d bytes, raw %d", len(a), len(b))
	}
	// Either sealer opens either value.
	for _, v := range []string{a, b} {
		for _, s := range []*Sealer{on, off} {
			if got, _, err := s.Open(Session, v); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("open: %v", err)
			}
		}
	}
	// Incompressible data is stored raw.
	if body := encode(randomBytes(500), true); body[0] != formatRaw {
		t.Fatal("incompressible data was stored compressed")
	}
}

// TestNoncesDiffer: every seal draws a fresh 96-bit AES-GCM nonce (the
// compact JWE's third part): a repeated nonce under one key would reveal the
// XOR of two plaintexts and allow forgeries.
func TestNoncesDiffer(t *testing.T) {
	s := newTestSealer(t, Config{Ring: newTestRing(t, newClock(t0), testSecret(1))})
	const n = 5000
	seen := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		v, err := s.Seal(Session, []byte("same"))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(v, ".")
		if len(parts) != 5 {
			t.Fatalf("not a compact JWE: %d parts", len(parts))
		}
		iv, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(iv) != 12 {
			t.Fatalf("nonce %q: %d bytes, %v; want 12", parts[2], len(iv), err)
		}
		if seen[parts[2]] {
			t.Fatalf("nonce repeated after %d seals", i)
		}
		seen[parts[2]] = true
	}
}

func TestSizeLimits(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	s := newTestSealer(t, Config{Ring: ring, MaxPlaintext: 1000, MaxSealed: 2000})
	t.Run("plaintext at limit", func(t *testing.T) {
		v, err := s.Seal(Session, randomBytes(1000))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Open(Session, v); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("plaintext over limit", func(t *testing.T) {
		_, err := s.Seal(Session, randomBytes(1001))
		var tl *TooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.Size != 1001 || tl.Limit != 1000 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("sealed over limit", func(t *testing.T) {
		small := newTestSealer(t, Config{Ring: ring, MaxSealed: 200})
		if _, err := small.Seal(Session, randomBytes(500)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("open refuses long input", func(t *testing.T) {
		big := newTestSealer(t, Config{Ring: ring})
		v, _ := big.Seal(Session, randomBytes(1800))
		if _, _, err := s.Open(Session, v); err != ErrInvalid {
			t.Fatalf("err = %v", err)
		}
		if _, _, err := s.Open(Session, strings.Repeat("A", 1<<20)); err != ErrInvalid {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("open refuses large raw plaintext", func(t *testing.T) {
		big := newTestSealer(t, Config{Ring: ring, MaxSealed: 4000})
		v, _ := big.Seal(Session, randomBytes(1001))
		if _, _, err := s.Open(Session, v); err != ErrInvalid {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("invalid purpose", func(t *testing.T) {
		for _, p := range []Purpose{"", "Session", `a"b`, Purpose(strings.Repeat("a", 33))} {
			if _, err := s.Seal(p, nil); err == nil {
				t.Fatalf("Seal(%q) succeeded", p)
			}
		}
	})
}

func TestCorruptEveryByte(t *testing.T) {
	s := newTestSealer(t, Config{Ring: newTestRing(t, newClock(t0), testSecret(1))})
	for _, pt := range [][]byte{[]byte("short value"), tokenPlaintext(3)} {
		sealed, err := s.Seal(Session, pt)
		if err != nil {
			t.Fatal(err)
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i := 0; i < len(sealed); i++ {
			var repl []byte
			if j := strings.IndexByte(alphabet, sealed[i]); j >= 0 {
				// The next character (flips the lowest bit) and the most distant one.
				repl = []byte{alphabet[(j+1)%64], alphabet[(j+32)%64], '.'}
			} else {
				repl = []byte{'A', 'Q', 'w'}
			}
			repl = append(repl, ' ', '\n', '=', 0, 0xff)
			for _, c := range repl {
				b := []byte(sealed)
				b[i] = c
				if _, _, err := s.Open(Session, string(b)); err != ErrInvalid {
					t.Fatalf("byte %d set to %q: err = %v", i, c, err)
				}
			}
		}
		for _, extra := range []string{".", "A", "\n", "=", " "} {
			if _, _, err := s.Open(Session, sealed+extra); err != ErrInvalid {
				t.Fatalf("appended %q: err = %v", extra, err)
			}
		}
	}
}

func TestTruncation(t *testing.T) {
	s := newTestSealer(t, Config{Ring: newTestRing(t, newClock(t0), testSecret(1))})
	sealed, err := s.Seal(Session, tokenPlaintext(4))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(sealed); n++ {
		if _, _, err := s.Open(Session, sealed[:n]); err != ErrInvalid {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
		if _, _, err := s.Open(Session, sealed[n+1:]); err != ErrInvalid {
			t.Fatalf("first %d bytes cut: err = %v", n+1, err)
		}
	}
}

func TestKeys(t *testing.T) {
	c := newClock(t0)
	ring := newTestRing(t, c, testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	foreign := newTestSealer(t, Config{Ring: newTestRing(t, c, testSecret(2))})

	t.Run("unknown master", func(t *testing.T) {
		v, _ := foreign.Seal(Session, []byte("x"))
		if _, _, err := s.Open(Session, v); err != ErrInvalid {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("stale after rollover", func(t *testing.T) {
		v, _ := s.Seal(Session, []byte("x"))
		c.add(2 * time.Second)
		got, stale, err := s.Open(Session, v)
		if err != nil || !stale || string(got) != "x" {
			t.Fatalf("got %q stale=%v err=%v", got, stale, err)
		}
		v2, _ := s.Seal(Session, got)
		if _, stale, err := s.Open(Session, v2); err != nil || stale {
			t.Fatalf("re-sealed value: stale=%v err=%v", stale, err)
		}
		c.add(20 * time.Second)
		if _, _, err := s.Open(Session, v); err != ErrInvalid {
			t.Fatalf("value older than the window opened: %v", err)
		}
	})
	t.Run("rotated master", func(t *testing.T) {
		v, _ := s.Seal(Session, []byte("x"))
		if err := ring.Reload([][]byte{testSecret(3), testSecret(1)}); err != nil {
			t.Fatal(err)
		}
		if _, stale, err := s.Open(Session, v); err != nil || !stale {
			t.Fatalf("stale=%v err=%v", stale, err)
		}
		if err := ring.Reload([][]byte{testSecret(3)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Open(Session, v); err != ErrInvalid {
			t.Fatalf("removed master still opens: %v", err)
		}
	})
}

// sealedParts returns the parts after the header of a fresh sealed value.
func sealedParts(t *testing.T, s *Sealer) (hdr, rest string) {
	t.Helper()
	v, err := s.Seal(Session, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	hdr, rest, _ = strings.Cut(v, ".")
	return hdr, "." + rest
}

func TestHeaderTricks(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	kid := ring.Sealing().ID
	hdr, rest := sealedParts(t, s)
	if _, _, err := s.Open(Session, hdr+rest); err != nil {
		t.Fatal(err)
	}
	pbes2 := `{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":2147483647,"p2s":"` + b64("saltsaltsaltsalt") + `","kid":"` + kid + `","cty":"session"}`
	tests := []struct {
		name string
		json string
		rest string
	}{
		{"alg none", `{"alg":"none","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, rest},
		{"alg RSA-OAEP", `{"alg":"RSA-OAEP","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, ".AAAA" + rest[1:]},
		{"alg PBES2 huge p2c", pbes2, ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + rest[1:]},
		{"alg PBES2 huge p2c empty key", pbes2, rest},
		{"alg A256KW", `{"alg":"A256KW","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, rest},
		{"enc A128GCM", `{"alg":"dir","enc":"A128GCM","kid":"` + kid + `","cty":"session"}`, rest},
		{"enc A256CBC-HS512", `{"alg":"dir","enc":"A256CBC-HS512","kid":"` + kid + `","cty":"session"}`, rest},
		{"zip header", `{"alg":"dir","enc":"A256GCM","zip":"DEF","kid":"` + kid + `","cty":"session"}`, rest},
		{"crit header", `{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1,"kid":"` + kid + `","cty":"session"}`, rest},
		{"missing kid", `{"alg":"dir","enc":"A256GCM","cty":"session"}`, rest},
		{"empty kid", `{"alg":"dir","enc":"A256GCM","kid":"","cty":"session"}`, rest},
		{"missing cty", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `"}`, rest},
		{"wrong cty", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"login"}`, rest},
		{"duplicate cty", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"login","cty":"session"}`, rest},
		{"duplicate alg", `{"alg":"none","alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, rest},
		{"extra member", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"session","typ":"JWE"}`, rest},
		{"jku", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"session","jku":"https://evil.example"}`, rest},
		{"kid number", `{"alg":"dir","enc":"A256GCM","kid":1,"cty":"session"}`, rest},
		{"kid path", `{"alg":"dir","enc":"A256GCM","kid":"../../etc/passwd","cty":"session"}`, rest},
		{"nested object", `{"alg":"dir","enc":"A256GCM","kid":{"a":1},"cty":"session"}`, rest},
		{"array", `["alg","dir"]`, rest},
		{"trailing data", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"session"}{}`, rest},
		{"not json", `alg=dir`, rest},
		{"case folded name", `{"Alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, rest},
		{"reordered members", `{"enc":"A256GCM","alg":"dir","kid":"` + kid + `","cty":"session"}`, rest},
		{"same header with spaces", `{"alg": "dir","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, rest},
		{"encrypted key present", string(mustDecode(hdr)), ".AAAA" + rest[1:]},
		{"empty iv", string(mustDecode(hdr)), ".." + strings.SplitN(rest, ".", 4)[3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, _, err := s.Open(Session, b64(tt.json)+tt.rest)
			if err != ErrInvalid {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// TestAuthenticHeaderTricks seals values with go-jose directly under the right
// key and kid, with headers Seal never writes: Open must still refuse them.
func TestAuthenticHeaderTricks(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	key := ring.Sealing()
	tests := []struct {
		name string
		opts *jose.EncrypterOptions
	}{
		{"zip DEF", (&jose.EncrypterOptions{Compression: jose.DEFLATE}).WithContentType("session")},
		{"typ", (&jose.EncrypterOptions{}).WithContentType("session").WithType("JWT")},
		{"crit", (&jose.EncrypterOptions{}).WithContentType("session").WithHeader("crit", []string{"x"}).WithHeader("x", 1)},
		{"no cty", &jose.EncrypterOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key.Secret, KeyID: key.ID}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := enc.Encrypt(encode([]byte("hello"), false))
			if err != nil {
				t.Fatal(err)
			}
			v, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Open(Session, v); err != ErrInvalid {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("control: plain go-jose value opens", func(t *testing.T) {
		enc, _ := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key.Secret, KeyID: key.ID},
			(&jose.EncrypterOptions{}).WithContentType("session"))
		obj, _ := enc.Encrypt(encode([]byte("hello"), false))
		v, _ := obj.CompactSerialize()
		if got, _, err := s.Open(Session, v); err != nil || string(got) != "hello" {
			t.Fatalf("got %q, err = %v", got, err)
		}
	})
}

func TestBodyFormat(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	deflate := func(data []byte) []byte {
		var buf bytes.Buffer
		buf.WriteByte(formatDeflate)
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		w.Write(data)
		w.Close()
		return buf.Bytes()
	}
	bomb := deflate(make([]byte, 8<<20)) // 8 MiB of zeros in about 8 KB
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"raw", []byte{formatRaw, 'h', 'i'}, true},
		{"deflate at limit", deflate(make([]byte, 64<<10)), true},
		{"deflate one over limit", deflate(make([]byte, 64<<10+1)), false},
		{"decompression bomb", bomb, false},
		{"empty body", []byte{}, false},
		{"unknown format", []byte{2, 'h', 'i'}, false},
		{"format 0xff", []byte{0xff}, false},
		{"corrupt deflate", []byte{formatDeflate, 0xff, 0xff, 0xff}, false},
		{"truncated deflate", deflate(tokenPlaintext(5))[:100], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			big := newTestSealer(t, Config{Ring: ring, MaxSealed: 1 << 20})
			v, err := big.sealBody(Session, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, _, err = big.Open(Session, v)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && err != ErrInvalid {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// There is no broken-randomness test, on purpose: a test that can only skip
// proves nothing. go-jose draws the AES-GCM nonce from an unexported reader
// (symmetric.go's randReader, crypto/rand.Reader), and since Go 1.24
// crypto/rand never returns an error (the runtime aborts instead), so a
// failing source cannot be injected nor can it happen. What can be checked
// is that nonces do not repeat: TestNoncesDiffer.

func BenchmarkSeal(b *testing.B) {
	s := newTestSealer(b, Config{Ring: newTestRing(b, newClock(t0), testSecret(1))})
	pt := tokenPlaintext(1)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(Session, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := newTestSealer(b, Config{Ring: newTestRing(b, newClock(t0), testSecret(1))})
	pt := tokenPlaintext(1)
	v, err := s.Seal(Session, pt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Open(Session, v); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConcurrentSealOpen(t *testing.T) {
	c := newClock(t0)
	ring := newTestRing(t, c, testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	done := make(chan struct{})
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			pt := tokenPlaintext(uint64(g))
			for i := 0; i < 50; i++ {
				v, err := s.Seal(Session, pt)
				if err == nil {
					var got []byte
					got, _, err = s.Open(Session, v)
					if err == nil && !bytes.Equal(got, pt) {
						err = errors.New("plaintext differs")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		for i := 0; i < 20; i++ {
			// Every master that may have sealed stays in the ring.
			first := byte(2 + i%3)
			secrets := [][]byte{testSecret(first)}
			for b := byte(1); b <= 4; b++ {
				if b != first {
					secrets = append(secrets, testSecret(b))
				}
			}
			if err := ring.Reload(secrets); err != nil {
				t.Error(err)
			}
		}
		close(done)
	}()
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
}
