package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestPAR runs sign-in against oidc-provider with pushed authorization
// requests (RFC 9126) required, offered and disabled. Required is the proof:
// the provider refuses a plain authorization request (the control, sent by
// the test), so a sign-in that completes was pushed. The browser's URL then
// carries client_id and request_uri only, and the request_uri is single use.
// With PAR disabled at the provider the BFF (auto) sends a plain request.
// `bff check` names the mismatch of oidc.par: off and a provider that
// requires PAR, and says PAR is used otherwise.
func TestPAR(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"required", "offered", "disabled"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			public := fmt.Sprintf("http://localhost:%d", port)
			idp := startIDP(t, IDPOptions{
				RedirectURIs:           []string{public + "/auth/callback"},
				PostLogoutRedirectURIs: []string{public + "/"},
				PAR:                    mode,
			})
			up := startUpstream(t, idp.Issuer(), DefaultAudience)
			bff := startBFF(t, BFFOptions{Port: port, Issuer: idp.Issuer(), ClientID: idp.ClientID(), ClientSecret: idp.ClientSecret(), Upstream: up.URL()})

			b := newBrowser(t)
			authURL := b.StartLogin(t, bff.URL(), "/")
			var keys []string
			for k := range authURL.Query() {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			pushed := slices.Equal(keys, []string{"client_id", "request_uri"})
			if pushed != (mode != "disabled") {
				t.Fatalf("authorization URL parameters %v with PAR %s at the provider; want pushed %v", keys, mode, mode != "disabled")
			}
			if !pushed && (authURL.Query().Get("state") == "" || authURL.Query().Get("code_challenge_method") != "S256") {
				t.Fatalf("plain authorization URL without state or PKCE: %v", keys)
			}
			final := b.FinishLogin(t, authURL, bff.URL(), "alice", "pw")
			if final.Path != "/" || final.Query().Get("login_error") != "" {
				t.Fatalf("sign-in landed on %s", final)
			}
			b.Get(t, final.String(), nil)
			if r := b.Get(t, bff.URL()+"/auth/user", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"sub":"alice"`) {
				t.Fatalf("/auth/user after sign-in: %d %s", r.Status, r.Body)
			}
			if r := b.Get(t, bff.URL()+"/api/x", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}); r.Status != http.StatusOK {
				t.Errorf("/api/x after sign-in: %d %s", r.Status, r.Body)
			}

			if pushed {
				// The request_uri served its one sign-in: another browser
				// gets no login page from it.
				if r := newBrowser(t).Get(t, authURL.String(), nil); servesLogin(r) {
					t.Errorf("the used request_uri still serves a sign-in (status %d)", r.Status)
				}
			}
			// The control: a plain request, well formed for this client.
			plain := plainAuthorizationURL(idp, public)
			r := newBrowser(t).Get(t, plain, nil)
			if refused := !servesLogin(r); refused != (mode == "required") {
				t.Errorf("plain authorization request with PAR %s: refused %v (status %d)", mode, refused, r.Status)
			}

			// bff check: PAR used, or the mismatch with off named.
			check := func(par string) (string, error) {
				cmd := exec.Command(bffBinary(t), "check", "-config", bff.ConfigPath())
				cmd.Env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET="+idp.ClientSecret(), "BFF_KEYS_SECRETS="+newKeySecret(t), "BFF_OIDC_PAR="+par)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			out, err := check("auto")
			want := map[bool]string{true: "(RFC 9126): used", false: "(RFC 9126): not offered"}[pushed]
			if err != nil || !strings.Contains(out, want) {
				t.Errorf("bff check with par auto: %v, want success saying %q:\n%s", err, want, out)
			}
			out, err = check("off")
			if mode == "required" {
				if err == nil || !strings.Contains(out, "requires pushed authorization requests") {
					t.Errorf("bff check with par off against a provider that requires PAR: %v\n%s", err, out)
				}
			} else if err != nil {
				t.Errorf("bff check with par off: %v\n%s", err, out)
			}
			if want := fmt.Sprintf(`"par":%v`, pushed); !strings.Contains(bff.Logs(), want) {
				t.Errorf("the start-up log does not say %s", want)
			}
		})
	}
}

// servesLogin reports whether r is the provider's sign-in page (or a
// redirect towards it) rather than an error.
func servesLogin(r *Response) bool {
	if loc, ok := r.Location(); ok && r.Status >= 300 && r.Status < 400 {
		return loc.Query().Get("error") == "" && !strings.Contains(loc.Path, "callback")
	}
	_, form := parseForm(r.Body)
	return r.Status == http.StatusOK && form
}

// plainAuthorizationURL is a complete authorization request of the BFF's
// client without PAR, as a BFF with par: off would send it.
func plainAuthorizationURL(idp *IDP, public string) string {
	verifier := "plain-request-verifier-0123456789-0123456789-abcdef"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {idp.ClientID()}, "response_type": {"code"}, "redirect_uri": {public + "/auth/callback"},
		"scope": {"openid"}, "state": {"plain-state-0123456789"}, "nonce": {"plain-nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	return idp.AuthURL() + "?" + q.Encode()
}
