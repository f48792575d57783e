package server

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

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
