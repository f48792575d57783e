package server

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// defaultStaticCSP is the app's Content-Security-Policy when
// Config.StaticCSP is empty: everything from the app's own origin, never
// framed, no <base>, forms post to the origin only.
const defaultStaticCSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Cache-Control of the app's files: a file whose name carries a content
// hash never changes (a new build has a new name); any other file, and
// index.html above all, is revalidated on every use so a deploy takes effect.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// serveStatic serves the app's files with its security headers. They apply
// to any Static handler; the history fallback, the cache rules and the JSON
// 404 only to the files of StaticDir.
func (s *Server) serveStatic(c *gin.Context) {
	h := c.Writer.Header()
	switch csp := s.cfg.StaticCSP; csp {
	case "":
		h.Set("Content-Security-Policy", defaultStaticCSP)
	case "off": // the balancer or CDN sets it
	default:
		h.Set("Content-Security-Policy", csp)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	c.Status(http.StatusOK) // NoRoute preset 404; a handler that only writes means 200
	if files, ok := s.cfg.Static.(*appFiles); ok {
		if err := files.serve(c.Writer, c.Request); err != nil {
			s.abort(c, err)
		}
		return
	}
	s.cfg.Static.ServeHTTP(c.Writer, c.Request)
}

// validStaticCSP checks Config.StaticCSP: "" (the default) and "off" are
// valid; any other value is sent as the header, so it must be printable
// ASCII (a control character or newline would corrupt the response) and
// name at least one directive a browser applies, so that a typo such as
// "none" or "OFF" is not silently a policy that allows everything.
func validStaticCSP(csp string) error {
	if csp == "" || csp == "off" {
		return nil
	}
	for i := 0; i < len(csp); i++ {
		if c := csp[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("server: static_csp: byte %q at %d; only printable ASCII is allowed", c, i)
		}
	}
	applies := false
	for d := range strings.SplitSeq(csp, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name == "" {
			continue
		}
		for _, c := range name {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("server: static_csp: %q is not a directive name", name)
			}
		}
		applies = applies || knownDirective(strings.ToLower(name))
	}
	if !applies {
		return fmt.Errorf(`server: static_csp %q has no directive a browser applies; "off" sends none`, csp)
	}
	return nil
}

// knownDirective reports whether name (lower case) is a CSP directive
// (https://www.w3.org/TR/CSP3/#csp-directives).
func knownDirective(name string) bool {
	if strings.HasSuffix(name, "-src") || strings.HasSuffix(name, "-src-elem") || strings.HasSuffix(name, "-src-attr") {
		return true
	}
	switch name {
	case "base-uri", "form-action", "frame-ancestors", "sandbox", "upgrade-insecure-requests",
		"block-all-mixed-content", "require-trusted-types-for", "trusted-types", "webrtc",
		"report-uri", "report-to":
		return true
	}
	return false
}

// appFiles are the app's files in a directory: index.html for a directory,
// no listings, no dot files, index.html for a navigation to a path that is
// no file (the history fallback of a single-page app), and Cache-Control by
// name.
type appFiles struct {
	fsys  fs.FS
	files http.Handler
}

// staticDir serves the app's files from dir.
func staticDir(dir string) http.Handler {
	fsys := os.DirFS(dir)
	return &appFiles{fsys: fsys, files: http.FileServerFS(fsys)}
}

// ServeHTTP serves f on its own; the server calls serve instead, to answer
// a miss like any other.
func (f *appFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f.serve(w, r); err != nil {
		status := classify(err).status
		http.Error(w, http.StatusText(status), status)
	}
}

// serve answers r, or returns errNotFound or errMethod having written
// nothing but headers.
func (f *appFiles) serve(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "."
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." {
			return errNotFound
		}
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if st, ok := f.stat(name); ok {
		if !read {
			w.Header().Set("Allow", "GET, HEAD")
			return errMethod
		}
		cache := cacheRevalidate
		if !st.IsDir() && hashedName(st.Name()) {
			cache = cacheImmutable
		}
		w.Header().Set("Cache-Control", cache)
		f.files.ServeHTTP(w, r)
		return nil
	}
	// No such file: index.html for a navigation (the app routes it).
	// An asset-looking path (app.js, favicon.ico) stays a miss.
	if !read || path.Ext(name) != "" {
		return errNotFound
	}
	w.Header().Add("Vary", "Accept, Sec-Fetch-Dest, Sec-Fetch-Mode")
	if !wantsHTML(r) {
		return errNotFound
	}
	return f.serveIndex(w, r)
}

