package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The adversarial suite's own harness: a stack whose provider delivers
// back-channel logout tokens through a capturing proxy, an upstream tap that
// records the forwarding headers' values, and the checks every refused
// request must pass. Everything is named adv* so that it cannot collide with
// the shared harness, which it only uses.

// advTap sits between the BFF and the harness upstream: it records what the
// BFF forwarded (the values of the forwarding headers and the Host, never
// Authorization or Cookie) and passes the request on unchanged.
type advTap struct {
	srv *httptest.Server

	mu   sync.Mutex
	seen []advTapRecord
}

type advTapRecord struct {
	Method, Path, Host string
	Names              []string            // canonical header names, sorted
	Forwarding         map[string][]string // X-Forwarded-*, Forwarded, X-Real-Ip, True-Client-Ip values
}

func startAdvTap(t testing.TB, target string) *advTap {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tap := &advTap{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		for k, v := range pr.In.Header { // Rewrite drops these; the upstream should see what the BFF sent
			if strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" {
				pr.Out.Header[k] = slices.Clone(v)
			}
		}
	}}
	tap.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := advTapRecord{Method: r.Method, Path: r.URL.Path, Host: r.Host, Forwarding: map[string][]string{}}
		for k, v := range r.Header {
			rec.Names = append(rec.Names, k)
			if strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" || k == "X-Real-Ip" || k == "True-Client-Ip" {
				rec.Forwarding[k] = slices.Clone(v)
			}
		}
		slices.Sort(rec.Names)
		tap.mu.Lock()
		tap.seen = append(tap.seen, rec)
		tap.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(tap.srv.Close)
	return tap
}

func (tp *advTap) URL() string { return tp.srv.URL }

func (tp *advTap) count() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.seen)
}

func (tp *advTap) last() (advTapRecord, bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.seen) == 0 {
		return advTapRecord{}, false
	}
	return tp.seen[len(tp.seen)-1], true
}

// advCapture receives the provider's back-channel logout POSTs, keeps each
// form body and forwards it to the BFF, answering with the BFF's status.
type advCapture struct {
	srv    *httptest.Server
	target string // the BFF's back-channel URL

	mu     sync.Mutex
	bodies []string
	status []int
}

func startAdvCapture(t testing.TB, target string) *advCapture {
	t.Helper()
	c := &advCapture{target: target}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: loopbackDialer()}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		req, _ := http.NewRequest(http.MethodPost, c.target, bytes.NewReader(body))
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := hc.Do(req)
		status := http.StatusBadGateway
		if err == nil {
			status = resp.StatusCode
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, string(body))
		c.status = append(c.status, status)
		c.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// captured returns the bodies received so far and the BFF's answers.
func (c *advCapture) captured() ([]string, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.bodies), slices.Clone(c.status)
}

// advResult is one line of the catalogue table.
type advResult struct {
	name   string
	status int
	reason string
	metric string
}

// advStack is one provider, upstream (behind the tap), capture proxy and BFF,
// plus a victim: a valid session in another jar that every refusal must
// leave alone.
type advStack struct {
	idp           *IDP
	up            *Upstream
	tap           *advTap
	capture       *advCapture
	bff           *BFF
	victim        *Browser // nil: no victim check
	vCookie       string   // the victim's session cookie header
	raw           *Browser // sends the forged requests; its jar is never used
	metricsClient *http.Client
	browsers      []*Browser // every browser whose codes and states must stay out of the logs

	mu       sync.Mutex
	secrets  map[string]string // label -> value that must never be logged
	results  []advResult
	lastSent string // the Cookie header of the last forged request
}

// startAdvStack starts the stack; extraEnv goes to the BFF process.
func startAdvStack(t *testing.T, lifetime time.Duration, extraEnv ...string) *advStack {
	t.Helper()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	s := &advStack{secrets: map[string]string{}}
	s.capture = startAdvCapture(t, fmt.Sprintf("http://127.0.0.1:%d/auth/backchannel-logout", port))
	s.idp = startIDP(t, IDPOptions{
		RedirectURIs:           []string{public + "/auth/callback"},
		PostLogoutRedirectURIs: []string{public + "/"},
		BackchannelLogoutURI:   s.capture.srv.URL + "/auth/backchannel-logout",
	})
	s.up = startUpstream(t, s.idp.Issuer(), DefaultAudience)
	s.tap = startAdvTap(t, s.up.URL())
	// PAR off: the catalogue reads the flow's state and redirect_uri from
	// the authorization URL, as anyone watching a plain one can; TestPAR
	// covers pushed requests. A later entry of extraEnv wins.
	s.bff = startBFF(t, BFFOptions{
		Port: port, Issuer: s.idp.Issuer(), ClientID: s.idp.ClientID(), ClientSecret: s.idp.ClientSecret(),
		Upstream: s.tap.URL(), Lifetime: lifetime, ExtraEnv: append([]string{"BFF_OIDC_PAR=off"}, extraEnv...),
	})
	s.raw = newBrowser(t)
	s.metricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: loopbackDialer(), DisableKeepAlives: true}}
	s.secrets["client secret"] = s.idp.ClientSecret()
	s.secrets["key secret"] = s.bff.opts.KeySecret
	return s
}

