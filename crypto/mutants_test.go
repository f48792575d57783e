package crypto

// Tests that pin the edges mutation testing (tools/mutation.sh) found
// unguarded: each fails when one comparison, constant or operator of the
// code is changed. Survivors that cannot change behaviour are listed, with
// the reason, in tools/mutation/EQUIVALENT.

import (
	"bytes"
	"compress/flate"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCookieNameCharacters: a cookie name is an RFC 7230 token. The edges
// are the space below '!', DEL above '~', and every separator, the first of
// the list ('(') included.
func TestCookieNameCharacters(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a!b", true}, // 0x21, the first token character
		{"a~b", true}, // 0x7e, the last
		{"a#b", true},
		{"a b", false},    // 0x20
		{"a\x1fb", false}, // control
		{"a\x7fb", false}, // DEL
		{"a\x80b", false}, // not ASCII
		{"a\xffb", false},
	}
	for _, c := range "()<>@,;:\\\"/[]?={}" {
		tests = append(tests, struct {
			name string
			ok   bool
		}{"a" + string(c) + "b", false})
	}
	for _, tt := range tests {
		_, err := NewChunker(ChunkConfig{Name: tt.name})
		if (err == nil) != tt.ok {
			t.Errorf("NewChunker(Name: %q): err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestCookieValueCharacters: Write and Read take exactly the RFC 6265
// cookie-octets, %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E: each end of
// each range is accepted, each character just outside is refused.
func TestCookieValueCharacters(t *testing.T) {
	tests := []struct {
		c  byte
		ok bool
	}{
		{0x21, true}, // !
		{0x23, true}, // #
		{0x2b, true}, // +
		{0x2d, true}, // -
		{0x3a, true}, // :
		{0x3c, true}, // <
		{0x5b, true}, // [
		{0x5d, true}, // ]
		{0x7e, true}, // ~
		{0x20, false},
		{0x22, false}, // "
		{0x2c, false}, // ,
		{0x3b, false}, // ;
		{0x5c, false}, // \
		{0x7f, false},
		{0x80, false},
		{0x09, false},
	}
	c := newTestChunker(t, ChunkConfig{})
	for _, tt := range tests {
		v := "a" + string([]byte{tt.c}) + "b"
		h := http.Header{}
		err := c.Write(h, nil, v)
		if (err == nil) != tt.ok {
			t.Errorf("Write(%q): err = %v, want ok=%v", v, err, tt.ok)
		}
		if tt.c == ';' {
			continue // a separator in a Cookie header, not part of a value
		}
		got, err := c.Read(cookieRequest(testName + ".0=" + v))
		if tt.ok && (err != nil || got != v) {
			t.Errorf("Read(%q) = %q, %v", v, got, err)
		}
		if !tt.ok && err != ErrInvalid {
			t.Errorf("Read(%q) = %q, %v; want ErrInvalid", v, got, err)
		}
	}
}

// TestCompressionThreshold: a plaintext is compressed from minCompress (64)
// bytes on, which shows in the sealed size.
func TestCompressionThreshold(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	on := newTestSealer(t, Config{Ring: ring})
	off := newTestSealer(t, Config{Ring: ring, DisableCompression: true})
	for _, tt := range []struct {
		n          int
		compressed bool
	}{{minCompress - 1, false}, {minCompress, true}, {minCompress + 1, true}} {
		pt := bytes.Repeat([]byte("a"), tt.n)
		a, err := on.Seal(Session, pt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := off.Seal(Session, pt)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(a) < len(b); got != tt.compressed {
			t.Errorf("%d bytes: sealed %d compressed, %d raw; want compressed=%v", tt.n, len(a), len(b), tt.compressed)
		}
		if got, _, err := on.Open(Session, a); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d bytes: open: %q, %v", tt.n, got, err)
		}
	}
}

// TestCompressOnlyWhenShorter: a DEFLATE stream exactly as long as the
// plaintext gains nothing, so the body is stored raw; one byte shorter and
// it is stored compressed.
func TestCompressOnlyWhenShorter(t *testing.T) {
	deflated := func(p []byte) int {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
		w.Write(p)
		w.Close()
		return buf.Len()
	}
	// k compressible bytes then random ones: search for a tie and a win.
	var tie, win []byte
	for n := minCompress; n < 200 && (tie == nil || win == nil); n++ {
		tail := randomBytes(n)
		for k := 0; k < n && (tie == nil || win == nil); k++ {
			p := append(bytes.Repeat([]byte("a"), k), tail[k:]...)
			switch d := deflated(p); {
			case d == len(p) && tie == nil:
				tie = p
			case d == len(p)-1 && win == nil:
				win = p
			}
		}
	}
	if tie == nil || win == nil {
		t.Fatal("no plaintext whose DEFLATE stream is as long as it, or one byte shorter")
	}
	if body := encode(tie, true); body[0] != formatRaw || len(body) != 1+len(tie) {
		t.Errorf("stream as long as the plaintext: format %d, %d bytes; want raw", body[0], len(body))
	}
	if body := encode(win, true); body[0] != formatDeflate || len(body) != len(win) {
		t.Errorf("stream one byte shorter: format %d, %d bytes; want deflate, %d", body[0], len(body), len(win))
	}
}

// TestCompressMemory: compressing reserves about half the plaintext for the
// output, which a compressible session fills with a few bytes; never more
// than the plaintext itself. (The capacity of the body encode returns is
// what it reserved; an allocation count would not do, as sync.Pool drops
// the pooled writer at random under the race detector.)
func TestCompressMemory(t *testing.T) {
	for _, n := range []int{1 << 10, 4 << 10, 64 << 10} {
		p := bytes.Repeat([]byte("0123456789abcdef"), n/16)
		body := encode(p, true)
		if body[0] != formatDeflate {
			t.Fatalf("%d bytes: not compressed", n)
		}
		if cap(body) >= n {
			t.Errorf("%d bytes compressed to %d reserve %d", n, len(body), cap(body))
		}
	}
}

// TestEmptyDeflateStream: a body that is only the DEFLATE format byte is
// refused, not a panic.
func TestEmptyDeflateStream(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	v, err := s.sealBody(Session, []byte{formatDeflate})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Open(Session, v); err != ErrInvalid {
		t.Fatalf("Open = %q, %v; want ErrInvalid", got, err)
	}
}

// TestHeaderLengthLimit: a protected header of maxHeaderLen characters is
// read; a longer one is not.
func TestHeaderLengthLimit(t *testing.T) {
	json := func(kidLen int) string {
		return `{"alg":"dir","enc":"A256GCM","kid":"` + strings.Repeat("k", kidLen) + `","cty":"session"}`
	}
	// maxHeaderLen (512) base64 characters hold 384 bytes of JSON.
	atLimit := maxHeaderLen*3/4 - len(json(0))
	for _, tt := range []struct {
		kidLen int
		ok     bool
	}{{atLimit - 1, true}, {atLimit, true}, {atLimit + 1, false}} {
		h := b64(json(tt.kidLen))
		if tt.kidLen == atLimit && len(h) != maxHeaderLen {
			t.Fatalf("header is %d characters, want %d", len(h), maxHeaderLen)
		}
		got := KeyID(h + "..iv.ct.tag")
		if want := strings.Repeat("k", tt.kidLen); (got == want) != tt.ok || (!tt.ok && got != "") {
			t.Errorf("%d-character header: KeyID = %q, want ok=%v", len(h), got, tt.ok)
		}
	}
}

// TestPurposeCharacters: a purpose is 1 to 32 characters of a-z, 0-9, '-',
// '_' and '.'; it seals and opens. Anything else is refused by both.
func TestPurposeCharacters(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	tests := []struct {
		p  Purpose
		ok bool
	}{
		{"a", true}, {"z", true}, {"0", true}, {"9", true},
		{"-", true}, {"_", true}, {".", true}, {"a-z_0.9", true},
		{Purpose(strings.Repeat("x", 32)), true},
		{Purpose(strings.Repeat("x", 33)), false},
		{"", false},
		{"`", false}, {"{", false}, // around a-z
		{"/", false}, {":", false}, // around 0-9
		{"A", false}, {"Z", false}, {" ", false}, {"é", false},
	}
	for _, tt := range tests {
		v, err := s.Seal(tt.p, []byte("x"))
		if (err == nil) != tt.ok {
			t.Errorf("Seal(%q): err = %v, want ok=%v", tt.p, err, tt.ok)
		}
		if !tt.ok {
			// A value whose cty is the purpose, sealed with the right key,
			// still does not open as it.
			v = sealAs(t, s, string(tt.p))
		}
		if _, _, err := s.Open(tt.p, v); (err == nil) != tt.ok {
			t.Errorf("Open(%q): err = %v, want ok=%v", tt.p, err, tt.ok)
		}
	}
}

// sealAs seals "x" like Seal, with cty set to p whatever it is.
func sealAs(t *testing.T, s *Sealer, p string) string {
	t.Helper()
	v, err := s.sealBody(Purpose(p), []byte{formatRaw, 'x'})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSealedLengthLimit: a sealed value of exactly MaxSealed characters is
// written by Seal and read by Open; one more and both refuse it.
func TestSealedLengthLimit(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	pt := randomBytes(300)
	v, err := newTestSealer(t, Config{Ring: ring, DisableCompression: true}).Seal(Session, pt)
	if err != nil {
		t.Fatal(err)
	}
	n := len(v) // the same for every seal of 300 raw bytes under one key
	for _, tt := range []struct {
		limit int
		ok    bool
	}{{n + 1, true}, {n, true}, {n - 1, false}} {
		s := newTestSealer(t, Config{Ring: ring, DisableCompression: true, MaxSealed: tt.limit})
		w, err := s.Seal(Session, pt)
		if tt.ok && (err != nil || len(w) != n) {
			t.Errorf("MaxSealed %d: Seal gave %d characters, err = %v", tt.limit, len(w), err)
		}
		var tl *TooLargeError
		if !tt.ok && (!errors.As(err, &tl) || tl.Size != n || tl.Limit != tt.limit) {
			t.Errorf("MaxSealed %d: Seal err = %v, want a *TooLargeError of %d", tt.limit, err, n)
		}
		if got, _, err := s.Open(Session, v); tt.ok != (err == nil && bytes.Equal(got, pt)) {
			t.Errorf("MaxSealed %d: Open of %d characters: err = %v, want ok=%v", tt.limit, n, err, tt.ok)
		}
	}
}

// TestOpenRefusesLineBreaks: base64 decoders skip CR and LF, so a sealed
// value with line breaks slipped into a part would decode to the same JWE.
// It is not the value sealed, and does not open.
func TestOpenRefusesLineBreaks(t *testing.T) {
	ring := newTestRing(t, newClock(t0), testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	v, err := s.Seal(Session, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(Session, v); err != nil {
		t.Fatal(err) // positive control
	}
	parts := strings.Split(v, ".")
	for i, part := range parts {
		if part == "" {
			continue
		}
		// Four characters keep the part's length modulo 4.
		for _, ins := range []string{"\n\n\n\n", "\r\n\r\n", "\r\r\r\r"} {
			mid := len(part) / 2
			p := append([]string(nil), parts...)
			p[i] = part[:mid] + ins + part[mid:]
			w := strings.Join(p, ".")
			if got, _, err := s.Open(Session, w); err != ErrInvalid {
				t.Errorf("part %d with %q inserted: Open = %q, %v; want ErrInvalid", i, ins, got, err)
			}
		}
	}
}

// TestOpenedKey: what OpenedKey says of a value's kid is what Open would
// say of the value (opens, stale) as keys roll over, expire and are
// removed: a cache of opened values relies on it.
func TestOpenedKey(t *testing.T) {
	c := newClock(t0)
	ring := newTestRing(t, c, testSecret(1))
	s := newTestSealer(t, Config{Ring: ring})
	v, err := s.Seal(Session, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	kid := KeyID(v)
	steps := []struct {
		name      string
		change    func()
		ok, stale bool
	}{
		{"fresh", func() {}, true, false},
		{"after rollover", func() { c.add(2 * time.Second) }, true, true},
		{"master rotated", func() {
			if err := ring.Reload([][]byte{testSecret(3), testSecret(1)}); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"master removed", func() {
			if err := ring.Reload([][]byte{testSecret(3)}); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"master back, value past the window", func() {
			if err := ring.Reload([][]byte{testSecret(3), testSecret(1)}); err != nil {
				t.Fatal(err)
			}
			c.add(20 * time.Second)
		}, false, false},
	}
	for _, st := range steps {
		st.change()
		ok, stale := s.OpenedKey(kid)
		if ok != st.ok || stale != st.stale {
			t.Errorf("%s: OpenedKey = %v, %v; want %v, %v", st.name, ok, stale, st.ok, st.stale)
		}
		_, openStale, err := s.Open(Session, v)
		if (err == nil) != ok || openStale != stale {
			t.Errorf("%s: Open stale=%v err=%v, OpenedKey %v, %v", st.name, openStale, err, ok, stale)
		}
	}
	if ok, stale := s.OpenedKey("no-such-kid"); ok || stale {
		t.Errorf("unknown kid: OpenedKey = %v, %v", ok, stale)
	}
}

// TestMaxAgeCap: the longest Max-Age written is 400 days (34560000 s), the
// most a browser keeps a cookie; a longer one is written as that, a shorter
// one as it is.
func TestMaxAgeCap(t *testing.T) {
	const days400 = "Max-Age=34560000;"
	for _, tt := range []struct {
		maxAge int
		want   string
	}{
		{34560000 - 1, "Max-Age=34559999;"},
		{34560000, days400},
		{34560000 + 1, days400},
		{1 << 40, days400},
	} {
		c := newTestChunker(t, ChunkConfig{})
		h := http.Header{}
		if err := c.WriteMaxAge(h, nil, "v", tt.maxAge); err != nil {
			t.Fatal(err)
		}
		if got := h.Get("Set-Cookie"); !strings.Contains(got, "; "+tt.want) {
			t.Errorf("WriteMaxAge(%d): %q, want %s", tt.maxAge, got, tt.want)
		}
		c = newTestChunker(t, ChunkConfig{MaxAge: tt.maxAge})
		h = http.Header{}
		if err := c.Write(h, nil, "v"); err != nil {
			t.Fatal(err)
		}
		if got := h.Get("Set-Cookie"); !strings.Contains(got, "; "+tt.want) {
			t.Errorf("MaxAge %d: %q, want %s", tt.maxAge, got, tt.want)
		}
	}
}
