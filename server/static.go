package server

import (
	"io/fs"

	"github.com/gin-gonic/gin"
	"net/http"
	"os"
	"path"
	"strings"
)

// serveStatic serves the app's files with its security headers.
func (s *Server) serveStatic(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	c.Status(http.StatusOK) // NoRoute preset 404; a handler that only writes means 200
	s.cfg.Static.ServeHTTP(c.Writer, c.Request)
}

// staticDir serves the app's files from dir: index.html for a directory,
// no directory listings, no dot files.
func staticDir(dir string) http.Handler {
	fsys := os.DirFS(dir)
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		for seg := range strings.SplitSeq(name, "/") {
			if strings.HasPrefix(seg, ".") && seg != "." {
				http.NotFound(w, r)
				return
			}
		}
		st, err := fs.Stat(fsys, name)
		if err == nil && st.IsDir() {
			_, err = fs.Stat(fsys, path.Join(name, "index.html"))
		}
		if err != nil {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}
