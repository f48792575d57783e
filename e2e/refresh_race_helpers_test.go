package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The refresh-race harness: the cluster of cluster_helpers_test.go (three
// instances, gossip, nginx round robin without stickiness, oidc-provider with
// refresh-token rotation and reuse detection), started with short-lived
// access tokens, a small refresh margin, a second upstream that refuses
// tokens on demand, and one instance whose internal_url goes through a
// recording reverse proxy, so a test can capture a genuine internal refresh
// request and replay it.

// raceOptions tunes startRaceCluster.
type raceOptions struct {
	AccessTTL      time.Duration // provider access-token lifetime (whole seconds)
	RefreshMargin  time.Duration // session.refresh_margin of every instance
	SuccessorGrace time.Duration // session.successor_grace of every instance
	Recorded       int           // index of the instance reached through the recorder
}

// raceCluster is the cluster plus the refresh-race test doubles.
type raceCluster struct {
	*testCluster
	opts     raceOptions
	flaky    *flakyUpstream
	recorder *internalRecorder
}

// startRaceCluster is startCluster with raceOptions, the flaky route
// (/flaky/ → flakyUpstream, token: user), the recorder in front of one
// instance, and an nginx allowed enough connections for 400 calls at once.
// It returns once every instance is ready, sees all three members, and
// nginx serves.
func startRaceCluster(t *testing.T, opts raceOptions) *raceCluster {
	t.Helper()
	rc := &raceCluster{opts: opts, flaky: startFlakyUpstream(t)}
	startClusterWith(t, clusterOptions{
		secret:    newKeySecret(t),
		accessTTL: opts.AccessTTL,
		prepare: func(c *testCluster) {
			rc.testCluster = c
			rc.recorder = startRecorder(t, c.nodes[opts.Recorded].url())
		},
		config: func(i int, cfg string) string { return rc.adjustConfig(t, cfg, i == opts.Recorded) },
		ready:  func(c *testCluster) { rc.waitMembers(t, c.nodes, 3, 15*time.Second) },
	})
	return rc
}

// adjustConfig edits the cluster harness's config: refresh margin and
// successor grace, the flaky route and, for the recorded instance, an
// internal_url through the recorder.
func (rc *raceCluster) adjustConfig(t *testing.T, cfg string, recorded bool) string {
	t.Helper()
	q := strconv.Quote
	replace := func(old, new string) {
		if !strings.Contains(cfg, old) {
			t.Fatalf("e2e: cluster config has no %q: the harness changed, update refresh_race_helpers_test.go", old)
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	replace(`refresh_margin: "2s"`, fmt.Sprintf("refresh_margin: %s\n  successor_grace: %s",
		q(rc.opts.RefreshMargin.String()), q(rc.opts.SuccessorGrace.String())))
	replace("routes:\n", "routes:\n  - path: \"/flaky/\"\n    upstream: "+q(rc.flaky.srv.URL)+"\n    token: \"user\"\n")
	if recorded {
		replace("\nlog:\n", "\n  internal_url: "+q(rc.recorder.srv.URL)+"\nlog:\n")
	}
	return cfg
}

// waitMembers waits until each of nodes counts want live members.
func (rc *raceCluster) waitMembers(t testing.TB, nodes []*clusterNode, want float64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	err := waitUntil(timeout, func() bool {
		for _, n := range nodes {
			if metricValue(rc.metricsOf(t, n), "bff_cluster_members") != want {
				return false
			}
		}
		return true
	})
	if err != nil {
		for _, n := range nodes {
			t.Errorf("bff %s: bff_cluster_members %v, want %v", n.name, metricValue(rc.metricsOf(t, n), "bff_cluster_members"), want)
		}
		t.FailNow()
	}
	return time.Since(start)
}

// login signs user in through nginx and returns the session's Cookie header
// and when the callback answered (the access token was issued just before).
func (rc *raceCluster) login(t *testing.T, user string) (string, time.Time) {
	t.Helper()
	br := newBrowser(t)
	br.Login(t, rc.public, "/", user, "pw")
	ck := sessionCookies(br)
	if ck == "" {
		t.Fatalf("no session cookie after login of %s", user)
	}
	return ck, time.Now()
}

// waitExpired sleeps until an access token issued before issued has
// expired, plus a little.
func (rc *raceCluster) waitExpired(issued time.Time) {
	time.Sleep(time.Until(issued.Add(rc.opts.AccessTTL + 150*time.Millisecond)))
}

// call is one API call as a storm sees it.
type call struct {
	status  int
	desc    string // "error: description" of a JSON error answer
	wwwAuth string
	cookie  string // Cookie header made of the session Set-Cookies of the answer; "" when none
	err     error
}

// newStormClient is an HTTP client with room for n connections at once.
func newStormClient(n int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: loopbackDialer(), MaxIdleConnsPerHost: n, MaxIdleConns: n},
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// do sends one same-origin fetch() with a fixed Cookie header, as the app
// on the public origin would, and never stores the answer's cookies.
func (rc *raceCluster) do(hc *http.Client, method, rawURL, cookies, body string) call {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return call{err: err}
	}
	req.Header.Set("Cookie", cookies)
	req.Header.Set("Origin", rc.public)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return call{err: err}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := call{status: resp.StatusCode, wwwAuth: resp.Header.Get("WWW-Authenticate"), cookie: sessionSetCookies(resp)}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		_ = json.Unmarshal(data, &e)
		out.desc = e.Error + ": " + e.Desc
	}
	return out
}

// sessionSetCookies is the Cookie header a browser would send after the
// answer's session Set-Cookies ("" when it set none; deletions dropped).
func sessionSetCookies(resp *http.Response) string {
	var parts []string
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, sessionPrefix+".") && c.MaxAge >= 0 && c.Value != "" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// storm sends per calls of GET base+path for each Cookie header at once
// (released together by one barrier), calls during right after the
// release, and returns every answer (by session, then call) and the wall
// time from release to the last answer.
func (rc *raceCluster) storm(base, path string, cookies []string, per int, during func()) ([][]call, time.Duration) {
	hc := newStormClient(len(cookies) * per)
	defer hc.CloseIdleConnections()
	out := make([][]call, len(cookies))
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i, ck := range cookies {
		out[i] = make([]call, per)
		for j := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				out[i][j] = rc.do(hc, http.MethodGet, base+path, ck, "")
			}()
		}
	}
	time.Sleep(20 * time.Millisecond) // let every goroutine reach the barrier
	began := time.Now()
	close(release)
	if during != nil {
		during()
	}
	wg.Wait()
	return out, time.Since(began)
}

