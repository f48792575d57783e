package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// The oidc-provider row of the interop matrix (e2e/idp/server.js, the
// certified Node.js provider every other suite uses), behind a gate, with
// profile and email claims only at userinfo (as a conforming provider
// does): its access tokens are then opaque, issued for userinfo, so the
// test API checks them there.

func init() {
	interopStarters = append(interopStarters, interopStarter{name: "oidc-provider", start: startOIDCProviderOP})
}

func startOIDCProviderOP(t *testing.T, urls opURLs) *opProvider {
	t.Helper()
	port := freePort(t)
	gate := startGate(t, "127.0.0.1:"+strconv.Itoa(port))
	idp := startIDP(t, IDPOptions{
		Port:                   port,
		Issuer:                 gate.URL(),
		AccessTTL:              10 * time.Second,
		RedirectURIs:           []string{urls.Callback},
		PostLogoutRedirectURIs: []string{urls.PostLogout},
		BackchannelLogoutURI:   urls.Backchannel,
		UserInfoClaims:         true,
	})
	direct := "http://127.0.0.1:" + strconv.Itoa(port)
	op := &opProvider{
		Name:         "oidc-provider",
		Issuer:       idp.Issuer(),
		Direct:       direct,
		Gate:         gate,
		ClientID:     idp.ClientID(),
		ClientSecret: idp.ClientSecret(),
		UserInfo:     true,
		AccessTTL:    10 * time.Second,
		User:         "interop-user",
		Password:     "any",
		// The development login takes the login as the subject; email is
		// only at userinfo with USERINFO_CLAIMS.
		Claims:   map[string]string{"email": "interop-user@example.test"},
		Validate: userinfoValidator(direct),
		Logs:     idp.stderr,
	}
	op.Fill = func(t *testing.T, page *url.URL, body []byte, deny bool) (*url.URL, url.Values) {
		t.Helper()
		f, ok := parseForm(body)
		if !ok {
			t.Fatalf("oidc-provider: no form at %s: %.400s", redactURL(page.String()), body)
		}
		action, err := page.Parse(f.action)
		if err != nil {
			t.Fatal(err)
		}
		if f.fields.Has("login") {
			f.fields.Set("login", op.User)
			f.fields.Set("password", op.Password)
		}
		if deny && f.fields.Get("prompt") == "consent" {
			// The development consent page's "Cancel" link.
			abort, err := page.Parse(strings.TrimSuffix(action.Path, "/confirm") + "/abort")
			if err != nil {
				t.Fatal(err)
			}
			return abort, nil
		}
		return action, f.fields
	}
	op.ProviderLogout = func(t *testing.T, br *Browser) {
		t.Helper()
		// Its end-session page, then "Yes, sign me out".
		end := op.Issuer + "/session/end"
		page := br.Get(t, end, map[string]string{"Accept": "text/html"})
		f, ok := parseForm(page.Body)
		if page.Status != http.StatusOK || !ok {
			t.Fatalf("oidc-provider end-session page: %d %.300s", page.Status, page.Body)
		}
		action, err := page.URL.Parse(f.action)
		if err != nil {
			t.Fatal(err)
		}
		f.fields.Set("logout", "yes")
		r := br.Do(t, http.MethodPost, action.String(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, f.fields.Encode())
		if r.Status < 300 || r.Status >= 400 {
			t.Fatalf("oidc-provider end-session confirm: %d %.300s", r.Status, r.Body)
		}
	}
	// Discovery must name the gate: the BFF compares the issuer exactly.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := oidc.NewProvider(oidc.ClientContext(ctx, http.DefaultClient), op.Issuer); err != nil && !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("oidc-provider discovery through the gate: %v", err)
	}
	return op
}
