package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/htmlform"
)

// Ory Hydra v2 (github.com/ory/hydra/v2, pinned in e2e/providers/hydra):
// an OAuth 2.0 / OIDC server without a user interface. Login, consent and
// logout are pages of the suite's own (hydraApp below) that accept or reject
// Hydra's requests through its admin API, as a real deployment's UI does.

// hydraOptions selects a Hydra row of the matrix.
type hydraOptions struct {
	AccessTokenStrategy string // "opaque" or "jwt" (strategies.access_token)
	ClientAuthMethod    string // client_secret_basic or client_secret_post: how the client is registered
}

const (
	hydraUser     = "alice"
	hydraPassword = "correct horse battery staple"
	hydraClientID = "bff-interop"
	// The secret needs form-encoding in HTTP Basic (RFC 6749 2.3.1): fosite
	// URL-unescapes both halves (client_authentication.go:305).
	hydraClientSecret = "Hydra s3cret: +/%&=é"
	hydraEmail        = "alice@example.test"
	hydraName         = "Alice Example"
)

func init() {
	interopStarters = append(interopStarters,
		interopStarter{"hydra-opaque-basic", func(t *testing.T, urls opURLs) *opProvider {
			return startHydra(t, urls, hydraOptions{AccessTokenStrategy: "opaque", ClientAuthMethod: "client_secret_basic"})
		}},
		interopStarter{"hydra-jwt-post", func(t *testing.T, urls opURLs) *opProvider {
			return startHydra(t, urls, hydraOptions{AccessTokenStrategy: "jwt", ClientAuthMethod: "client_secret_post"})
		}},
	)
}

// startHydra runs `hydra serve all --dev` (in-memory SQLite) behind a gate
// on its public port, with the suite's login/consent/logout app, and
// registers the BFF's client. It stops when the test ends.
func startHydra(t *testing.T, urls opURLs, o hydraOptions) *opProvider {
	t.Helper()
	bin := providerBinary(t, "hydra")
	public, admin := freePort(t), freePort(t)
	gate := startGate(t, fmt.Sprintf("127.0.0.1:%d", public))
	op := &opProvider{
		Name:         "hydra-" + o.AccessTokenStrategy + "-" + strings.TrimPrefix(o.ClientAuthMethod, "client_secret_"),
		Issuer:       gate.URL(), // no trailing slash: Hydra's issuer is urls.self.issuer verbatim (driver/config/provider.go:432)
		Direct:       fmt.Sprintf("http://127.0.0.1:%d", public),
		Gate:         gate,
		ClientID:     hydraClientID,
		ClientSecret: hydraClientSecret,
		AuthMethod:   o.ClientAuthMethod,
		UserInfo:     true, // fetched, though it only repeats the ID token (see Lacks)
		AccessTTL:    10 * time.Second,
		User:         hydraUser,
		Password:     hydraPassword,
		Claims:       map[string]string{"email": hydraEmail, "name": hydraName},
		Lacks: map[string]string{
			stepUserInfo: "Hydra's userinfo answers the ID token's claims again (oauth2/handler.go:639 in v2.3.0: " +
				"IDTokenClaims().ToMap() of the token's session), so no claim comes from userinfo alone",
		},
		Logs: &syncBuffer{},
	}
	app := &hydraApp{admin: fmt.Sprintf("http://127.0.0.1:%d", admin), hc: &http.Client{Timeout: 10 * time.Second}}
	srv := httptest.NewServer(app.routes())
	t.Cleanup(srv.Close)

	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"SECRETS_SYSTEM=bff-e2e-hydra-system-secret-0123456789abcdef",
		"URLS_SELF_ISSUER="+op.Issuer,
		"URLS_LOGIN="+srv.URL+"/login",
		"URLS_CONSENT="+srv.URL+"/consent",
		"URLS_LOGOUT="+srv.URL+"/logout",
		"URLS_POST_LOGOUT_REDIRECT="+urls.PostLogout,
		fmt.Sprintf("SERVE_PUBLIC_PORT=%d", public), "SERVE_PUBLIC_HOST=127.0.0.1",
		fmt.Sprintf("SERVE_ADMIN_PORT=%d", admin), "SERVE_ADMIN_HOST=127.0.0.1",
		"TTL_ACCESS_TOKEN=10s",
		"STRATEGIES_ACCESS_TOKEN="+o.AccessTokenStrategy,
		"LOG_LEAK_SENSITIVE_VALUES=false",
		"LOG_LEVEL=info",
		"SQA_OPT_OUT=true", // no telemetry calls from a test
	)
	cmd.Stdout, cmd.Stderr = op.Logs, op.Logs
	proc := startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs (last 8 KiB):\n%s", op.Name, tail(op.Logs.String(), 8<<10))
		}
	})
	waitHTTP(t, proc, app.admin+"/health/ready", 30*time.Second, op.Logs)
	waitHTTP(t, proc, op.Direct+"/.well-known/openid-configuration", 30*time.Second, op.Logs)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var created struct {
		ClientID string `json:"client_id"`
	}
	err := app.call(ctx, http.MethodPost, "/admin/clients", nil, map[string]any{
		"client_id":                           hydraClientID,
		"client_secret":                       hydraClientSecret,
		"client_name":                         "BFF interop matrix",
		"redirect_uris":                       []string{urls.Callback},
		"post_logout_redirect_uris":           []string{urls.PostLogout},
		"grant_types":                         []string{"authorization_code", "refresh_token"},
		"response_types":                      []string{"code"},
		"scope":                               "openid profile email offline_access",
		"token_endpoint_auth_method":          o.ClientAuthMethod,
		"backchannel_logout_uri":              urls.Backchannel,
		"backchannel_logout_session_required": true,
		"skip_consent":                        false,
	}, &created)
	if err != nil {
		t.Fatalf("e2e: hydra: register client: %v", err)
	}
	if created.ClientID != hydraClientID {
		t.Fatalf("e2e: hydra: registered client %q, want %q", created.ClientID, hydraClientID)
	}

	op.Fill = hydraFill
	op.ProviderLogout = func(t *testing.T, br *Browser) {
		t.Helper()
		// OP-initiated logout (no id_token_hint): Hydra finds the session by
		// its cookie, asks the logout page (which accepts), tells every RP of
		// the session by back-channel and ends at urls.post_logout_redirect.
		cur, err := url.Parse(op.Issuer + "/oauth2/sessions/logout")
		if err != nil {
			t.Fatal(err)
		}
		issuer, ui := strings.TrimPrefix(op.Issuer, "http://"), strings.TrimPrefix(srv.URL, "http://")
		for step := 0; cur.Host == issuer || cur.Host == ui; step++ {
			if step == 6 {
				t.Fatalf("e2e: hydra: logout did not leave the provider within 6 steps")
			}
			resp := br.navigate(t, http.MethodGet, cur, nil, "same-origin", cur)
			next, ok := resp.Location()
			if resp.Status != http.StatusFound || !ok {
				t.Fatalf("e2e: hydra: logout at %s: %d %.300s", redactURL(cur.String()), resp.Status, resp.Body)
			}
			cur = next
		}
	}
	if o.AccessTokenStrategy == "jwt" {
		op.Validate = userinfoValidator(op.Direct)
	} else {
		op.Validate = app.introspect
	}
	return op
}

