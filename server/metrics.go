package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/revocation"
	"github.com/bff-project/bff/session"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec   // route, code class
	latency    *prometheus.HistogramVec // route
	refused    *prometheus.CounterVec   // reason (the public error code)
	sessions   *prometheus.CounterVec   // event: opened, sealed, refused_<reason>
	refreshes  *prometheus.CounterVec   // outcome
	cookieSize prometheus.Histogram
	overBudget prometheus.Counter
	provider   *prometheus.HistogramVec // code class
	revocation *prometheus.CounterVec   // kind
	clientAuth *prometheus.CounterVec   // op: the provider refused the client (invalid_client)

	gossipSent     prometheus.Counter
	gossipReceived prometheus.Counter
	gossipDropped  prometheus.Counter

	ownerForwarded   prometheus.Counter
	ownerUnreachable prometheus.Counter
	internalRefused  prometheus.Counter
	adminRefused     prometheus.Counter
}

func newMetrics(revoked *revocation.List) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_http_requests_total", Help: "Requests served, by route and status class.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_http_request_duration_seconds", Help: "Request latency, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_refused_total", Help: "Requests answered with an error, by reason.",
	}, []string{"reason"})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_sessions_total", Help: "Session cookies opened, sealed and refused (by reason).",
	}, []string{"event"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_refreshes_total", Help: "Access-token refreshes by outcome: refreshed, shared (single flight), successor (cache), invalid_grant (the grant is gone: any error code but those below), invalid_client, provider_error, error.",
	}, []string{"outcome"})
	m.clientAuth = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_client_auth_failures_total", Help: "Token-endpoint calls the provider refused with invalid_client (a configuration error), by operation.",
	}, []string{"op"})
	m.cookieSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bff_session_cookie_bytes", Help: "Bytes of session cookies written.",
		Buckets: []float64{1000, 2000, 3000, 4000, 5000, 6000, 8000, 12000, 16000},
	})
	m.overBudget = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_session_over_budget_total", Help: "Sessions written over the cookie byte budget.",
	})
	m.provider = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_provider_request_duration_seconds", Help: "Latency of calls to the identity provider, by status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"code"})
	m.revocation = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_revocations_total", Help: "Revocations recorded, by kind: logout, backchannel, refresh_refused (the provider refused a refresh), admin.",
	}, []string{"kind"})
	m.gossipSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_cluster_revocations_broadcast_total", Help: "Revocations this instance sent to the cluster.",
	})
	m.gossipReceived = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_cluster_revocations_received_total", Help: "Revocations learned from other instances (new entries only).",
	})
	m.gossipDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_cluster_messages_dropped_total", Help: "Cluster messages dropped as malformed.",
	})
	m.ownerForwarded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_refresh_forwarded_total", Help: "Refreshes answered by the session's owning instance.",
	})
	m.ownerUnreachable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_refresh_owner_unreachable_total", Help: "Refreshes done locally because the owning instance did not answer.",
	})
	m.internalRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_internal_requests_refused_total", Help: "Forged, stale or replayed internal refresh requests refused.",
	})
	m.adminRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bff_admin_requests_refused_total", Help: "Admin API requests without the admin token.",
	})
	m.reg.MustRegister(m.gossipSent, m.gossipReceived, m.gossipDropped, m.ownerForwarded, m.ownerUnreachable, m.internalRefused, m.clientAuth, m.adminRefused)
	m.reg.MustRegister(m.requests, m.latency, m.refused, m.sessions, m.refreshes, m.cookieSize, m.overBudget, m.provider, m.revocation,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bff_revocation_list_entries", Help: "Revocations on the list (sessions, provider sessions, subjects).",
		}, func() float64 { return float64(revoked.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bff_single_use_entries", Help: "Single-use values remembered as used (sign-in states, logout-token ids, ...).",
		}, func() float64 { return float64(revoked.OnceLen()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bff_revocation_evictions_total", Help: "Revocations evicted from a full list, earliest expiry first.",
		}, func() float64 { r, _ := revoked.Evicted(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bff_single_use_evictions_total", Help: "Single-use values evicted from a full set, earliest expiry first.",
		}, func() float64 { _, o := revoked.Evicted(); return float64(o) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// The label values an alert watches start at zero: a series that
	// appears at its first increment has no earlier sample, so increase()
	// over it would miss that first event (deploy/alerts.yml).
	for _, o := range []string{string(proxy.OutcomeRefreshed), string(proxy.OutcomeShared), string(proxy.OutcomeSuccessor),
		string(proxy.OutcomeForwarded), string(proxy.OutcomeCooldown),
		refreshInvalidGrant, refreshInvalidClient, refreshProviderError, refreshError} {
		m.refreshes.WithLabelValues(o)
	}
	for _, r := range alertedReasons {
		m.refused.WithLabelValues(r)
	}
	for _, op := range []string{"pushed authorization request", "code exchange", "refresh"} {
		m.clientAuth.WithLabelValues(op)
	}
	for _, k := range []string{"logout", "backchannel", "refresh_refused", "admin"} {
		m.revocation.WithLabelValues(k)
	}
	return m
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func codeClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

func (m *metrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, codeClass(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) observeRefresh(o proxy.Outcome, err error) {
	if err != nil {
		m.refreshes.WithLabelValues(refreshErrorClass(err)).Inc()
		return
	}
	m.refreshes.WithLabelValues(string(o)).Inc()
}

// providerTransport wraps the transport to the identity provider with a
// latency histogram labelled by status code.
func (m *metrics) providerTransport(next http.RoundTripper) http.RoundTripper {
	return promhttp.InstrumentRoundTripperDuration(m.provider, next)
}

// The outcome label of a failed refresh.
const (
	refreshInvalidGrant  = "invalid_grant"
	refreshInvalidClient = "invalid_client"
	refreshProviderError = "provider_error"
	refreshError         = "error"
)

func refreshErrorClass(err error) string {
	switch {
	case errors.Is(err, oauth.ErrReauthRequired):
		return refreshInvalidGrant
	case errors.Is(err, oauth.ErrClientAuth):
		return refreshInvalidClient
	case errors.Is(err, oauth.ErrProvider):
		return refreshProviderError
	default:
		return refreshError
	}
}

// alertedReasons are the bff_refused_total reasons deploy/alerts.yml
// watches (codes classify gives), created at zero.
var alertedReasons = []string{"session_too_large", "temporarily_unavailable", "bad_gateway", "server_error", "misconfigured"}

// countingSessions counts what happens to session cookies on their way
// through the proxy and the auth endpoints.
type countingSessions struct {
	*session.Store
	m *metrics
}

func (c countingSessions) Load(r *http.Request) (*session.Session, error) {
	s, err := c.Store.Load(r)
	switch {
	case err == nil:
		c.m.sessions.WithLabelValues("opened").Inc()
	case errors.Is(err, session.ErrNoSession):
	default:
		c.m.sessions.WithLabelValues("refused_" + sessionErrorReason(err)).Inc()
	}
	return s, err
}

func sessionErrorReason(err error) string {
	switch {
	case errors.Is(err, session.ErrIdle):
		return "idle"
	case errors.Is(err, session.ErrExpired):
		return "expired"
	case errors.Is(err, session.ErrRevoked):
		return "revoked"
	default:
		return "invalid"
	}
}