// login signs user in with a new browser and remembers its cookies as
// secrets.
func (s *advStack) login(t *testing.T, user string) *Browser {
	t.Helper()
	b := newBrowser(t)
	b.Login(t, s.bff.URL(), "/", user, "pw")
	s.keep(b)
	return b
}

// keep remembers b's cookie values, codes and states as secrets.
func (s *advStack) keep(b *Browser) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.browsers, b) {
		s.browsers = append(s.browsers, b)
	}
	for _, n := range b.CookieNames(bffHost) {
		if v, ok := b.CookieValue(bffHost, n); ok && len(v) >= 8 {
			s.secrets["cookie "+n+" #"+strconv.Itoa(len(s.secrets))] = v
		}
	}
}

// cookieHeader is the Cookie header b sends to the BFF.
func (s *advStack) cookieHeader(b *Browser) string {
	u, _ := url.Parse(s.bff.URL() + "/")
	return b.jar.header(u)
}

// setVictim makes b the session every refusal must leave alone.
func (s *advStack) setVictim(b *Browser) {
	s.victim = b
	s.vCookie = s.cookieHeader(b)
}

// send makes one same-origin-looking request with exactly the given Cookie
// header ("" for none) and headers (an empty value removes a default).
func (s *advStack) send(t *testing.T, method, path, cookie string, headers map[string]string, body string) *Response {
	t.Helper()
	h := fetchHeaders(method, s.bff.URL()+path, headers)
	h["Cookie"] = cookie
	s.mu.Lock()
	s.lastSent = cookie
	s.mu.Unlock()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return s.raw.do(t, method, s.bff.URL()+path, h, rd)
}

func (s *advStack) metrics(t *testing.T) string {
	t.Helper()
	return getMetrics(t, s.metricsClient, s.bff.MetricsURL())
}

// advState is what "nothing changed" compares.
type advState struct {
	metrics  string
	stats    IDPStats
	upstream int
	tap      int
	logOff   int
}

