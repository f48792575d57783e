package crypto

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

const testName = "__Host-Http-bff"

func newTestChunker(tb testing.TB, cfg ChunkConfig) *Chunker {
	tb.Helper()
	if cfg.Name == "" {
		cfg.Name = testName
	}
	c, err := NewChunker(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// value returns n characters of a JWE-like cookie value.
func value(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[(i*7+i/13)%len(chars)]
	}
	return string(b)
}

func TestNewChunker(t *testing.T) {
	tests := []struct {
		name string
		cfg  ChunkConfig
		ok   bool
	}{
		{"defaults", ChunkConfig{Name: testName}, true},
		{"empty name", ChunkConfig{}, false},
		{"space in name", ChunkConfig{Name: "a b"}, false},
		{"semicolon in name", ChunkConfig{Name: "a;b"}, false},
		{"equals in name", ChunkConfig{Name: "a=b"}, false},
		{"non-ascii name", ChunkConfig{Name: "café"}, false},
		{"control in name", ChunkConfig{Name: "a\x01"}, false},
		{"too many chunks", ChunkConfig{Name: "a", MaxChunks: 101}, false},
		{"negative chunks", ChunkConfig{Name: "a", MaxChunks: -1}, false},
		{"no room", ChunkConfig{Name: "a", MaxCookieSize: 40}, false},
		// 6 bytes of room without Max-Age, none with the longest one.
		{"no room for the longest max age", ChunkConfig{Name: "a", MaxCookieSize: 50}, false},
		{"room for the longest max age", ChunkConfig{Name: "a", MaxCookieSize: 70}, true},
		{"negative max age", ChunkConfig{Name: "a", MaxAge: -1}, false},
		{"same site default mode", ChunkConfig{Name: "a", SameSite: http.SameSiteDefaultMode}, false},
		{"strict", ChunkConfig{Name: "a", SameSite: http.SameSiteStrictMode}, true},
		{"none", ChunkConfig{Name: "a", SameSite: http.SameSiteNoneMode}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewChunker(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestWriteAttributes(t *testing.T) {
	tests := []struct {
		name string
		cfg  ChunkConfig
		want string
	}{
		{"lax session cookie", ChunkConfig{}, testName + ".0=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"strict with max age", ChunkConfig{SameSite: http.SameSiteStrictMode, MaxAge: 600}, testName + ".0=v; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Strict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChunker(t, tt.cfg)
			h := http.Header{}
			if err := c.Write(h, cookieRequest(), "v"); err != nil {
				t.Fatal(err)
			}
			got := h.Values("Set-Cookie")
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("Set-Cookie = %q, want %q", got, tt.want)
			}
			ck, err := http.ParseSetCookie(got[0])
			if err != nil {
				t.Fatal(err)
			}
			if !ck.HttpOnly || !ck.Secure || ck.Path != "/" || ck.Domain != "" || ck.Value != "v" {
				t.Fatalf("parsed %+v", ck)
			}
		})
	}
}

func TestChunkRoundTrip(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{MaxAge: 28800})
	room0, room1 := c.room(0), c.room(1)
	sizes := []int{1, room0 - 1, room0, room0 + 1, room0 + room1 - 1, room0 + room1, room0 + room1 + 1, c.capacity - 1, c.capacity}
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			v := value(n)
			h := http.Header{}
			if err := c.Write(h, cookieRequest(), v); err != nil {
				t.Fatal(err)
			}
			lines := h.Values("Set-Cookie")
			wantChunks := 1
			for left := n - room0; left > 0; left -= room1 {
				wantChunks++
			}
			if len(lines) != wantChunks {
				t.Fatalf("%d Set-Cookie lines, want %d", len(lines), wantChunks)
			}
			for i, line := range lines {
				if len(line) > DefaultMaxCookieSize {
					t.Fatalf("chunk %d is %d bytes", i, len(line))
				}
				if !strings.HasPrefix(line, testName+"."+strconv.Itoa(i)+"=") {
					t.Fatalf("chunk %d named %q", i, line[:20])
				}
			}
			got, err := c.Read(replay(h))
			if err != nil {
				t.Fatal(err)
			}
			if got != v {
				t.Fatal("value differs")
			}
		})
	}
	t.Run("full chunk is exactly the size limit", func(t *testing.T) {
		h := http.Header{}
		if err := c.Write(h, cookieRequest(), value(room0)); err != nil {
			t.Fatal(err)
		}
		if n := len(h.Values("Set-Cookie")[0]); n != DefaultMaxCookieSize {
			t.Fatalf("full chunk is %d bytes, want %d", n, DefaultMaxCookieSize)
		}
	})
}

