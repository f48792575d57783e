package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticHashedName: what bundlers emit is hashed (immutable); words,
// versions and numbers are not (revalidated). A false "hashed" would keep a
// stale file in browsers for a year.
func TestStaticHashedName(t *testing.T) {
	tests := []struct {
		name   string
		hashed bool
	}{
		{"app.3f2a9c1b.js", true},                  // webpack [name].[contenthash:8]
		{"main.3f2a9c1b4d5e6f708192.js", true},     // webpack, full contenthash
		{"main.3f2a9c1b.chunk.js", true},           // create-react-app
		{"app.3f2a9c1b.js.map", true},              // its source map
		{"123.3f2a9c1b.js", true},                  // webpack [id].[contenthash]
		{"index-BxK3d9Qa.js", true},                // Vite / Rollup
		{"index-B_x3d9Qa.css", true},               // base64url with _
		{"index-BxKdQaZQ.js", true},                // mixed case, no digit, not camel case
		{"chunk-5FJ2ZQXW.css", true},               // esbuild base32
		{"chunk-7GJ2ZQXW.js", true},                // base32 with a 7, its last digit
		{"index-xkdqazqA.js", true},                // A, with nothing after it: not camel case
		{"index-xkdqazqZ.js", true},                // Z likewise
		{"vendor-myDatabase.js", false},            // camel case, the capital followed by an a
		{"vendor-AzureBlobZz.js", false},           // Pascal case, capitals followed by a z
		{"Inter-roman.var.3F2A9C1B.woff2", true},   // upper-case hex
		{"vendor-library.js", false},               // a word
		{"vendor-myLibrary.js", false},             // camel case
		{"Roboto-BoldItalic.woff2", false},         // Pascal case
		{"lib-utf8decoder.js", false},              // a word with a digit, not hex
		{"lib-utf8Decoder.js", false},              // camel case with a digit
		{"polyfills-es2015.js", false},             // short
		{"bootstrap-5.3.3.min.css", false},         // a version
		{"jquery-3.7.1.min.js", false},             // a version
		{"app.deadbeef.js", false},                 // hex without a digit: could be a word
		{"app.3f2a9c1.js", false},                  // 7 characters
		{"chunk-ABCDEFGH.js", false},               // upper case without a digit
		{"docs-README2024.md", false},              // 0, 1 are not base32, R not hex
		{"report-20240101.pdf", false},             // a date
		{"3f2a9c1b.js", false},                     // the name itself, not a part of it
		{"some-component.module.css", false},       // words
		{"material-symbols-outlined.woff2", false}, // words
		{"index.html", false},
		{"favicon.ico", false},
		{"app.3f2a-9c1b.js", false}, // two short parts
		{"app.3f2a9c1b!.js", false}, // not base64url
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hashedName(tt.name); got != tt.hashed {
				t.Errorf("hashedName(%q) = %v, want %v", tt.name, got, tt.hashed)
			}
		})
	}
}

// TestStaticValidCSP: a static_csp that would corrupt the header or that no
// browser applies is refused; "" and "off" are the documented settings.
func TestStaticValidCSP(t *testing.T) {
	tests := []struct {
		csp string
		ok  bool
	}{
		{"", true},
		{"off", true},
		{defaultStaticCSP, true},
		{"default-src 'self'; style-src 'self' 'unsafe-inline'", true},
		{"script-src-elem 'self' https://cdn.example.com; report-to csp", true},
		{"Default-Src 'self'", true}, // directive names are case-insensitive
		{"default-src 'self';", true},
		{"default-src 'self' https://cdn.example.com/~app", true}, // '~', the last printable byte
		{"default-src 'self'; azAZ09-future-directive", true},     // a directive name may hold the ends of every range
		{"default-src 'self'\x7f", false},                         // DEL, just past '~'
		{"default-src 'self'; future.directive", false},           // '.', below '0'
		{"default-src 'self'; future:directive", false},           // ':', above '9'
		{"default-src 'self'; future@directive", false},           // '@', below 'A'
		{"default-src 'self'; future[directive", false},           // '[', above 'Z'
		{"default-src 'self'; future`directive", false},           // '`', below 'a'
		{"default-src 'self'; future{directive", false},           // '{', above 'z'
		{"default-src 'self'\r\nSet-Cookie: x=1", false},
		{"default-src 'self'\n", false},
		{"default-src 'self'\tstyle-src", false},
		{"default-src 'self'\x00", false},
		{"default-src 'self' https://bücher.example", false},
		{"none", false}, // not "off": a policy no browser applies
		{"OFF", false},
		{"   ", false},
		{";", false},
		{"default_src 'self'", false},
		{"default-src: 'self'", false},
	}
	for _, tt := range tests {
		t.Run(tt.csp, func(t *testing.T) {
			err := validStaticCSP(tt.csp)
			if (err == nil) != tt.ok {
				t.Fatalf("validStaticCSP(%q) = %v, want ok %v", tt.csp, err, tt.ok)
			}
			if err != nil && err.Error()[:len("server: ")] != "server: " {
				t.Errorf("error %q does not start with the package name", err)
			}
		})
	}
}

// TestStaticDirHandler: the app-files handler on its own (outside the
// server) serves a file and answers a miss and a wrong method with their
// status, as text.
func TestStaticDirHandler(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>app</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := staticDir(dir)
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
	}{
		{http.MethodGet, "/", http.StatusOK, "<p>app</p>"},
		{http.MethodGet, "/missing.js", http.StatusNotFound, "Not Found"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "Method Not Allowed"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, w.Code, w.Body, tt.status, tt.body)
		}
	}
}