// stat returns the file at name, or the directory at name when it holds an
// index.html.
func (f *appFiles) stat(name string) (fs.FileInfo, bool) {
	st, err := fs.Stat(f.fsys, name)
	if err == nil && st.IsDir() {
		_, err = fs.Stat(f.fsys, path.Join(name, "index.html"))
	}
	return st, err == nil
}

// serveIndex answers with the app's index.html (status 200, revalidated on
// every use, conditional requests and HEAD as http.ServeContent does).
func (f *appFiles) serveIndex(w http.ResponseWriter, r *http.Request) error {
	file, err := f.fsys.Open("index.html")
	if err != nil {
		return errNotFound
	}
	defer file.Close()
	st, err := file.Stat()
	content, seeks := file.(io.ReadSeeker)
	if err != nil || st.IsDir() || !seeks {
		return errNotFound
	}
	w.Header().Set("Cache-Control", cacheRevalidate)
	http.ServeContent(w, r, "index.html", st.ModTime(), content)
	return nil
}

// wantsHTML reports whether r is a navigation that expects a page: by its
// fetch metadata (Sec-Fetch-Dest: document or Sec-Fetch-Mode: navigate)
// when the browser sends it, else by an Accept that lists text/html. A
// fetch() or an <img> of the same path is not one, nor is Accept: */*.
func wantsHTML(r *http.Request) bool {
	dest, mode := r.Header.Get("Sec-Fetch-Dest"), r.Header.Get("Sec-Fetch-Mode")
	if dest != "" || mode != "" {
		return dest == "document" || mode == "navigate"
	}
	for _, v := range r.Header.Values("Accept") {
		for mr := range strings.SplitSeq(v, ",") {
			typ, params, _ := strings.Cut(mr, ";")
			if strings.EqualFold(strings.TrimSpace(typ), "text/html") && !refused(params) {
				return true
			}
		}
	}
	return false
}

// refused reports whether the parameters of a media range say q=0.
func refused(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}

// hashedName reports whether a file name carries a content hash, as Vite,
// Rollup, webpack and esbuild emit: a part of the name after the first,
// between "." or "-", that isHash ("app.3f2a9c1b.js",
// "index-BxK3d9Qa.js", "chunk-5FJ2ZQXW.css", "main.3f2a9c1b.chunk.js").
// A miss costs a revalidation, a false hit a stale file for a year: when
// in doubt it says no.
func hashedName(name string) bool {
	stem := strings.TrimSuffix(name, path.Ext(name))
	parts := strings.FieldsFunc(stem, func(r rune) bool { return r == '.' || r == '-' })
	for i := 1; i < len(parts); i++ {
		if isHash(parts[i]) {
			return true
		}
	}
	return false
}

// isHash reports whether s looks like a content hash of 8 or more
// characters rather than a word: lower-case hex with a digit (webpack,
// Parcel), upper-case base32 or hex with a digit (esbuild), or base64url in
// mixed case that is not camel case (Rollup, Vite). "library",
// "utf8decoder", "BoldItalic", "deadbeef" and "20240101" are not hashes.
func isHash(s string) bool {
	if len(s) < 8 {
		return false
	}
	var digit, lower, upper, lowerHex, upperHex, base32 = false, false, false, true, true, true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digit = true
			base32 = base32 && '2' <= c && c <= '7'
		case 'a' <= c && c <= 'z':
			lower = true
			lowerHex = lowerHex && c <= 'f'
		case 'A' <= c && c <= 'Z':
			upper = true
			upperHex = upperHex && c <= 'F'
		case c == '_':
			lowerHex, upperHex, base32 = false, false, false
		default:
			return false
		}
	}
	switch {
	case lower && upper:
		return !camelCase(s)
	case lower:
		return digit && lowerHex
	case upper:
		return digit && (upperHex || base32)
	}
	return false // digits only: a number or a date, not surely a hash
}

// camelCase reports whether every upper-case letter of s starts a word:
// it is followed by a lower-case letter ("myLibrary", "BoldItalic").
func camelCase(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' && (i+1 == len(s) || s[i+1] < 'a' || s[i+1] > 'z') {
			return false
		}
	}
	return true
}