// hydraFill fills the app's login form or presses one of its consent
// form's two buttons.
func hydraFill(t *testing.T, page *url.URL, body []byte, deny bool) (*url.URL, url.Values) {
	t.Helper()
	f, ok := htmlform.First(body)
	if !ok {
		t.Fatalf("e2e: hydra: no form at %s: %.400s", redactURL(page.String()), body)
	}
	action, err := page.Parse(f.Action)
	if err != nil {
		t.Fatalf("e2e: hydra: form action %q: %v", f.Action, err)
	}
	switch {
	case f.Fields.Has("login_challenge"):
		f.Fields.Set("login", hydraUser)
		f.Fields.Set("password", hydraPassword)
	case f.Fields.Has("consent_challenge"):
		f.Fields.Set("decision", "approve")
		if deny {
			f.Fields.Set("decision", "deny")
		}
	default:
		t.Fatalf("e2e: hydra: unknown form at %s: %.400s", redactURL(page.String()), body)
	}
	return action, f.Fields
}

// hydraApp is the login, consent and logout UI: HTML for the browser, the
// admin API (plain JSON over HTTP) for Hydra.
type hydraApp struct {
	admin string // http://127.0.0.1:ADMIN
	hc    *http.Client
}

// call sends body as JSON to the admin API and decodes the answer into out;
// a status other than 200 or 201 is an error with Hydra's answer.
func (a *hydraApp) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := a.admin + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s %s: status %d: %.400s", method, path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// introspect checks a token at the admin introspection endpoint (RFC 7662).
func (a *hydraApp) introspect(ctx context.Context, bearer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.admin+"/admin/oauth2/introspect",
		strings.NewReader(url.Values{"token": {bearer}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("introspection answered %d", resp.StatusCode)
	}
	var r struct {
		Active    bool   `json:"active"`
		Sub       string `json:"sub"`
		TokenUse  string `json:"token_use"`
		ClientID  string `json:"client_id"`
		ExpiresAt int64  `json:"exp"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	switch {
	case !r.Active:
		return "", errors.New("token not active")
	case r.TokenUse != "access_token":
		return "", fmt.Errorf("token_use %q, not an access token", r.TokenUse)
	case r.Sub == "":
		return "", errors.New("introspection without sub")
	}
	return r.Sub, nil
}

func (a *hydraApp) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /consent", a.consent)
	mux.HandleFunc("POST /consent", a.consent)
	mux.HandleFunc("GET /logout", a.logout)
	return mux
}

// redirect sends the browser where Hydra's accept or reject answer says.
func (a *hydraApp) redirect(w http.ResponseWriter, r *http.Request, path, param, challenge string, body any) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.call(r.Context(), http.MethodPut, path, url.Values{param: {challenge}}, body, &out); err != nil {
		http.Error(w, "hydra admin: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusFound)
}

const hydraPage = `<!doctype html><html><head><title>%s</title></head><body><h1>%s</h1>%s</body></html>`

func (a *hydraApp) login(w http.ResponseWriter, r *http.Request) {
	challenge := r.FormValue("login_challenge")
	const path = "/admin/oauth2/auth/requests/login"
	var lr struct {
		Skip    bool   `json:"skip"`
		Subject string `json:"subject"`
	}
	if err := a.call(r.Context(), http.MethodGet, path, url.Values{"login_challenge": {challenge}}, nil, &lr); err != nil {
		http.Error(w, "hydra admin: "+err.Error(), http.StatusBadGateway)
		return
	}
	// remember: true, because Hydra runs RP-initiated logout (logout page,
	// back-channel logout) only for a remembered login session
	// (persistence/sql/persister_consent.go:369); without it, end_session
	// redirects at once and no back-channel logout is sent. A remembered
	// session skips this page until logout; Hydra then insists on
	// remember again (consent/strategy_default.go:375).
	accept := func(sub string) {
		a.redirect(w, r, path+"/accept", "login_challenge", challenge, map[string]any{"subject": sub, "remember": true, "remember_for": 0})
	}
	if lr.Skip {
		accept(lr.Subject)
		return
	}
	msg := ""
	if r.Method == http.MethodPost {
		if r.PostFormValue("login") == hydraUser && r.PostFormValue("password") == hydraPassword {
			accept(hydraUser)
			return
		}
		msg = `<p role="alert">Wrong user name or password.</p>`
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, hydraPage, "Sign in", "Sign in", msg+`<form method="post" action="/login">`+
		`<input type="hidden" name="login_challenge" value="`+html.EscapeString(challenge)+`">`+
		`<input name="login" value=""><input type="password" name="password" value="">`+
		`<button type="submit">Sign in</button></form>`)
}

func (a *hydraApp) consent(w http.ResponseWriter, r *http.Request) {
	challenge := r.FormValue("consent_challenge")
	const path = "/admin/oauth2/auth/requests/consent"
	var cr struct {
		Skip              bool     `json:"skip"`
		Subject           string   `json:"subject"`
		RequestedScope    []string `json:"requested_scope"`
		RequestedAudience []string `json:"requested_access_token_audience"`
		Client            struct {
			ClientID string `json:"client_id"`
		} `json:"client"`
	}
	if err := a.call(r.Context(), http.MethodGet, path, url.Values{"consent_challenge": {challenge}}, nil, &cr); err != nil {
		http.Error(w, "hydra admin: "+err.Error(), http.StatusBadGateway)
		return
	}
	decision := r.PostFormValue("decision")
	if r.Method == http.MethodPost && decision == "deny" {
		a.redirect(w, r, path+"/reject", "consent_challenge", challenge, map[string]any{
			"error": "access_denied", "error_description": "The user refused the consent request.", "status_code": http.StatusForbidden,
		})
		return
	}
	if cr.Skip || (r.Method == http.MethodPost && decision == "approve") {
		aud := cr.RequestedAudience
		if aud == nil {
			aud = []string{}
		}
		a.redirect(w, r, path+"/accept", "consent_challenge", challenge, map[string]any{
			"grant_scope":                 cr.RequestedScope,
			"grant_access_token_audience": aud,
			"remember":                    false,
			"session": map[string]any{
				"id_token": map[string]any{"email": hydraEmail, "email_verified": true, "name": hydraName},
			},
		})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, hydraPage, "Consent", "Allow "+html.EscapeString(cr.Client.ClientID)+"?",
		`<p>Scopes: `+html.EscapeString(strings.Join(cr.RequestedScope, " "))+`</p>`+
			`<form method="post" action="/consent">`+
			`<input type="hidden" name="consent_challenge" value="`+html.EscapeString(challenge)+`">`+
			`<input type="submit" name="decision" value="approve"><input type="submit" name="decision" value="deny">`+
			`</form>`)
}

// logout accepts every logout request at once: the BFF already asked.
func (a *hydraApp) logout(w http.ResponseWriter, r *http.Request) {
	a.redirect(w, r, "/admin/oauth2/auth/requests/logout/accept", "logout_challenge", r.FormValue("logout_challenge"), nil)
}
