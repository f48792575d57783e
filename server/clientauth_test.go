package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// wrongSecret is a client secret the provider never registered.
const wrongSecret = "not-the-registered-secret-4c1d"

// TestClientAuthRefusedAtSignIn: when the provider refuses the BFF's own
// credentials at the code exchange (invalid_client), the user is told the
// service is misconfigured (500), never "try again" (503); the operator's
// log names the settings to check; the failure is counted.
func TestClientAuthRefusedAtSignIn(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *server.Config) { c.OIDC.ClientSecret = wrongSecret }})
	b := e.browser()
	cb := b.finish(b.startLogin("/"))
	checkJSONError(t, cb, http.StatusInternalServerError, "misconfigured")
	if cb.sessionSet() {
		t.Fatal("a refused code exchange set a session")
	}
	logs := e.logs.String()
	for _, want := range []string{"invalid_client", "oidc.client_secret", "oidc.auth_method", `"auth_method_used":"client_secret_basic"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, wrongSecret) {
		t.Error("the client secret reached the log")
	}
	// A 5xx refusal is an error for the operator, not an info line.
	if !strings.Contains(logs, `"level":"ERROR","msg":"request refused","path":"/auth/callback","status":500`) {
		t.Errorf("the refusal was not logged as an error:\n%s", logs)
	}
	if cb.Header.Get("WWW-Authenticate") != "" {
		t.Error("a 500 carries WWW-Authenticate")
	}
	if got := clientAuthMetric(t, e.srv, "code exchange"); got != 1 {
		t.Errorf(`bff_client_auth_failures_total{op="code exchange"} = %v, want 1`, got)
	}
}

// TestClientAuthRefusedAtRefresh: an instance whose secret the provider
// refuses keeps the session (the grant is fine; only the configuration is
// wrong): the still-valid token is forwarded, an expired one gets 500
// misconfigured, and the session still works on a correctly configured
// instance afterwards. The positive control is that same instance.
func TestClientAuthRefusedAtRefresh(t *testing.T) {
	e := newEnv(t, envOptions{accessTTL: 3 * time.Second})
	bad := e.startBFF(nil, e.cfg.PublicURL, envOptions{config: func(c *server.Config) {
		c.OIDC.ClientSecret = wrongSecret
		c.RefreshMargin = time.Hour // refresh on every call
	}})
	b := e.browser()
	b.signIn("/")

	// Token still valid: refused refresh, the call goes through anyway.
	if r := b.doAt(bad.base, http.MethodGet, "/api/x", e.apiHeaders()); r.StatusCode != http.StatusOK {
		t.Fatalf("call with a valid token on the misconfigured instance: %d %s", r.StatusCode, r.body)
	}
	if got := clientAuthMetric(t, bad.srv, "refresh"); got < 1 {
		t.Fatalf(`bff_client_auth_failures_total{op="refresh"} = %v, want >= 1`, got)
	}
	time.Sleep(3500 * time.Millisecond) // the access token expires
	r := b.doAt(bad.base, http.MethodGet, "/api/x", e.apiHeaders())
	checkJSONError(t, r, http.StatusInternalServerError, "misconfigured")
	if r.Header.Get("Retry-After") != "" {
		t.Error("a configuration error told the client to retry")
	}
	if len(r.deleted()) > 0 {
		t.Fatalf("the misconfigured instance cleared the session cookies %v", r.deleted())
	}
	// The session is intact: the well-configured instance refreshes it.
	if r := b.do(http.MethodGet, "/api/x", e.apiHeaders()); r.StatusCode != http.StatusOK {
		t.Fatalf("the session after the misconfigured refresh: %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(bad.logs.String(), wrongSecret) {
		t.Error("the client secret reached the log")
	}
	// The outcomes reach bff_refreshes_total: the refused ones as
	// invalid_client, the good instance's as refreshed.
	if got := metricValue(t, bad.srv, `bff_refreshes_total{outcome="invalid_client"}`); got < 1 {
		t.Errorf(`misconfigured instance: bff_refreshes_total{outcome="invalid_client"} = %v, want >= 1`, got)
	}
	if got := metricValue(t, e.srv, `bff_refreshes_total{outcome="refreshed"}`); got != 1 {
		t.Errorf(`good instance: bff_refreshes_total{outcome="refreshed"} = %v, want 1`, got)
	}
}

// clientAuthMetric reads bff_client_auth_failures_total{op}.
func clientAuthMetric(t *testing.T, srv *server.Server, op string) float64 {
	t.Helper()
	return metricValue(t, srv, `bff_client_auth_failures_total{op="`+op+`"}`)
}
