package demo

import (
	"bytes"
	"embed"
	"net/http"
	"slices"
	"strings"
	"time"
)

//go:embed page/index.html page/app.js page/app.css
var pageFiles embed.FS

// pageCSP is set on the page when the server in front has not set one: the
// page, its script and its style all load from 'self', nothing inline.
const pageCSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// Page returns the sample single-page app, meant to be served by the BFF at
// "/": GET / (HTML), /app.js and /app.css, and GET /demo/cookies (see
// cookieSizes). Any other path is 404. Script and style are separate files
// so the page works under `default-src 'self'`.
func Page() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", pageFile("page/index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /index.html", pageFile("page/index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /app.js", pageFile("page/app.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /app.css", pageFile("page/app.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /demo/cookies", cookieSizes)
	return mux
}

// heldCookie is one cookie the browser sent: its name and the bytes of
// "name=value" in the Cookie header. Never its value.
type heldCookie struct {
	Name  string `json:"name"`
	Bytes int    `json:"bytes"`
}

// cookieSizes answers GET /demo/cookies (demo only) with the names and sizes
// of the cookies the request carried, sorted by name, and the size of the
// whole Cookie header: what the browser holds for this origin, which page
// script cannot list itself because the BFF's cookies are HttpOnly. It never
// answers a value, and answers only same-origin script (no CORS headers).
func cookieSizes(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Cookies     []heldCookie `json:"cookies"`
		HeaderBytes int          `json:"header_bytes"`
	}{Cookies: []heldCookie{}}
	for _, c := range r.Cookies() {
		out.Cookies = append(out.Cookies, heldCookie{Name: c.Name, Bytes: len(c.Name) + 1 + len(c.Value)})
	}
	slices.SortStableFunc(out.Cookies, func(a, b heldCookie) int { return strings.Compare(a.Name, b.Name) })
	for _, v := range r.Header.Values("Cookie") {
		out.HeaderBytes += len(v)
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	writeJSON(w, http.StatusOK, out) // Cache-Control: no-store
}

func pageFile(name, contentType string) http.Handler {
	data, err := pageFiles.ReadFile(name)
	if err != nil {
		panic("demo: missing embedded " + name) // the embed directive above lists it
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if contentType == "text/html; charset=utf-8" && h.Get("Content-Security-Policy") == "" {
			h.Set("Content-Security-Policy", pageCSP)
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	})
}
