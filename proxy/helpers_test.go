package proxy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/session"
)

// t0 is the fixed time every test starts at.
var t0 = time.Unix(1_700_000_000, 0)

const (
	sessionCookie = "__Host-Http-bff"
	savedMarker   = sessionCookie + ".0=saved; Path=/; Secure; HttpOnly"
	clearedMarker = sessionCookie + ".0=; Path=/; Max-Age=0"
)

// isBFFCookie is the IsBFFCookie the server passes: every name the cookie
// reader takes as its own (crypto.InNamespace: NAME.<anything>, canonical
// chunk index or not) and the per-flow login cookies. The bare NAME is not
// one: the reader ignores it.
func isBFFCookie(name string) bool {
	return crypto.InNamespace(sessionCookie, name) || strings.HasPrefix(name, sessionCookie+"-login.")
}

// clock is a fixed, settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeRefresher counts calls and returns configured tokens or an error. With
// release set, every call blocks until release is closed; entered receives
// one value per call (when there is room).
type fakeRefresher struct {
	mu      sync.Mutex
	calls   int
	gotRT   []string
	gotSub  []string
	ctxErr  []error // ctx.Err() when the call returned
	noDL    int     // calls whose context had no deadline
	tokens  *oauth.Tokens
	err     error
	nilTok  bool // return (nil, nil)
	entered chan struct{}
	release chan struct{}
	during  func() // called inside every Refresh, e.g. to move the clock
}

func (f *fakeRefresher) Refresh(ctx context.Context, refreshToken, sub string) (*oauth.Tokens, error) {
	f.mu.Lock()
	f.calls++
	f.gotRT = append(f.gotRT, refreshToken)
	f.gotSub = append(f.gotSub, sub)
	if _, ok := ctx.Deadline(); !ok {
		f.noDL++
	}
	entered, release := f.entered, f.release
	f.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if release != nil {
		<-release
	}
	if f.during != nil {
		f.during()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctxErr = append(f.ctxErr, ctx.Err())
	if f.err != nil {
		return nil, f.err
	}
	if f.nilTok || f.tokens == nil {
		return nil, nil
	}
	t := *f.tokens
	return &t, nil
}

func (f *fakeRefresher) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeSessions is an in-memory proxy.Sessions.
type fakeSessions struct {
	mu      sync.Mutex
	sess    *session.Session // returned by Load (a copy); nil means ErrNoSession
	err     error            // returned by Load when set
	saveErr error
	loads   int
	saved   []session.Session
	clears  int
}

func (f *fakeSessions) Load(r *http.Request) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	if f.err != nil {
		return nil, f.err
	}
	if f.sess == nil {
		return nil, session.ErrNoSession
	}
	s := *f.sess
	return &s, nil
}

func (f *fakeSessions) Save(h http.Header, r *http.Request, s *session.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.saveErr != nil {
		return f.saveErr
	}
	f.saved = append(f.saved, *s)
	h.Add("Set-Cookie", savedMarker)
	return nil
}

func (f *fakeSessions) Clear(h http.Header, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears++
	h.Add("Set-Cookie", clearedMarker)
}

func (f *fakeSessions) counts() (loads, saves, clears int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads, len(f.saved), f.clears
}

func (f *fakeSessions) lastSaved(t *testing.T) session.Session {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.saved) == 0 {
		t.Fatal("Save was not called")
	}
	return f.saved[len(f.saved)-1]
}

// newSession returns a session whose access token expires in accessIn.
func newSession(accessIn time.Duration) *session.Session {
	return &session.Session{
		V:            session.Version,
		ID:           "sid-1",
		Subject:      "alice",
		Issuer:       "https://idp.example",
		Start:        t0.Add(-time.Hour).Unix(),
		Expiry:       t0.Add(8 * time.Hour).Unix(),
		AccessToken:  "AT-old",
		AccessExpiry: t0.Add(accessIn).Unix(),
		RefreshToken: "RT-old",
		IDToken:      "IDT-old",
		Scope:        "openid api",
	}
}

// newTokens is what the fake provider answers to a refresh.
func newTokens() *oauth.Tokens {
	return &oauth.Tokens{
		AccessToken:  "AT-new",
		Expiry:       t0.Add(time.Hour),
		RefreshToken: "RT-new",
		Subject:      "alice",
	}
}

// seen is what the upstream received.
type seen struct {
	Method     string
	Path       string
	RequestURI string
	RawQuery   string
	Host       string
	Header     http.Header
}

