package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/revocation"
)

// The series deploy/alerts.yml watches exist at zero before their first
// event, so increase() sees that event (a series born at 1 has no earlier
// sample); a value never incremented is the control that only creation
// put it there.
func TestAlertedSeriesStartAtZero(t *testing.T) {
	list, err := revocation.New(revocation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(list)
	m.refused.WithLabelValues("bad_gateway").Inc()
	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for series, want := range map[string]string{
		`bff_refreshes_total{outcome="invalid_grant"}`:                      "0",
		`bff_refreshes_total{outcome="provider_error"}`:                     "0",
		`bff_refreshes_total{outcome="refreshed"}`:                          "0",
		`bff_refused_total{reason="session_too_large"}`:                     "0",
		`bff_refused_total{reason="bad_gateway"}`:                           "1",
		`bff_client_auth_failures_total{op="refresh"}`:                      "0",
		`bff_client_auth_failures_total{op="code exchange"}`:                "0",
		`bff_revocations_total{kind="refresh_refused"}`:                     "0",
		`bff_revocations_total{kind="logout"}`:                              "0",
		`bff_refused_total{reason="temporarily_unavailable"}`:               "0",
		`bff_refused_total{reason="misconfigured"}`:                         "0",
		`bff_refreshes_total{outcome="error"}`:                              "0",
		`bff_client_auth_failures_total{op="pushed authorization request"}`: "0",
	} {
		if !strings.Contains(body, "\n"+series+" "+want+"\n") {
			t.Errorf("/metrics lacks %s %s", series, want)
		}
	}
	if strings.Contains(body, `reason="unauthenticated"`) {
		t.Error("a reason no alert watches was created before its first event")
	}
}

// Every reason created at zero is a code classify gives: renaming one in
// errors.go without here would leave an alert watching a series that
// never moves.
func TestAlertedReasonsAreCodes(t *testing.T) {
	given := map[string]bool{}
	for _, err := range []error{proxy.ErrUpstream, crypto.ErrTooLarge, oauth.ErrProvider, oauth.ErrClientAuth, errors.New("unexpected")} {
		given[classify(err).code] = true
	}
	for _, r := range alertedReasons {
		if !given[r] {
			t.Errorf("alertedReasons has %q, which classify does not give", r)
		}
	}
}