func TestWriteTooLarge(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{})
	h := http.Header{}
	r := cookieRequest(testName+".0=old", testName+".1=old")
	err := c.Write(h, r, value(c.capacity+1))
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want *TooLargeError", err)
	}
	if tl.Size != c.capacity+1 || tl.Limit != c.capacity {
		t.Fatalf("Size %d Limit %d", tl.Size, tl.Limit)
	}
	if len(h) != 0 {
		t.Fatalf("wrote headers: %v", h)
	}
	for _, bad := range []string{"", "a b", "a;b", "a,b", `a"b`, "a\\b", "é"} {
		if err := c.Write(h, r, bad); err == nil || errors.Is(err, ErrTooLarge) {
			t.Fatalf("Write(%q) err = %v", bad, err)
		}
	}
	if len(h) != 0 {
		t.Fatalf("wrote headers: %v", h)
	}
}

func TestWriteDeletesStaleChunks(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{})
	r := cookieRequest(
		testName+".0=a", testName+".1=b", testName+".2=c", testName+".3=d",
		testName+".01=x", testName+"-login.ab12=keep", "other=keep",
	)
	h := http.Header{}
	v := value(c.room(0) + 10) // two chunks
	if err := c.Write(h, r, v); err != nil {
		t.Fatal(err)
	}
	var set, deleted []string
	for _, line := range h.Values("Set-Cookie") {
		name, _, _ := strings.Cut(line, "=")
		if strings.Contains(line, "Max-Age=0") {
			deleted = append(deleted, name)
			if !strings.HasSuffix(line, "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax") {
				t.Fatalf("deletion %q", line)
			}
		} else {
			set = append(set, name)
		}
	}
	wantSet := []string{testName + ".0", testName + ".1"}
	wantDel := []string{testName + ".2", testName + ".3", testName + ".01"}
	if strings.Join(set, ",") != strings.Join(wantSet, ",") || strings.Join(deleted, ",") != strings.Join(wantDel, ",") {
		t.Fatalf("set %v deleted %v, want %v and %v", set, deleted, wantSet, wantDel)
	}
}

