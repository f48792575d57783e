package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReviewCluster: finding 12 (single use across instances) and the
// internal endpoint's answer to a forgery, on three instances behind nginx.
func TestReviewCluster(t *testing.T) {
	t.Parallel()
	secret := newKeySecret(t)
	var capture *revCapture
	c := startClusterWith(t, clusterOptions{
		secret: secret,
		prepare: func(c *testCluster) {
			// The provider posts logout tokens to a's port: put a
			// recorder there and move a to a new port behind it.
			a := c.nodes[0]
			orig := a.port
			a.port = freePort(t)
			capture = startRevCapture(t, orig, a.url()+"/auth/backchannel-logout")
		},
	})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	advs := map[*clusterNode]*advStack{}
	for _, n := range c.nodes {
		tap := startAdvTap(t, c.up.URL()) // not in the cluster's path: counts stay 0
		advs[n] = &advStack{
			idp: c.idp, up: c.up, tap: tap, raw: newBrowser(t),
			bff:           &BFF{opts: BFFOptions{KeySecret: secret}, url: n.url(), metrics: fmt.Sprintf("http://127.0.0.1:%d", n.metrics), logs: n.logs},
			metricsClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
			secrets:       map[string]string{"client secret": c.idp.ClientSecret(), "key secret": secret},
		}
	}
	public, _ := url.Parse(c.public + "/")
	nav := map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site", "Accept": "text/html"}

	// singleUse is every instance's count of single-use values remembered
	// as used (sign-in states, logout-token ids): a mark recorded on one
	// instance shows on the others once it replicated. Waiting on it, not
	// on a clock, is what makes "the replay is refused everywhere" a claim
	// about replication rather than about how long a sleep was.
	singleUse := func(t *testing.T) []float64 {
		t.Helper()
		out := make([]float64, len(c.nodes))
		for i, n := range c.nodes {
			out[i] = metricValue(c.metricsOf(t, n), "bff_single_use_entries")
		}
		return out
	}
	// waitMarked waits until every instance remembers one more single-use
	// value than it did in before, or fails the test.
	waitMarked := func(t *testing.T, what string, before []float64) {
		t.Helper()
		start := time.Now()
		var got []float64
		err := waitUntil(5*time.Second, func() bool {
			got = singleUse(t)
			for i := range got {
				if got[i] < before[i]+1 {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("%s did not reach every instance: single-use entries %v, were %v, want one more on each", what, got, before)
		}
		t.Logf("%s on every instance after %s", what, time.Since(start).Round(time.Millisecond))
	}
	// callbackOf runs a sign-in up to the provider's redirect to the
	// callback, which it does not follow: the callback URL and the login
	// cookie to send with it.
	callbackOf := func(t *testing.T, br *Browser, user string) (*url.URL, string) {
		t.Helper()
		startURL := br.StartLogin(t, c.public, "/")
		cb := br.Authorize(t, startURL.String(), user, "pw", func(u *url.URL) bool {
			return u.Host == public.Host && u.Path == "/auth/callback"
		})
		for _, s := range advs {
			s.keep(br)
		}
		return cb, br.jar.header(public)
	}
	sessionOf := func(r *Response) string {
		var parts []string
		for _, ck := range r.SetCookies {
			if strings.HasPrefix(ck.Name, sessionPrefix+".") && ck.Value != "" {
				parts = append(parts, ck.Name+"="+ck.Value)
			}
		}
		return strings.Join(parts, "; ")
	}

	t.Run("callback_replay_refused_on_other_instances", func(t *testing.T) {
		br := newBrowser(t)
		cb, loginCookie := callbackOf(t, br, "replay-victim")
		marks := singleUse(t)
		// The genuine callback, on a.
		r := advs[a].send(t, http.MethodGet, cb.RequestURI(), loginCookie, nav, "")
		if r.Status != http.StatusFound {
			t.Fatalf("the genuine callback on bff a: %d %.200s", r.Status, r.Body)
		}
		session := sessionOf(r)
		issued := issuedFor(t, c.idp, "replay-victim")
		if len(issued) != 1 || session == "" {
			t.Fatalf("%d token sets issued, session cookie present %v", len(issued), session != "")
		}
		waitMarked(t, "the used sign-in state", marks)
		st0 := c.idp.Stats(t)
		for _, n := range []*clusterNode{b, cc} {
			t.Run("to_bff_"+n.name, func(t *testing.T) {
				advs[n].refused(t, "callback_replayed_to_bff_"+n.name, advWant{status: http.StatusBadRequest, reason: "invalid_state", logErr: "state already used"}, func(t *testing.T) *Response {
					// As an attacker's script replays it: a navigation would
					// be answered with a redirect to the app carrying
					// login_error=invalid_state (the same refusal).
					return advs[n].send(t, http.MethodGet, cb.RequestURI(), loginCookie, map[string]string{"Accept": "application/json"}, "")
				})
			})
		}
		st1 := c.idp.Stats(t)
		if d := st1.TokenCalls["authorization_code"] - st0.TokenCalls["authorization_code"]; d != 0 {
			t.Errorf("the replays made %d code exchange(s) at the provider", d)
		}
		if st1.GrantsRevoked != st0.GrantsRevoked || !c.idp.Introspect(t, issued[0].RefreshToken) {
			t.Errorf("after the replays the genuine sign-in's grant is revoked at the provider")
		}
		c.expectOn(t, c.nodes, "/auth/user", session, http.StatusOK) // the genuine session works everywhere

		// Positive control: a fresh callback sent to bff b the same way as
		// the replays (same request, same headers) is accepted, the same
		// count sees its code exchange, and its state's mark reaches every
		// instance. The refusals above come from the replicated mark, and
		// "no code exchange" is a count that moves when one happens.
		ctl := newBrowser(t)
		cb2, loginCookie2 := callbackOf(t, ctl, "replay-control")
		marks = singleUse(t)
		r = advs[b].send(t, http.MethodGet, cb2.RequestURI(), loginCookie2, map[string]string{"Accept": "application/json"}, "")
		if r.Status != http.StatusFound || sessionOf(r) == "" {
			t.Fatalf("positive control: a fresh callback on bff b: %d, session cookie %v; want 302 and a session %.200s", r.Status, sessionOf(r) != "", r.Body)
		}
		if d := c.idp.Stats(t).TokenCalls["authorization_code"] - st1.TokenCalls["authorization_code"]; d != 1 {
			t.Errorf("positive control: the fresh callback made %d code exchange(s) at the provider, want 1", d)
		}
		waitMarked(t, "the control's sign-in state", marks)
		c.expectOn(t, c.nodes, "/auth/user", sessionOf(r), http.StatusOK)
	})

	t.Run("backchannel_logout_token_replay_refused_on_other_instances", func(t *testing.T) {
		// endAtProvider signs br out at the provider ("Yes, sign me out"),
		// which posts a logout token to the capture on a's old port, and
		// returns the token's form body.
		endAtProvider := func(t *testing.T, br *Browser) string {
			t.Helper()
			prior, _ := capture.captured()
			page := br.Get(t, c.idp.EndSessionURL(), map[string]string{"Accept": "text/html"})
			f, ok := parseForm(page.Body)
			if page.Status != http.StatusOK || !ok {
				t.Fatalf("provider end-session page: %d", page.Status)
			}
			action, err := page.URL.Parse(f.action)
			if err != nil {
				t.Fatalf("provider end-session form action %q: %v", f.action, err)
			}
			f.fields.Set("logout", "yes")
			if r := br.Do(t, http.MethodPost, action.String(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, f.fields.Encode()); r.Status < 300 || r.Status >= 400 {
				t.Fatalf("provider end-session confirm: status %d: %.300s", r.Status, r.Body)
			}
			var bodies []string
			var statuses []int
			if err := waitUntil(5*time.Second, func() bool {
				bodies, statuses = capture.captured()
				return len(bodies) > len(prior)
			}); err != nil {
				t.Fatalf("the provider posted no logout token within 5 s")
			}
			if len(bodies) != len(prior)+1 || statuses[len(prior)] != http.StatusOK {
				t.Fatalf("captured %d back-channel POST(s), answered %v; want one more, 200", len(bodies)-len(prior), statuses[len(prior):])
			}
			lt, err := url.ParseQuery(bodies[len(prior)])
			if err != nil || lt.Get("logout_token") == "" {
				t.Fatalf("the captured back-channel POST holds no logout_token (%v)", err)
			}
			for _, s := range advs {
				s.mu.Lock()
				s.secrets[fmt.Sprintf("captured logout token #%d", len(prior))] = lt.Get("logout_token")
				s.mu.Unlock()
			}
			return bodies[len(prior)]
		}
		backchannel := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ""}

		carol := newBrowser(t)
		carol.Login(t, c.public, "/", "carol", "pw")
		session := sessionCookies(carol)
		c.expectOn(t, c.nodes, "/auth/user", session, http.StatusOK)
		marks := singleUse(t)
		body := endAtProvider(t, carol) // delivered to a by the capture
		if _, err := c.waitRefusedEverywhere(c.nodes, time.Now(), session, 3*time.Second); err != nil {
			t.Errorf("the provider's logout did not end the session everywhere: %v", err)
		}
		waitMarked(t, "the used logout token id", marks)
		for _, n := range []*clusterNode{b, cc} {
			t.Run("to_bff_"+n.name, func(t *testing.T) {
				advs[n].refused(t, "backchannel_replayed_to_bff_"+n.name, advWant{status: http.StatusBadRequest, reason: "invalid_request", logErr: "replayed jti"}, func(t *testing.T) *Response {
					return advs[n].send(t, http.MethodPost, "/auth/backchannel-logout", "", backchannel, body)
				})
			})
		}

		// Positive control: a genuine logout token the capture holds back
		// (never delivered), sent to bff b the same way as the replays, is
		// accepted, ends its session everywhere within the same wait, and
		// its id's mark reaches every instance.
		dave := newBrowser(t)
		dave.Login(t, c.public, "/", "dave", "pw")
		daveSession := sessionCookies(dave)
		c.expectOn(t, c.nodes, "/auth/user", daveSession, http.StatusOK)
		marks = singleUse(t)
		capture.setHold(true)
		fresh := endAtProvider(t, dave)
		capture.setHold(false)
		if got := singleUse(t); !slices.Equal(got, marks) {
			t.Fatalf("positive control: the held logout token reached an instance (single-use entries %v, were %v)", got, marks)
		}
		r := advs[b].send(t, http.MethodPost, "/auth/backchannel-logout", "", backchannel, fresh)
		if r.Status != http.StatusOK {
			t.Fatalf("positive control: a fresh logout token on bff b: %d %.200s, want 200", r.Status, r.Body)
		}
		if _, err := c.waitRefusedEverywhere(c.nodes, time.Now(), daveSession, 3*time.Second); err != nil {
			t.Errorf("positive control: the logout token delivered to bff b did not end the session everywhere: %v", err)
		}
		waitMarked(t, "the control's logout token id", marks)
	})

	t.Run("internal_refresh_forged_is_404", func(t *testing.T) {
		advs[b].refused(t, "POST_/_bff/refresh_forged_clustered", advWant{status: http.StatusNotFound, reason: "not_found"}, func(t *testing.T) *Response {
			return advs[b].send(t, http.MethodPost, "/_bff/refresh", "", map[string]string{"Content-Type": "application/jose", "Origin": ""}, "eyJhbGciOiJkaXIifQ..x.y.z")
		})
	})
	t.Run("logs_hold_no_secrets", func(t *testing.T) {
		for _, n := range c.nodes {
			revCheckLogs(t, advs[n])
		}
	})
	for _, n := range c.nodes {
		advs[n].table(t, "review cluster, bff "+n.name)
	}
}

// revCapture receives the provider's back-channel logout POSTs on a fixed
// loopback port, keeps each form body and forwards it to target, answering
// with target's status.
type revCapture struct {
	mu     sync.Mutex
	bodies []string
	status []int
	hold   bool // keep the POSTs back: record them, answer 200, forward nothing
}

func startRevCapture(t *testing.T, port int, target string) *revCapture {
	t.Helper()
	c := &revCapture{}
	hc := &http.Client{Timeout: 10 * time.Second}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		c.mu.Lock()
		hold := c.hold
		c.mu.Unlock()
		status := http.StatusOK // held: the provider is told it was delivered
		switch {
		case err != nil:
			status = http.StatusBadRequest // recorded: a test sees it in the statuses
		case !hold:
			status = http.StatusBadGateway // the forward failed: recorded too
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
			if resp, err := hc.Do(req); err == nil {
				status = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, string(body))
		c.status = append(c.status, status)
		c.mu.Unlock()
		w.WriteHeader(status)
	}))
	srv.Listener.Close()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("e2e: capture on port %d: %v", port, err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return c
}

func (c *revCapture) captured() ([]string, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...), append([]int(nil), c.status...)
}

// setHold makes the capture keep the next POSTs back (true) or forward them
// again (false).
func (c *revCapture) setHold(hold bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = hold
}