// upstream is an httptest server that records every request.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []seen
	handler http.HandlerFunc // answers after recording; nil means 200 "ok"
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{
			Method:     r.Method,
			Path:       r.URL.Path,
			RequestURI: r.RequestURI,
			RawQuery:   r.URL.RawQuery,
			Host:       r.Host,
			Header:     r.Header.Clone(),
		})
		h := u.handler
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) url(t *testing.T, path string) *url.URL {
	t.Helper()
	v, err := url.Parse(u.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstream) last(t *testing.T) seen {
	t.Helper()
	r := u.requests()
	if len(r) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return r[len(r)-1]
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testsupport.Buffer

type refreshCall struct {
	Outcome proxy.Outcome
	Err     error
}

// harness is a Proxy with fakes around it.
type harness struct {
	t    *testing.T
	up   *upstream
	sess *fakeSessions
	ref  *fakeRefresher
	clk  *clock
	logs *syncBuffer
	p    *proxy.Proxy

	mu       sync.Mutex
	errs     []error
	outcomes []refreshCall
	ended    []endedCall
}

// endedCall is one OnSessionEnded call.
type endedCall struct {
	ID     string
	Clears int // Sessions.Clear calls made before it
}

// errStatus is what the test ErrorHandler writes.
const errStatus = 599

// newHarness builds a Proxy with one route "/api/" -> upstream (TokenUser),
// a fresh session and a refresher answering newTokens. edit may change the
// config before New; it gets the upstream to build routes.
func newHarness(t *testing.T, edit func(*proxy.Config, *upstream)) *harness {
	t.Helper()
	h := &harness{
		t:    t,
		up:   newUpstream(t),
		sess: &fakeSessions{sess: newSession(time.Hour)},
		ref:  &fakeRefresher{tokens: newTokens()},
		clk:  newClock(),
		logs: &syncBuffer{},
	}
	cfg := proxy.Config{
		Routes:      []proxy.Route{{Path: "/api/", Upstream: h.up.url(t, "")}},
		Sessions:    h.sess,
		Refresher:   h.ref,
		PublicURL:   &url.URL{Scheme: "https", Host: "app.example.com"},
		IsBFFCookie: isBFFCookie,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
			w.WriteHeader(errStatus)
		},
		OnRefresh: func(o proxy.Outcome, err error) {
			h.mu.Lock()
			h.outcomes = append(h.outcomes, refreshCall{o, err})
			h.mu.Unlock()
		},
		OnSessionEnded: func(r *http.Request, s *session.Session) {
			_, _, clears := h.sess.counts()
			h.mu.Lock()
			h.ended = append(h.ended, endedCall{s.ID, clears})
			h.mu.Unlock()
		},
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    h.clk.Now,
	}
	if edit != nil {
		edit(&cfg, h.up)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	t.Cleanup(h.checkLogs)
	return h
}

// checkLogs fails when a token or cookie value reached the logs.
func (h *harness) checkLogs() {
	logs := h.logs.String()
	for _, secret := range []string{"AT-old", "AT-new", "RT-old", "RT-new", "IDT-old", "IDT-new", "cookie-secret", "Basic "} {
		if strings.Contains(logs, secret) {
			h.t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func (h *harness) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.p.ServeHTTP(w, r)
	return w
}

func (h *harness) get(target string) *httptest.ResponseRecorder {
	return h.serve(httptest.NewRequest(http.MethodGet, target, nil))
}

func (h *harness) errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

func (h *harness) endedSessions() []endedCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]endedCall(nil), h.ended...)
}

func (h *harness) refreshes() []refreshCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]refreshCall(nil), h.outcomes...)
}

// wantErr checks that exactly one error reached the ErrorHandler and that it
// is target.
func (h *harness) wantErr(w *httptest.ResponseRecorder, target error) error {
	h.t.Helper()
	errs := h.errors()
	if len(errs) != 1 {
		h.t.Fatalf("ErrorHandler got %d errors %v, want 1 (%v)", len(errs), errs, target)
	}
	if !errors.Is(errs[0], target) {
		h.t.Errorf("ErrorHandler got %v, want errors.Is %v", errs[0], target)
	}
	if w != nil && w.Code != errStatus {
		h.t.Errorf("status %d, want the ErrorHandler's %d", w.Code, errStatus)
	}
	return errs[0]
}

// wantOK checks that the upstream answered and no error was reported.
func (h *harness) wantOK(w *httptest.ResponseRecorder) {
	h.t.Helper()
	if errs := h.errors(); len(errs) != 0 {
		h.t.Fatalf("ErrorHandler got %v", errs)
	}
	if w.Code != http.StatusOK {
		h.t.Fatalf("status %d, want 200", w.Code)
	}
}

// bearer is the single Authorization value the upstream saw ("" for none).
func bearer(t *testing.T, s seen) string {
	t.Helper()
	v := s.Header.Values("Authorization")
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	t.Fatalf("upstream got %d Authorization headers", len(v))
	return ""
}