func (s *advStack) state(t *testing.T) advState {
	t.Helper()
	return advState{metrics: s.metrics(t), stats: s.idp.Stats(t), upstream: len(s.up.Requests()), tap: s.tap.count(), logOff: len(s.bff.Logs())}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// advWant is what a refusal must look like.
type advWant struct {
	status int
	reason string // the bff_refused_total label and the log line's reason
	// providerCalled allows token-endpoint calls (a replayed code must be
	// refused by the provider, which the BFF cannot know beforehand).
	providerCalled bool
	// streamed allows the upstream to see the request's head: a proxied
	// body is streamed, not buffered, so a body that stops arriving is cut
	// after the upstream got the headers. The caller then checks that no
	// complete body arrived.
	streamed bool
	// maxElapsed bounds how long the refusal may take; zero means 2 s. A
	// refusal that takes time by design (a body that trickles in) sets it.
	maxElapsed time.Duration
	// sessionEvent, when set, is the bff_sessions_total event that must move
	// by one (refused_invalid, refused_expired, ...).
	sessionEvent string
	// logErr, when set, must be part of the refusal's logged error.
	logErr string
}

// refused runs send and asserts the whole refusal contract: the status, a
// JSON {"error","error_description"} body with Cache-Control: no-store, no
// Set-Cookie but deletions of the BFF's cookies, a "request refused" log line
// with the reason and no secret in the new logs, bff_refused_total{reason}
// +1, and nothing changed: no session sealed, no revocation, no refresh, the
// provider and the upstream untouched, the victim's session still good.
func (s *advStack) refused(t *testing.T, name string, want advWant, send func(t *testing.T) *Response) *Response {
	t.Helper()
	before := s.state(t)
	start := time.Now()
	r := send(t)
	elapsed := time.Since(start)
	s.checkShape(t, r, want.status)
	s.checkSetCookies(t, r)
	if e := s.waitRefusedLog(t, before.logOff, want.reason); want.logErr != "" && !strings.Contains(e, want.logErr) {
		t.Errorf("refusal logged err %q, want it to say %q", e, want.logErr)
	}
	s.checkLogs(t, before.logOff)
	after := s.metrics(t)
	d := metric(after, "bff_refused_total", map[string]string{"reason": want.reason}) -
		metric(before.metrics, "bff_refused_total", map[string]string{"reason": want.reason})
	if d != 1 {
		t.Errorf("bff_refused_total{reason=%q} moved by %v, want 1", want.reason, d)
	}
	if want.sessionEvent != "" {
		ev := map[string]string{"event": want.sessionEvent}
		if d := metric(after, "bff_sessions_total", ev) - metric(before.metrics, "bff_sessions_total", ev); d != 1 {
			t.Errorf("bff_sessions_total{event=%q} moved by %v, want 1", want.sessionEvent, d)
		}
	}
	if want.streamed {
		before.tap, before.upstream = s.tap.count(), len(s.up.Requests())
	}
	s.checkNothingChanged(t, before, after, want.providerCalled)
	s.checkVictim(t)
	s.record(advResult{name: name, status: r.Status, reason: want.reason, metric: fmt.Sprintf("refused{%s}+%v", want.reason, d)})
	maxElapsed := want.maxElapsed
	if maxElapsed == 0 {
		maxElapsed = 2 * time.Second
	}
	if elapsed > maxElapsed {
		t.Errorf("refusal took %s, want at most %s", elapsed, maxElapsed)
	}
	return r
}

func (s *advStack) record(r advResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = append(s.results, r)
}

// checkShape checks status, JSON error body, no-store and no redirect.
func (s *advStack) checkShape(t *testing.T, r *Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d (body %.200s)", r.Status, status, r.Body)
	}
	if r.Header.Get("Location") != "" {
		t.Errorf("refusal answered with a redirect")
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var e map[string]any
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Errorf("body %.200s is not JSON", r.Body)
		return
	}
	code, _ := e["error"].(string)
	desc, _ := e["error_description"].(string)
	if code == "" || desc == "" || len(e) != 2 {
		t.Errorf("body %.200s is not exactly {\"error\",\"error_description\"}", r.Body)
	}
	if strings.Contains(string(r.Body), "eyJ") || strings.Contains(string(r.Body), "goroutine") {
		t.Errorf("error body holds a token or a stack trace")
	}
}

// checkSetCookies allows only deletions of the BFF's own cookies.
func (s *advStack) checkSetCookies(t *testing.T, r *Response) {
	t.Helper()
	now := time.Now()
	for _, c := range r.SetCookies {
		deletion := c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(now))
		if !strings.HasPrefix(c.Name, sessionPrefix) || !deletion || c.Value != "" {
			t.Errorf("refusal sets cookie %s (max-age %d, %d value bytes): only deletions of the BFF's cookies are allowed", c.Name, c.MaxAge, len(c.Value))
		}
	}
}

// advLogLine is the part of a JSON log line the checks read.
type advLogLine struct {
	Err    string `json:"err"`
	Msg    string `json:"msg"`
	Reason string `json:"reason"`
	Status int    `json:"status"`
}

