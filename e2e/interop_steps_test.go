package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The later steps of TestInterop: logout, back-channel logout, a client
// registered for another authentication method, and the log check.

// signIn signs a new browser in at the run's BFF and returns it.
func (r *interopRun) signIn(t *testing.T) *Browser {
	t.Helper()
	br := newBrowser(t)
	resp := opSignIn(t, br, r.bff, r.op, false)
	if loc, ok := resp.Location(); !ok || loc.Query().Has("login_error") {
		t.Fatalf("sign-in: %d to %q: %.300s", resp.Status, resp.Header.Get("Location"), resp.Body)
	}
	return br
}

// logout: /auth/logout ends the session here and at the provider (its
// end-session endpoint, or straight back to the app when it has none),
// revokes the refresh token where RFC 7009 is offered, and a cookie copied
// before is refused afterwards.
func (r *interopRun) logout(t *testing.T) {
	br, control := r.signIn(t), r.signIn(t)
	copied := br.Snapshot()
	rt, controlRT := openSession(t, r.bff, br).RefreshToken, openSession(t, r.bff, control).RefreshToken
	r.rts = append(r.rts, rt, controlRT)

	resp := br.Post(t, r.bff.URL()+"/auth/logout", fetchHeaders(http.MethodPost, r.bff.URL()+"/auth/logout", csrf), "")
	if resp.Status != http.StatusOK {
		t.Fatalf("logout: %d %.300s", resp.Status, resp.Body)
	}
	if !clearsSession(resp) {
		t.Error("logout did not clear the session cookie")
	}
	var out struct {
		LogoutURL string `json:"logout_url"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || out.LogoutURL == "" {
		t.Fatalf("logout body: %v %.300s", err, resp.Body)
	}
	doc, err := discoveryOf(context.Background(), r.op.Direct)
	if err != nil {
		t.Fatal(err)
	}
	switch why, lacks := r.op.Lacks[stepEndSession]; {
	case doc["end_session_endpoint"] == nil:
		// No RP-initiated logout: straight back to the app.
		if out.LogoutURL != r.bff.URL()+"/" {
			t.Errorf("without end-session the logout goes to %q, want the app %q", redactURL(out.LogoutURL), r.bff.URL()+"/")
		}
	case lacks:
		t.Logf("%s advertises end-session but cannot complete it for this client: %s", r.op.Name, why)
	default:
		nav := br.Get(t, out.LogoutURL, map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
		next, ok := nav.Location()
		issuer, _ := url.Parse(r.op.Issuer)
		if !ok || next.Host != issuer.Host {
			t.Fatalf("logout_url: %d to %q, want the provider's end-session endpoint", nav.Status, redactURL(nav.Header.Get("Location")))
		}
		r.followEndSession(t, br, next)
	}

	thief := newBrowser(t)
	thief.Restore(copied)
	assertJSONError(t, thief.Get(t, r.bff.URL()+"/auth/user", nil), http.StatusUnauthorized)

	t.Run("refresh_token_revoked", func(t *testing.T) {
		if r.op.lacks(t, stepRevocation) {
			return
		}
		// The refresh token is dead at the provider; the control, a live
		// one used the same way, is not (so the check can fail).
		if status, code := r.directRefresh(t, controlRT); status != http.StatusOK {
			t.Fatalf("control: a live refresh token was refused: %d %s", status, code)
		}
		if status, code := r.directRefresh(t, rt); status == http.StatusOK {
			t.Error("the logged-out refresh token still works at the provider")
		} else {
			t.Logf("logged-out refresh token: %d %s", status, code)
		}
	})
}

// followEndSession walks the provider's end-session pages (confirming a
// logout prompt) until it sends the browser back to the app.
func (r *interopRun) followEndSession(t *testing.T, br *Browser, cur *url.URL) {
	t.Helper()
	method, form := http.MethodGet, url.Values(nil)
	for step := 0; step < 10; step++ {
		if cur.String() == r.bff.URL()+"/" || strings.HasPrefix(cur.String(), r.bff.URL()+"/?") {
			return
		}
		resp := br.navigate(t, method, cur, form, "cross-site", cur)
		if next, ok := resp.Location(); ok {
			cur, method, form = next, http.MethodGet, nil
			continue
		}
		f, ok := parseForm(resp.Body)
		if resp.Status != http.StatusOK || !ok {
			t.Fatalf("end-session at %s: %d %.300s", redactURL(cur.String()), resp.Status, resp.Body)
		}
		action, err := cur.Parse(f.action)
		if err != nil {
			t.Fatal(err)
		}
		f.fields.Set("logout", "yes") // oidc-provider's "Yes, sign me out"
		cur, method, form = action, http.MethodPost, f.fields
	}
	t.Fatal("end-session did not return to the app within 10 steps")
}

// directRefresh makes one refresh_token grant at the provider with the
// client's credentials and returns the status and error code.
func (r *interopRun) directRefresh(t *testing.T, rt string) (int, string) {
	t.Helper()
	doc, err := discoveryOf(context.Background(), r.op.Direct)
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := doc["token_endpoint"].(string)
	endpoint, err := viaDirect(ep, r.op.Direct)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	post := r.op.AuthMethod == "client_secret_post"
	if post {
		form.Set("client_id", r.op.ClientID)
		form.Set("client_secret", r.op.ClientSecret)
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !post {
		req.SetBasicAuth(url.QueryEscape(r.op.ClientID), url.QueryEscape(r.op.ClientSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e.Error
}

// backchannel: the user signs out at the provider itself; a provider with
// back-channel logout tells the BFF, which ends the session.
func (r *interopRun) backchannel(t *testing.T) {
	if r.op.lacks(t, stepBackchannel) {
		return
	}
	br := r.signIn(t)
	if u := br.Get(t, r.bff.URL()+"/auth/user", nil); u.Status != http.StatusOK {
		t.Fatalf("control: /auth/user before the provider logout: %d", u.Status)
	}
	r.op.ProviderLogout(t, br)
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := br.Get(t, r.bff.URL()+"/auth/user", nil)
		if u.Status == http.StatusUnauthorized {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/auth/user 5 s after the provider logout: %d, want 401", u.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clientMethodMismatch: with the client registered for client_secret_post
// and the BFF choosing client_secret_basic from discovery, sign-in fails
// as a configuration error, said as such to the user and the operator.
func (r *interopRun) clientMethodMismatch(t *testing.T, port int) {
	if r.op.lacks(t, stepClientMethod) {
		return
	}
	if r.op.AuthMethod != "client_secret_post" {
		t.Skipf("%s's client is registered for the method the BFF picks itself; the mismatch needs one registered for client_secret_post (the hydra-jwt-post row)", r.op.Name)
	}
	r.bff.proc.stop(5 * time.Second) // the provider knows one redirect URI: this port's
	auto := ""
	b := startInteropBFF(t, r.op, port, r.api, interopBFFOptions{AuthMethod: &auto})
	waitReadyz(t, b, http.StatusOK, 20*time.Second)
	br := newBrowser(t)
	resp := opSignIn(t, br, b, r.op, false)
	loc, ok := resp.Location()
	if !ok || loc.Query().Get("login_error") != "misconfigured" {
		t.Fatalf("sign-in with the wrong client authentication: %d to %q, want login_error=misconfigured", resp.Status, resp.Header.Get("Location"))
	}
	// The BFF logged before it answered, but its output reaches the test
	// through a pipe: give the line a moment to arrive.
	wants := []string{"invalid_client", "oidc.auth_method", `"auth_method_used":"client_secret_basic"`}
	has := func() bool {
		for _, want := range wants {
			if !strings.Contains(b.Logs(), want) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(3 * time.Second); !has() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range wants {
		if !strings.Contains(b.Logs(), want) {
			t.Errorf("the BFF's log lacks %q", want)
		}
	}
}

// assertNoSecretsLogged: no access or refresh token the run saw, nor the
// client secret, is in the BFF's log. The control: the log is not empty
// and the run saw tokens.
func assertNoSecretsLogged(t *testing.T, r *interopRun) {
	t.Helper()
	t.Run("no_secret_in_logs", func(t *testing.T) {
		logs := r.bff.Logs()
		secrets := append(append(r.api.Bearers(), r.rts...), r.op.ClientSecret)
		if len(secrets) < 3 || !strings.Contains(logs, `"msg":"signed in"`) {
			t.Fatalf("control: %d secrets to look for, log of %d bytes without a sign-in", len(secrets), len(logs))
		}
		for i, s := range secrets {
			if len(s) >= 8 && strings.Contains(logs, s) {
				t.Errorf("secret %d of %d is in the BFF's log", i, len(secrets))
			}
		}
	})
}
