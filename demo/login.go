package demo

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
)

const loginPath = "/login"

// loginForm serves the provider's plain HTML login form. The auth request id
// travels in a hidden field; it is random, short-lived and single-use, which
// is all the anti-forgery a development provider needs.
type loginForm struct {
	store    *store
	callback func(ctx context.Context, id string) string // op.AuthCallbackURL
	logger   *slog.Logger
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo provider: sign in</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; background: #f4f5f7; color: #1f2933; margin: 0; }
main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 1.25rem; margin-top: 0; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { box-sizing: border-box; width: 100%; padding: .5rem; font: inherit; border: 1px solid #9aa5b1; border-radius: 4px; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font: inherit; color: #fff; background: #2f5fd0; border: 0; border-radius: 4px; cursor: pointer; }
.error { color: #a61b1b; background: #fde8e8; padding: .5rem; border-radius: 4px; }
.note { color: #616e7c; font-size: .875rem; }
</style>
</head>
<body>
<main>
<h1>Demo OpenID provider</h1>
<p class="note">Development only. The demo user is printed in the terminal that runs <code>bff demo</code>.</p>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`))

type loginPage struct {
	Action, ID, Username, Error string
}

func (l *loginForm) render(w http.ResponseWriter, status int, p loginPage) {
	p.Action = loginPath
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := loginTemplate.Execute(w, p); err != nil {
		l.logger.Error("demo provider: render login form", "error", err)
	}
}

// show answers GET /login?authRequestID=...
func (l *loginForm) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, err := l.store.AuthRequestByID(r.Context(), id); err != nil {
		l.render(w, http.StatusBadRequest, loginPage{Error: "This sign-in request is unknown or has expired. Go back to the app and sign in again."})
		return
	}
	l.render(w, http.StatusOK, loginPage{ID: id})
}

// submit answers POST /login: on success it sends the browser back to the op
// package's callback, which issues the code; otherwise it shows the form again.
func (l *loginForm) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.render(w, http.StatusBadRequest, loginPage{Error: "The form could not be read."})
		return
	}
	id, username := r.PostForm.Get("id"), r.PostForm.Get("username")
	err := l.store.checkLogin(id, username, r.PostForm.Get("password"))
	switch {
	case errors.Is(err, errBadCredentials):
		l.logger.Info("demo provider: sign-in refused", "username", username)
		l.render(w, http.StatusOK, loginPage{ID: id, Username: username, Error: "Wrong username or password."})
	case err != nil:
		l.render(w, http.StatusBadRequest, loginPage{Error: "This sign-in request is unknown or has expired. Go back to the app and sign in again."})
	default:
		l.logger.Info("demo provider: signed in", "username", username)
		http.Redirect(w, r, l.callback(r.Context(), id), http.StatusSeeOther)
	}
}
