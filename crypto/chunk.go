package crypto

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ErrNoCookie is returned by Chunker.Read when the request carries no chunk
// at all.
var ErrNoCookie = errors.New("crypto: no cookie")

// Chunker defaults.
const (
	DefaultMaxCookieSize = 4000
	DefaultMaxChunks     = 4
	// maxChunksLimit caps MaxChunks so an index has at most two digits.
	maxChunksLimit = 100
	// MaxMaxAge is the longest Max-Age written, in seconds: 400 days, the
	// most a browser keeps a cookie (RFC 6265bis caps Max-Age there). A
	// longer one is written as this. Its eight digits bound the length of the
	// Max-Age attribute, which every chunk leaves room for.
	MaxMaxAge = 400 * 24 * 60 * 60
)

// ChunkConfig configures a Chunker.
type ChunkConfig struct {
	// Name is the base cookie name, e.g. "__Host-Http-bff"; chunks are
	// Name+".0", Name+".1", ... Required; cookie token characters only.
	Name string
	// MaxCookieSize is the most bytes one Set-Cookie value may hold: name,
	// value and attributes together. Zero means 4000 (Safari's limit is 4093).
	MaxCookieSize int
	// MaxChunks is the most chunks written or read. Zero means 4.
	MaxChunks int
	// SameSite is the cookies' SameSite attribute: Lax, Strict or None. Zero
	// means Lax.
	SameSite http.SameSite
	// MaxAge is the Max-Age in seconds of the cookies Write sets (at most
	// MaxMaxAge). Zero writes browser-session cookies (no Max-Age).
	// WriteMaxAge sets its own per write.
	MaxAge int
}

// Chunker writes a value as one or more cookies and reads it back. Cookies are
// always HttpOnly, Secure, Path=/ and host-only (no Domain), as the __Host-
// prefix requires. It is safe for concurrent use.
type Chunker struct {
	name      string
	prefix    string // name + "."
	maxSize   int
	maxChunks int
	attrs     string // "; Path=/; ..." appended to every chunk Write sets
	tail      string // "; HttpOnly; Secure; SameSite=...", after Path and Max-Age
	delAttrs  string // attributes of a deletion
	capacity  int    // most value bytes that Write fits in maxChunks chunks
}

// NewChunker validates cfg and returns a Chunker.
func NewChunker(cfg ChunkConfig) (*Chunker, error) {
	if cfg.Name == "" || !isToken(cfg.Name) {
		return nil, errors.New("crypto: cookie name is empty or has characters not allowed in a cookie name")
	}
	c := &Chunker{
		name:      cfg.Name,
		prefix:    cfg.Name + ".",
		maxSize:   cfg.MaxCookieSize,
		maxChunks: cfg.MaxChunks,
	}
	if c.maxSize == 0 {
		c.maxSize = DefaultMaxCookieSize
	}
	if c.maxChunks == 0 {
		c.maxChunks = DefaultMaxChunks
	}
	if c.maxChunks < 1 || c.maxChunks > maxChunksLimit {
		return nil, fmt.Errorf("crypto: max chunks %d out of range 1..%d", cfg.MaxChunks, maxChunksLimit)
	}
	var sameSite string
	switch cfg.SameSite {
	case 0, http.SameSiteLaxMode:
		sameSite = "Lax"
	case http.SameSiteStrictMode:
		sameSite = "Strict"
	case http.SameSiteNoneMode:
		sameSite = "None"
	default:
		return nil, errors.New("crypto: SameSite must be Lax, Strict or None")
	}
	if cfg.MaxAge < 0 {
		return nil, errors.New("crypto: max age must not be negative")
	}
	c.tail = "; HttpOnly; Secure; SameSite=" + sameSite
	c.attrs = c.attrsFor(min(cfg.MaxAge, MaxMaxAge))
	c.delAttrs = "; Path=/; Max-Age=0" + c.tail
	// Every chunk must have room for a value even with the longest Max-Age
	// WriteMaxAge can write.
	longest := len(c.attrsFor(MaxMaxAge))
	for i := 0; i < c.maxChunks; i++ {
		if c.roomWith(i, longest) < 1 {
			return nil, fmt.Errorf("crypto: max cookie size %d leaves no room for a value", c.maxSize)
		}
	}
	c.capacity = c.capacityWith(len(c.attrs))
	return c, nil
}

// attrsFor returns the attributes of a chunk with the given Max-Age (none
// when zero).
func (c *Chunker) attrsFor(maxAge int) string {
	if maxAge <= 0 {
		return "; Path=/" + c.tail
	}
	return "; Path=/; Max-Age=" + strconv.Itoa(maxAge) + c.tail
}

// room is how many value bytes chunk i can hold when Write sets it.
func (c *Chunker) room(i int) int { return c.roomWith(i, len(c.attrs)) }

// roomWith is how many value bytes chunk i can hold with attributes of
// attrsLen bytes.
func (c *Chunker) roomWith(i, attrsLen int) int {
	return c.maxSize - len(c.chunkName(i)) - len("=") - attrsLen
}