// statusCounts tallies the answers of a storm ("err" for transport errors).
func statusCounts(calls [][]call) map[string]int {
	m := map[string]int{}
	for _, cs := range calls {
		for _, c := range cs {
			if c.err != nil {
				m["err"]++
			} else {
				m[strconv.Itoa(c.status)]++
			}
		}
	}
	return m
}

// fmtCounts prints a tally in a stable order.
func fmtCounts(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// newest is a Cookie header set by some answer among calls, "" if none.
func newest(calls []call) string {
	for _, c := range calls {
		if c.err == nil && c.status < 300 && c.cookie != "" {
			return c.cookie
		}
	}
	return ""
}

// refreshMetrics are the refresh counters of one instance.
type refreshMetrics map[string]float64

var refreshSeries = []string{
	`bff_refreshes_total{outcome="refreshed"}`,
	`bff_refreshes_total{outcome="shared"}`,
	`bff_refreshes_total{outcome="successor"}`,
	`bff_refreshes_total{outcome="forwarded"}`,
	`bff_refreshes_total{outcome="invalid_grant"}`,
	`bff_refreshes_total{outcome="provider_error"}`,
	`bff_refreshes_total{outcome="error"}`,
	"bff_refresh_forwarded_total",
	"bff_refresh_owner_unreachable_total",
	"bff_internal_requests_refused_total",
}

// refreshCounters scrapes the refresh counters of nodes.
func (rc *raceCluster) refreshCounters(t testing.TB, nodes []*clusterNode) []refreshMetrics {
	t.Helper()
	out := make([]refreshMetrics, len(nodes))
	for i, n := range nodes {
		text := rc.metricsOf(t, n)
		out[i] = refreshMetrics{}
		for _, s := range refreshSeries {
			out[i][s] = metricValue(text, s)
		}
	}
	return out
}

// delta is after minus before, per instance, for one series.
func delta(before, after []refreshMetrics, series string) []float64 {
	out := make([]float64, len(after))
	for i := range after {
		out[i] = after[i][series] - before[i][series]
	}
	return out
}

// fmtDeltas prints the non-zero changes of every series, per instance.
func fmtDeltas(nodes []*clusterNode, before, after []refreshMetrics) string {
	var b strings.Builder
	for i, n := range nodes {
		var parts []string
		for _, s := range refreshSeries {
			if d := after[i][s] - before[i][s]; d != 0 {
				name := strings.TrimPrefix(strings.TrimPrefix(s, "bff_"), "refreshes_total")
				parts = append(parts, fmt.Sprintf("%s=%v", name, d))
			}
		}
		fmt.Fprintf(&b, " [bff %s: %s]", n.name, strings.Join(parts, " "))
	}
	return b.String()
}

// flakyUpstream is an API that accepts any bearer token except those it is
// told to refuse, which it answers with 401 and
// WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 section 3.1).
// It keeps the tokens it saw in memory to compare; never log them.
type flakyUpstream struct {
	srv *httptest.Server

	mu        sync.Mutex
	refuse    map[string]bool
	refuseAll bool
	seen      []flakySeen
}

// flakySeen is one request the flaky upstream answered.
type flakySeen struct {
	method  string
	token   string // the raw bearer token; compare only
	status  int
	hasBody bool
}

func startFlakyUpstream(t testing.TB) *flakyUpstream {
	t.Helper()
	f := &flakyUpstream{refuse: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		status := http.StatusOK
		if tok == "" || f.refuseAll || f.refuse[tok] {
			status = http.StatusUnauthorized
		}
		f.seen = append(f.seen, flakySeen{method: r.Method, token: tok, status: status, hasBody: len(body) > 0})
		f.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		if status != http.StatusOK {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="refused by the test"`)
			writeJSON(w, status, map[string]string{"error": "invalid_token"})
			return
		}
		writeJSON(w, status, map[string]bool{"ok": true})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// since returns the requests seen after the first n.
func (f *flakyUpstream) since(n int) []flakySeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen[n:])
}

func (f *flakyUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func (f *flakyUpstream) set(refuseAll bool, refuse ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuseAll = refuseAll
	f.refuse = map[string]bool{}
	for _, tok := range refuse {
		f.refuse[tok] = true
	}
}

// internalRecorder is a reverse proxy in front of one instance's listener,
// used as that instance's cluster.internal_url: it records every internal
// refresh request (a genuine sealed request another instance sent) and
// passes everything on unchanged.
type internalRecorder struct {
	srv    *httptest.Server
	target string

	mu       sync.Mutex
	requests []recordedRequest
}

// recordedRequest is one captured POST /_bff/refresh and the owner's status.
type recordedRequest struct {
	at     time.Time
	body   []byte // sealed; opaque to the test
	status int
}

func startRecorder(t testing.TB, target string) *internalRecorder {
	t.Helper()
	r := &internalRecorder{target: target}
	hc := &http.Client{Timeout: 10 * time.Second}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadGateway)
			return
		}
		out, err := http.NewRequestWithContext(req.Context(), req.Method, target+req.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, "build", http.StatusBadGateway)
			return
		}
		out.Header = req.Header.Clone()
		resp, err := hc.Do(out)
		if err != nil {
			http.Error(w, "forward", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if req.URL.Path == "/_bff/refresh" {
			r.mu.Lock()
			r.requests = append(r.requests, recordedRequest{at: time.Now(), body: body, status: resp.StatusCode})
			r.mu.Unlock()
		}
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		r.srv.Close()
	})
	return r
}

// recorded returns the requests captured so far.
func (r *internalRecorder) recorded() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// postInternal sends body to an instance's internal refresh endpoint (or
// through nginx) and returns the status and the JSON error code.
func (rc *raceCluster) postInternal(base string, body []byte) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/_bff/refresh", bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", "application/jose")
	resp, err := rc.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, resp.Header.Get("Content-Type"), e.Error, nil
}