// waitRefusedLog waits (the process writes through a pipe) for a "request
// refused" line with reason written after off.
func (s *advStack) waitRefusedLog(t *testing.T, off int, reason string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		logs := s.bff.Logs()
		if off > len(logs) {
			off = len(logs)
		}
		sc := bufio.NewScanner(strings.NewReader(logs[off:]))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var l advLogLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "request refused" && l.Reason == reason {
				return l.Err
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no \"request refused\" log line with reason %q", reason)
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLogs looks for secrets in the logs written after off: the stack's
// secrets, every cookie value sent with the last forged request, and any
// JWT/JWE-looking string.
func (s *advStack) checkLogs(t *testing.T, off int) {
	t.Helper()
	logs := s.bff.Logs()
	if off > len(logs) {
		off = len(logs)
	}
	logs = logs[off:]
	s.mu.Lock()
	secrets := map[string]string{}
	for k, v := range s.secrets {
		secrets[k] = v
	}
	for i, part := range strings.Split(s.lastSent, ";") {
		if _, v, ok := strings.Cut(part, "="); ok && len(v) >= 12 {
			secrets["presented cookie value #"+strconv.Itoa(i)] = v
		}
	}
	browsers := slices.Clone(s.browsers)
	s.mu.Unlock()
	for _, b := range browsers {
		for i, c := range b.Codes() {
			secrets["code #"+strconv.Itoa(i)] = c
		}
		for i, st := range b.States() {
			secrets["state/nonce #"+strconv.Itoa(i)] = st
		}
	}
	// Every token the provider issued, in its raw form: an opaque refresh
	// token would not look like a JWT.
	for i, it := range s.idp.Issued(t) {
		secrets["issued access token #"+strconv.Itoa(i)] = it.AccessToken
		secrets["issued refresh token #"+strconv.Itoa(i)] = it.RefreshToken
		secrets["issued ID token #"+strconv.Itoa(i)] = it.IDToken
	}
	// Positive control: the window holds lines of the requests just made
	// (the access line may follow the response by a moment), so a BFF that
	// logged nothing cannot pass.
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(logs, `"msg":"request`); {
		if time.Now().After(deadline) {
			t.Errorf("the log window checked holds no request line: the secret search would pass vacuously")
			break
		}
		time.Sleep(20 * time.Millisecond)
		logs = s.bff.Logs()[off:]
	}
	for what, v := range secrets {
		if v != "" && strings.Contains(logs, v) {
			t.Errorf("BFF logs contain the %s", what)
		}
	}
	if strings.Contains(logs, "eyJ") {
		t.Errorf("BFF logs contain an eyJ (JWT/JWE-looking) string")
	}
}

// checkNothingChanged compares the state before and after a refusal.
func (s *advStack) checkNothingChanged(t *testing.T, before advState, after string, providerCalled bool) {
	t.Helper()
	same := []struct {
		name   string
		labels map[string]string
	}{
		{"bff_revocation_list_entries", nil},
		{"bff_revocations_total", nil},
		{"bff_sessions_total", map[string]string{"event": "sealed"}},
		{"bff_refreshes_total", nil},
		{"bff_session_cookie_bytes_count", nil},
	}
	for _, m := range same {
		if b, a := metric(before.metrics, m.name, m.labels), metric(after, m.name, m.labels); a != b {
			t.Errorf("%s%v changed %v -> %v on a refused request", m.name, m.labels, b, a)
		}
	}
	st := s.idp.Stats(t)
	if !providerCalled && sumCounts(st.TokenCalls) != sumCounts(before.stats.TokenCalls) {
		t.Errorf("provider token endpoint called %d time(s) for a refused request", sumCounts(st.TokenCalls)-sumCounts(before.stats.TokenCalls))
	}
	if st.RevocationCalls != before.stats.RevocationCalls || st.GrantsRevoked != before.stats.GrantsRevoked && !providerCalled {
		t.Errorf("provider revocations changed: calls %d -> %d, grants revoked %d -> %d",
			before.stats.RevocationCalls, st.RevocationCalls, before.stats.GrantsRevoked, st.GrantsRevoked)
	}
	if n := len(s.up.Requests()); n != before.upstream {
		t.Errorf("the upstream saw %d request(s) of a refused request", n-before.upstream)
	}
	if n := s.tap.count(); n != before.tap {
		t.Errorf("the upstream tap saw %d request(s) of a refused request", n-before.tap)
	}
}

// checkVictim asserts the parallel session still opens, unchanged and not
// re-sealed.
func (s *advStack) checkVictim(t *testing.T) {
	t.Helper()
	if s.victim == nil {
		return
	}
	r := s.victim.Get(t, s.bff.URL()+"/auth/user", nil)
	if r.Status != http.StatusOK {
		t.Errorf("the victim's session answers %d after the refusal", r.Status)
	}
	if len(r.SetCookies) != 0 {
		t.Errorf("the victim's session was re-sealed or cleared")
	}
	if got := s.cookieHeader(s.victim); got != s.vCookie {
		t.Errorf("the victim's cookies changed")
	}
}

// table logs the catalogue results.
func (s *advStack) table(t *testing.T, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s catalogue (%d cases):\n", title, len(s.results))
	for _, r := range s.results {
		fmt.Fprintf(&b, "  %-58s %3d  %-22s %s\n", r.name, r.status, r.reason, r.metric)
	}
	t.Log(b.String())
}

// loginCookieName is the BFF's login cookie name for a flow's state.
func loginCookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return loginCookiePrefix + hex.EncodeToString(h[:8])
}

// b64j is the base64url of a JSON text.
func b64j(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// rawExchange writes req on a fresh TCP connection and reads one response.
// It returns the status (0 when the server closed without answering) and
// how long it took.
func rawExchange(t *testing.T, addr, req string, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	st := rawExchangeN(t, addr, req, 1, timeout)
	return st[0], time.Since(start)
}

// rawExchangeN writes req (which may hold pipelined requests) and reads up
// to n responses; a status is 0 when the server closed instead.
func rawExchangeN(t *testing.T, addr, req string, n int, timeout time.Duration) []int {
	t.Helper()
	out := make([]int, n)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, req); err != nil {
		return out
	}
	br := bufio.NewReader(conn)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		out[i] = resp.StatusCode
	}
	return out
}