// capacityWith is the most value bytes maxChunks chunks hold with attributes
// of attrsLen bytes.
func (c *Chunker) capacityWith(attrsLen int) int {
	n := 0
	for i := 0; i < c.maxChunks; i++ {
		n += c.roomWith(i, attrsLen)
	}
	return n
}

// readRoom is the most value bytes Read accepts in chunk i: what a write
// with the shortest attributes (no Max-Age) can put there.
func (c *Chunker) readRoom(i int) int { return c.roomWith(i, len("; Path=/")+len(c.tail)) }

func (c *Chunker) chunkName(i int) string { return c.prefix + strconv.Itoa(i) }

// Write sets the cookies NAME.0 .. NAME.n-1 holding value, and deletes every
// chunk NAME.k with k >= n that r carries, so a value that shrank leaves no
// stale chunk behind. A value that does not fit in MaxChunks chunks gives a
// *TooLargeError (errors.Is ErrTooLarge) and writes nothing. value must be
// non-empty and made of cookie value characters (a compact JWE is).
func (c *Chunker) Write(h http.Header, r *http.Request, value string) error {
	return c.write(h, r, value, c.attrs, c.capacity)
}

// WriteMaxAge is Write with the cookies' Max-Age set to maxAge seconds for
// this write, whatever ChunkConfig.MaxAge says: a session whose cookies
// expire with it passes the seconds left until its absolute expiry, so each
// re-seal keeps the same end. maxAge must be positive; over MaxMaxAge it is
// written as MaxMaxAge. The longer attribute leaves less room for the value
// in each chunk: a value that Write fits may give a *TooLargeError here.
func (c *Chunker) WriteMaxAge(h http.Header, r *http.Request, value string, maxAge int) error {
	if maxAge < 1 {
		return errors.New("crypto: max age must be positive")
	}
	attrs := c.attrsFor(min(maxAge, MaxMaxAge))
	return c.write(h, r, value, attrs, c.capacityWith(len(attrs)))
}

// write sets value in chunks carrying attrs, which leave capacity value
// bytes in all.
func (c *Chunker) write(h http.Header, r *http.Request, value, attrs string, capacity int) error {
	if value == "" {
		return errors.New("crypto: empty cookie value")
	}
	if len(value) > capacity {
		return &TooLargeError{Size: len(value), Limit: capacity}
	}
	for i := 0; i < len(value); i++ {
		if !isCookieOctet(value[i]) {
			return errors.New("crypto: cookie value has characters not allowed in a cookie")
		}
	}
	c.dropPending(h)
	n := 0
	for rest := value; rest != ""; n++ {
		size := min(len(rest), c.roomWith(n, len(attrs)))
		h.Add("Set-Cookie", c.chunkName(n)+"="+rest[:size]+attrs)
		rest = rest[size:]
	}
	for _, name := range c.present(r) {
		if i, ok := c.index(name); !ok || i >= n {
			h.Add("Set-Cookie", name+"="+c.delAttrs)
		}
	}
	return nil
}

// Count is how many chunks Write (maxAge <= 0) or WriteMaxAge (maxAge > 0)
// splits value into; a value too large for them is counted as if it had
// room in the last one.
func (c *Chunker) Count(value string, maxAge int) int {
	attrs := len(c.attrs)
	if maxAge > 0 {
		attrs = len(c.attrsFor(min(maxAge, MaxMaxAge)))
	}
	n := 1
	for rest := len(value) - c.roomWith(0, attrs); rest > 0 && n < c.maxChunks; n++ {
		rest -= c.roomWith(n, attrs)
	}
	return n
}

// HeaderBytes is the size of the Cookie header a browser sends back for
// value as Write splits it: "NAME.0=...; NAME.1=...". A value too large for
// Write is counted as if it had room.
func (c *Chunker) HeaderBytes(value string) int {
	return c.headerBytes(len(value), len(c.attrs))
}

// HeaderBytesMaxAge is HeaderBytes for value as WriteMaxAge splits it with
// maxAge: its longer attribute leaves less room in each chunk, so a value
// may take one more chunk (one more name in the header) than with Write.
func (c *Chunker) HeaderBytesMaxAge(value string, maxAge int) int {
	return c.headerBytes(len(value), len(c.attrsFor(min(maxAge, MaxMaxAge))))
}

// headerBytes is the Cookie header's size for a value of valueLen bytes
// split as write splits it with attributes of attrsLen bytes, the last chunk
// holding whatever is left.
func (c *Chunker) headerBytes(valueLen, attrsLen int) int {
	n := 0
	rest := valueLen
	for i := 0; ; i++ {
		if i > 0 {
			n += len("; ")
		}
		size := min(rest, c.roomWith(i, attrsLen))
		if i == c.maxChunks-1 {
			size = rest
		}
		n += len(c.chunkName(i)) + len("=") + size
		rest -= size
		if rest <= 0 {
			return n
		}
	}
}