func TestRead(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{})
	n := testName
	long := value(c.room(0) + 1)
	tests := []struct {
		name    string
		cookies []string
		want    string
		err     error
	}{
		{"none", nil, "", ErrNoCookie},
		{"only other cookies", []string{"a=b", n + "=x", n + "-login.ab12=y"}, "", ErrNoCookie},
		{"one chunk", []string{n + ".0=abc"}, "abc", nil},
		{"in order", []string{n + ".0=abc", n + ".1=def", n + ".2=g"}, "abcdefg", nil},
		{"reordered", []string{n + ".2=g", n + ".0=abc", n + ".1=def"}, "abcdefg", nil},
		{"among other cookies", []string{"x=1", n + ".1=def", n + "-login.ab12=zz", n + ".0=abc", n + "=old"}, "abcdef", nil},
		{"login cookie is not a chunk", []string{n + "-login.0=zz", n + ".0=abc"}, "abc", nil},
		{"gap", []string{n + ".0=abc", n + ".2=g"}, "", ErrInvalid},
		{"missing first", []string{n + ".1=def"}, "", ErrInvalid},
		{"duplicate", []string{n + ".0=abc", n + ".1=def", n + ".0=abc"}, "", ErrInvalid},
		{"index at max chunks", []string{n + ".0=a", n + ".1=b", n + ".2=c", n + ".3=d", n + ".4=e"}, "", ErrInvalid},
		{"large index", []string{n + ".0=a", n + ".99999999999999999999=b"}, "", ErrInvalid},
		{"leading zero", []string{n + ".0=a", n + ".01=b"}, "", ErrInvalid},
		{"plus sign", []string{n + ".0=a", n + ".+1=b"}, "", ErrInvalid},
		{"minus zero", []string{n + ".-0=a"}, "", ErrInvalid},
		{"letters", []string{n + ".0=a", n + ".x=b"}, "", ErrInvalid},
		{"empty suffix", []string{n + ".=a"}, "", ErrInvalid},
		{"empty chunk", []string{n + ".0=abc", n + ".1="}, "", ErrInvalid},
		{"chunk over size limit", []string{n + ".0=" + long}, "", ErrInvalid},
		{"quoted value", []string{n + `.0="abc"`}, "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Read(cookieRequest(tt.cookies...))
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("chunks split over two Cookie headers", func(t *testing.T) {
		r := cookieRequest(n + ".1=def")
		r.Header.Add("Cookie", n+".0=abc")
		if got, err := c.Read(r); err != nil || got != "abcdef" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
}

func TestClearAndNames(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{SameSite: http.SameSiteStrictMode})
	n := testName
	r := cookieRequest(n+".2=c", "x=1", n+".0=a", n+".01=z", n+"-login.ab12=l", n+".2=c")
	names := c.Names(r)
	if want := n + ".2," + n + ".0," + n + ".01"; strings.Join(names, ",") != want {
		t.Fatalf("Names = %v, want %s", names, want)
	}
	h := http.Header{}
	c.Clear(h, r)
	want := []string{
		n + ".0=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
		n + ".2=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
		n + ".01=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
	}
	if got := h.Values("Set-Cookie"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Clear wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range want {
		ck, err := http.ParseSetCookie(line)
		if err != nil || ck.MaxAge >= 0 {
			t.Fatalf("%q parses to MaxAge %d (%v), want a deletion", line, ck.MaxAge, err)
		}
	}
	h = http.Header{}
	c.Clear(h, cookieRequest())
	if len(h.Values("Set-Cookie")) != 1 {
		t.Fatalf("Clear on an empty request wrote %v", h)
	}
	if len(c.Names(cookieRequest("x=1"))) != 0 {
		t.Fatal("Names found cookies that are not ours")
	}
}

func TestIsChunkName(t *testing.T) {
	tests := []struct {
		base, name string
		want       bool
	}{
		{testName, testName + ".0", true},
		{testName, testName + ".3", true},
		{testName, testName + ".12", true},
		{testName, testName, false},
		{testName, testName + ".", false},
		{testName, testName + ".01", false},
		{testName, testName + ".+1", false},
		{testName, testName + ".-1", false},
		{testName, testName + ".1a", false},
		{testName, testName + ".1234", false},
		{testName, testName + "-login.ab12", false},
		{testName, testName + "-login.0", false},
		{testName, "x" + testName + ".0", false},
		{"", ".0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsChunkName(tt.base, tt.name); got != tt.want {
				t.Fatalf("IsChunkName(%q, %q) = %v", tt.base, tt.name, got)
			}
		})
	}
}

func TestSealAndChunk(t *testing.T) {
	s := newTestSealer(t, Config{Ring: newTestRing(t, newClock(t0), testSecret(1)), DisableCompression: true})
	c := newTestChunker(t, ChunkConfig{})
	pt := append(tokenPlaintext(6), tokenPlaintext(7)...)
	sealed, err := s.Seal(Session, pt)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := c.Write(h, cookieRequest(), sealed); err != nil {
		t.Fatal(err)
	}
	if len(h.Values("Set-Cookie")) < 2 {
		t.Fatalf("expected several chunks for %d bytes", len(sealed))
	}
	got, err := c.Read(replay(h))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(Session, got); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkChunkWrite(b *testing.B) {
	c := newTestChunker(b, ChunkConfig{})
	v := value(6000)
	r := cookieRequest(testName+".0=a", testName+".1=b", testName+".2=c")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(http.Header{}, r, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkRead(b *testing.B) {
	c := newTestChunker(b, ChunkConfig{})
	h := http.Header{}
	if err := c.Write(h, cookieRequest(), value(6000)); err != nil {
		b.Fatal(err)
	}
	r := replay(h)
	r.Header.Set("Cookie", r.Header.Get("Cookie")+"; other=1; "+testName+"-login.ab12=x")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Read(r); err != nil {
			b.Fatal(err)
		}
	}
}

// A second Write (or a Clear) in the same response replaces the first: the
// response carries one final value, never two NAME.0 cookies.
func TestWriteReplacesPending(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{Name: "__Host-Http-bff"})
	h := http.Header{}
	h.Add("Set-Cookie", "app=1; Path=/")
	r := cookieRequest()
	if err := c.Write(h, r, strings.Repeat("a", 5000)); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(h, r, "second"); err != nil {
		t.Fatal(err)
	}
	got := (&http.Response{Header: h}).Cookies()
	if len(got) != 2 || got[0].Name != "app" || got[1].Name != "__Host-Http-bff.0" || got[1].Value != "second" {
		t.Fatalf("after two writes: %v", h["Set-Cookie"])
	}
	c.Clear(h, r)
	got = (&http.Response{Header: h}).Cookies()
	if len(got) != 2 || got[1].MaxAge >= 0 {
		t.Fatalf("after write then clear: %v", h["Set-Cookie"])
	}
}

// WriteMaxAge gives every chunk of this write its own Max-Age, whatever the
// chunker's configured one; deletions stay Max-Age=0.
func TestWriteMaxAge(t *testing.T) {
	tests := []struct {
		name   string
		cfg    ChunkConfig
		maxAge int
		want   int // parsed Max-Age of every chunk
	}{
		{"browser-session chunker", ChunkConfig{}, 28799, 28799},
		{"overrides the configured max age", ChunkConfig{MaxAge: 600}, 3600, 3600},
		{"one second", ChunkConfig{}, 1, 1},
		{"capped at 400 days", ChunkConfig{}, MaxMaxAge + 1, MaxMaxAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChunker(t, tt.cfg)
			h := http.Header{}
			r := cookieRequest(testName+".0=a", testName+".1=b", testName+".2=c")
			if err := c.WriteMaxAge(h, r, value(c.room(0)+10), tt.maxAge); err != nil {
				t.Fatal(err)
			}
			set, deleted := 0, 0
			for _, line := range h.Values("Set-Cookie") {
				ck, err := http.ParseSetCookie(line)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case ck.MaxAge < 0:
					deleted++
				case ck.MaxAge != tt.want:
					t.Errorf("%s: Max-Age %d, want %d", ck.Name, ck.MaxAge, tt.want)
				default:
					set++
				}
			}
			if set != 2 || deleted != 1 {
				t.Fatalf("set %d chunks and deleted %d, want 2 and 1:\n%s", set, deleted, strings.Join(h.Values("Set-Cookie"), "\n"))
			}
		})
	}
	t.Run("write without max age is a browser-session cookie", func(t *testing.T) {
		// The positive control of the above: Write on the same chunker.
		c := newTestChunker(t, ChunkConfig{})
		h := http.Header{}
		if err := c.Write(h, cookieRequest(), "v"); err != nil {
			t.Fatal(err)
		}
		if line := h.Get("Set-Cookie"); strings.Contains(line, "Max-Age") {
			t.Fatalf("Write set %q", line)
		}
	})
	t.Run("not positive", func(t *testing.T) {
		c := newTestChunker(t, ChunkConfig{})
		for _, maxAge := range []int{0, -1} {
			h := http.Header{}
			if err := c.WriteMaxAge(h, cookieRequest(), "v", maxAge); err == nil || len(h) != 0 {
				t.Fatalf("WriteMaxAge(%d): err %v, wrote %v", maxAge, err, h)
			}
		}
	})
}

