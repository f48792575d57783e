package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func audOf(c map[string]any) []string {
	switch a := c["aud"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// TestPerRouteTokens: with oidc-provider issuing tokens per resource (RFC
// 8707) and exchanging them (RFC 8693), each upstream receives a
// DPoP-bound token whose aud is only its own, which the other upstream
// refuses (as it refuses the session's own token), with no scope beyond the
// route's and no life beyond the session's token. Each target costs one
// exchange per session token. A route asking a scope the session was not
// granted fails as the operator's error without asking the provider. A
// token: client route gets the BFF's client-credentials token without any
// session, one for all requests.
func TestPerRouteTokens(t *testing.T) {
	t.Parallel()
	const orders, billing, reports = "http://orders.test", "http://billing.test", "http://reports.test"
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	dpopKey := keygenJWK(t, "ES256")
	dpopFile := filepath.Join(t.TempDir(), "dpop-keys.json")
	writeClientKeys(t, dpopFile, dpopKey)
	idp := startIDP(t, IDPOptions{
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		Resources:              []string{orders, billing, reports},
	})
	ups := map[string]*Upstream{
		"api": startUpstream(t, idp.Issuer(), DefaultAudience), "orders": startUpstream(t, idp.Issuer(), orders),
		"billing": startUpstream(t, idp.Issuer(), billing), "reports": startUpstream(t, idp.Issuer(), reports),
	}
	route := func(path, up, extra string) string {
		return fmt.Sprintf("  - path: %q\n    upstream: %q\n%s", path, ups[up].URL(), extra)
	}
	bff := startBFF(t, BFFOptions{
		Port: port, Issuer: idp.Issuer(), ClientID: idp.ClientID(), ClientSecret: idp.ClientSecret(), Upstream: ups["api"].URL(),
		ExtraEnv: []string{"BFF_OIDC_DPOP_KEY_FILE=" + dpopFile},
		ExtraRoutes: route("/orders/", "orders", "    resource: \"http://orders.test\"\n    scopes: [\"profile\"]\n") +
			route("/billing/", "billing", "    resource: \"http://billing.test\"\n") +
			route("/greedy/", "orders", "    resource: \"http://orders.test\"\n    scopes: [\"admin\"]\n") +
			route("/reports/", "reports", "    token: \"client\"\n    resource: \"http://reports.test\"\n"),
	})
	idp.Reset(t)

	b := newBrowser(t)
	if final := b.FinishLogin(t, b.StartLogin(t, bff.URL(), "/"), bff.URL(), "alice", "pw"); final.Query().Get("login_error") != "" {
		t.Fatalf("sign-in landed on %s", final)
	}
	csrf := map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-origin"}
	// The exchanges happen over a second after the session's token was
	// issued: a derived token given a full lifetime of its own would then
	// outlive it, and the check below would see it.
	time.Sleep(1200 * time.Millisecond)
	tokens := map[string]map[string]any{}
	raw := map[string]string{}
	for _, name := range []string{"api", "orders", "billing"} {
		for range 2 {
			if r := b.Get(t, bff.URL()+"/"+name+"/x", csrf); r.Status != http.StatusOK {
				t.Fatalf("/%s/x: %d %s", name, r.Status, r.Body)
			}
		}
		last, _ := ups[name].Last()
		seen := ups[name].SeenTokens()
		if !last.AuthOK || !last.DPoP || len(seen) != 1 {
			t.Fatalf("%s upstream: AuthOK %v DPoP %v (%s), %d distinct tokens; want one DPoP-bound token", name, last.AuthOK, last.DPoP, last.AuthError, len(seen))
		}
		raw[name], tokens[name] = seen[0], jwtClaims(t, seen[0])
	}
	for name, want := range map[string]string{"api": DefaultAudience, "orders": orders, "billing": billing} {
		if aud := audOf(tokens[name]); !slices.Equal(aud, []string{want}) {
			t.Errorf("%s upstream's token has aud %v, want only %s", name, aud, want)
		}
		if tokens[name]["sub"] != "alice" {
			t.Errorf("%s upstream's token is for %v, want alice", name, tokens[name]["sub"])
		}
	}
	if tokens["orders"]["scope"] != "profile" {
		t.Errorf("orders token scope %q, want the route's profile only", tokens["orders"]["scope"])
	}
	for _, name := range []string{"orders", "billing"} {
		if tokens[name]["exp"].(float64) > tokens["api"]["exp"].(float64) {
			t.Errorf("%s token outlives the session's token", name)
		}
	}
	if st := idp.Stats(t); st.Exchanges[orders] != 1 || st.Exchanges[billing] != 1 {
		t.Errorf("exchanges %v: want one per target for four calls", st.Exchanges)
	}

	// Each token works only at its own upstream: presented elsewhere, with
	// a valid proof by the BFF's key, it is refused for its audience.
	present := func(up *Upstream, token string) int {
		t.Helper()
		target := up.URL() + "/x"
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", makeProof(t, dpopKey, http.MethodGet, target, token))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct{ token, at string }{
		{"orders", "billing"}, {"billing", "orders"}, {"api", "orders"}, {"orders", "api"},
	} {
		if got := present(ups[tc.at], raw[tc.token]); got != http.StatusUnauthorized {
			t.Errorf("the %s token at the %s upstream: %d, want 401", tc.token, tc.at, got)
		}
	}
	if got := present(ups["orders"], raw["orders"]); got != http.StatusOK {
		t.Errorf("control: the orders token at its own upstream: %d, want 200", got)
	}

	const exchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	before := idp.Stats(t).TokenCalls[exchangeGrant]
	r := b.Get(t, bff.URL()+"/greedy/x", csrf)
	var body struct{ Error string }
	json.Unmarshal(r.Body, &body)
	if r.Status != http.StatusInternalServerError || body.Error != "misconfigured" || idp.Stats(t).TokenCalls[exchangeGrant] != before {
		t.Errorf("a route asking a scope the session lacks: %d %s; want 500 misconfigured, the provider not asked", r.Status, r.Body)
	}
	if r := b.Get(t, bff.URL()+"/auth/user", csrf); r.Status != http.StatusOK {
		t.Errorf("the session after the refused route: %d, want it kept", r.Status)
	}

	anon := newBrowser(t)
	for range 3 {
		if r := anon.Get(t, bff.URL()+"/reports/x", csrf); r.Status != http.StatusOK {
			t.Fatalf("/reports/x signed out: %d %s", r.Status, r.Body)
		}
	}
	last, _ := ups["reports"].Last()
	seen := ups["reports"].SeenTokens()
	if !last.AuthOK || len(seen) != 1 {
		t.Fatalf("reports upstream: AuthOK %v (%s), %d tokens", last.AuthOK, last.AuthError, len(seen))
	}
	c := jwtClaims(t, seen[0])
	if aud := audOf(c); !slices.Equal(aud, []string{reports}) || c["sub"] != idp.ClientID() {
		t.Errorf("client token: aud %v sub %v, want %s and the client", aud, c["sub"], reports)
	}
	if n := idp.Stats(t).ClientCredentials[reports]; n != 1 {
		t.Errorf("%d client-credentials tokens for three calls, want 1", n)
	}
}