// dropPending removes Set-Cookie headers for this chunker's cookies that an
// earlier Write or Clear added to h: a response carries one final value (a
// browser would keep the last one, but a client that joins every Set-Cookie
// would see duplicate chunks).
func (c *Chunker) dropPending(h http.Header) {
	sc := h["Set-Cookie"]
	kept := sc[:0]
	for _, v := range sc {
		if !strings.HasPrefix(v, c.prefix) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// Read joins the chunks r carries. It returns ErrNoCookie when there is none,
// and ErrInvalid for a gap, a duplicate, an index that is not canonical or not
// below MaxChunks, an empty chunk, a chunk over the size limit or a character
// not allowed in a cookie value.
func (c *Chunker) Read(r *http.Request) (string, error) {
	// The Cookie header is scanned directly rather than through
	// r.Cookies(), which would parse and copy every cookie of the app on
	// every request; only this chunker's cookies are looked at.
	var parts [maxChunksLimit]string
	var seen [maxChunksLimit]bool
	n, total := 0, 0
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.Trim(part, " \t")
			// A part without "=" is a name with an empty value, as
			// net/http reads it: one of ours is then refused, not skipped.
			name, val, _ := strings.Cut(part, "=")
			if !InNamespace(c.name, name) {
				continue
			}
			i, ok := c.index(name)
			if !ok || seen[i] || val == "" || len(val) > c.readRoom(i) {
				return "", ErrInvalid
			}
			for j := 0; j < len(val); j++ {
				if !isCookieOctet(val[j]) { // also refuses a quoted value
					return "", ErrInvalid
				}
			}
			seen[i], parts[i] = true, val
			n++
			total += len(val)
		}
	}
	if n == 0 {
		return "", ErrNoCookie
	}
	for i := 0; i < n; i++ {
		if !seen[i] {
			return "", ErrInvalid
		}
	}
	if n == 1 {
		return parts[0], nil
	}
	var b strings.Builder
	b.Grow(total)
	for _, p := range parts[:n] {
		b.WriteString(p)
	}
	return b.String(), nil
}

// Clear deletes NAME.0 and every cookie named NAME.<anything> that r carries.
func (c *Chunker) Clear(h http.Header, r *http.Request) {
	c.dropPending(h)
	first := c.chunkName(0)
	h.Add("Set-Cookie", first+"="+c.delAttrs)
	for _, name := range c.present(r) {
		if name != first {
			h.Add("Set-Cookie", name+"="+c.delAttrs)
		}
	}
}

// Names returns the names of the cookies in r that belong to this chunker,
// NAME.<anything>, each once, so a proxy can strip them before forwarding.
func (c *Chunker) Names(r *http.Request) []string { return c.present(r) }

// present lists, once each and in order, the names in r that start with
// NAME + ".", well-formed chunk names or not.
func (c *Chunker) present(r *http.Request) []string {
	if r == nil {
		return nil
	}
	var names []string
	for _, ck := range r.Cookies() {
		if !InNamespace(c.name, ck.Name) {
			continue
		}
		dup := false
		for _, n := range names {
			if n == ck.Name {
				dup = true
				break
			}
		}
		if !dup {
			names = append(names, ck.Name)
		}
	}
	return names
}

// index parses the chunk index of name, which starts with c.prefix. It must
// be canonical decimal and below MaxChunks.
func (c *Chunker) index(name string) (int, bool) {
	i, ok := parseIndex(name[len(c.prefix):])
	if !ok || i >= c.maxChunks {
		return 0, false
	}
	return i, true
}

// parseIndex parses a canonical chunk index: "0" or a decimal without a sign
// or leading zero, at most three digits.
func parseIndex(s string) (int, bool) {
	if len(s) == 0 || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// InNamespace reports whether name belongs to the chunk namespace of base:
// base + "." + anything. It is the one predicate for "is this one of our
// session cookies": the reader (Read, Clear) takes every such name as its own
// (a malformed one invalidates the session), so whatever filters cookies on
// the BFF's behalf (the proxy, in both directions) must use it too, never a
// narrower test such as IsChunkName.
func InNamespace(base, name string) bool {
	return base != "" && len(name) > len(base) && name[len(base)] == '.' && name[:len(base)] == base
}

// IsChunkName reports whether name is a chunk of the base name: base + "." +
// a canonical index. "__Host-Http-bff-login.ab12" is not a chunk of
// "__Host-Http-bff".
func IsChunkName(base, name string) bool {
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok || base == "" {
		return false
	}
	_, ok = parseIndex(rest)
	return ok
}

// isToken reports whether s is an RFC 7230 token, the characters allowed in
// a cookie name.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// isCookieOctet reports whether b is an RFC 6265 cookie-octet.
func isCookieOctet(b byte) bool { return cookieOctets[b] }

// cookieOctets is the RFC 6265 cookie-octet set as a table: every request
// checks every byte of the session cookie.
var cookieOctets = func() (t [256]bool) {
	for b := 0; b < 256; b++ {
		t[b] = b == 0x21 || 0x23 <= b && b <= 0x2b || 0x2d <= b && b <= 0x3a ||
			0x3c <= b && b <= 0x5b || 0x5d <= b && b <= 0x7e
	}
	return t
}()