// The Max-Age attribute takes room from the value: with the longest Max-Age,
// every chunk still fits in 4,000 bytes, a full one exactly, the value reads
// back, and a value that fills Write's capacity is too large.
func TestWriteMaxAgeCapacity(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{})
	capacity := c.capacityWith(len(c.attrsFor(MaxMaxAge)))
	if capacity >= c.capacity {
		t.Fatalf("capacity with Max-Age %d, without %d: the attribute takes no room", capacity, c.capacity)
	}
	for _, maxAge := range []int{1, 28800, MaxMaxAge} {
		t.Run(strconv.Itoa(maxAge), func(t *testing.T) {
			v := value(capacity)
			h := http.Header{}
			if err := c.WriteMaxAge(h, cookieRequest(), v, maxAge); err != nil {
				t.Fatal(err)
			}
			lines := h.Values("Set-Cookie")
			if len(lines) != DefaultMaxChunks {
				t.Fatalf("%d chunks, want %d", len(lines), DefaultMaxChunks)
			}
			for i, line := range lines {
				if len(line) > DefaultMaxCookieSize {
					t.Fatalf("chunk %d is %d bytes", i, len(line))
				}
				if maxAge == MaxMaxAge && len(line) != DefaultMaxCookieSize {
					t.Errorf("full chunk %d with the longest Max-Age is %d bytes, want %d", i, len(line), DefaultMaxCookieSize)
				}
			}
			if got, err := c.Read(replay(h)); err != nil || got != v {
				t.Fatalf("read back: %v", err)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		h := http.Header{}
		err := c.WriteMaxAge(h, cookieRequest(), value(c.capacity), MaxMaxAge)
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Limit != capacity || len(h) != 0 {
			t.Fatalf("err %v, wrote %v; want a *TooLargeError with limit %d", err, h, capacity)
		}
		// Positive control: Write fits the same value.
		if err := c.Write(http.Header{}, cookieRequest(), value(c.capacity)); err != nil {
			t.Fatal(err)
		}
	})
}

// Count is the number of chunks Write and WriteMaxAge set, at every size
// around the chunk boundaries.
func TestChunkCount(t *testing.T) {
	c := newTestChunker(t, ChunkConfig{})
	for _, maxAge := range []int{0, 3600, MaxMaxAge + 1} {
		attrs := c.attrs
		if maxAge > 0 {
			attrs = c.attrsFor(min(maxAge, MaxMaxAge))
		}
		var sizes []int
		for i, end := 0, 0; i < c.maxChunks; i++ {
			end += c.roomWith(i, len(attrs))
			sizes = append(sizes, end-1, end, end+1)
		}
		sizes = append(sizes, 1, 100)
		for _, n := range sizes {
			v := value(n)
			h := http.Header{}
			var err error
			if maxAge > 0 {
				err = c.WriteMaxAge(h, httptest.NewRequest("GET", "/", nil), v, maxAge)
			} else {
				err = c.Write(h, httptest.NewRequest("GET", "/", nil), v)
			}
			if err != nil {
				continue // over capacity: Count has nothing to agree with
			}
			if got, want := c.Count(v, maxAge), len(h["Set-Cookie"]); got != want {
				t.Errorf("maxAge %d, %d bytes: Count = %d, Write set %d chunks", maxAge, n, got, want)
			}
		}
	}
}
