package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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

	t.Run("callback_replay_refused_on_other_instances", func(t *testing.T) {
		br := newBrowser(t)
		startURL := br.StartLogin(t, c.public, "/")
		cb := br.Authorize(t, startURL.String(), "replay-victim", "pw", func(u *url.URL) bool {
			return u.Host == public.Host && u.Path == "/auth/callback"
		})
		loginCookie := br.jar.header(public)
		for _, s := range advs {
			s.keep(br)
		}
		// The genuine callback, on a.
		r := advs[a].send(t, http.MethodGet, cb.RequestURI(), loginCookie, nav, "")
		if r.Status != http.StatusFound {
			t.Fatalf("the genuine callback on bff a: %d %.200s", r.Status, r.Body)
		}
		var parts []string
		for _, ck := range r.SetCookies {
			if strings.HasPrefix(ck.Name, sessionPrefix+".") && ck.Value != "" {
				parts = append(parts, ck.Name+"="+ck.Value)
			}
		}
		session := strings.Join(parts, "; ")
		issued := issuedFor(t, c.idp, "replay-victim")
		if len(issued) != 1 || session == "" {
			t.Fatalf("%d token sets issued, session cookie present %v", len(issued), session != "")
		}
		time.Sleep(500 * time.Millisecond) // replication time allowed before a replay
		st0 := c.idp.Stats(t)
		for _, n := range []*clusterNode{b, cc} {
			t.Run("to_bff_"+n.name, func(t *testing.T) {
				advs[n].refused(t, "callback_replayed_to_bff_"+n.name, advWant{status: http.StatusBadRequest, reason: "invalid_state"}, func(t *testing.T) *Response {
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
		c.expectOn(t, c.nodes, "/auth/user", session, http.StatusOK) // positive control: the genuine session works everywhere
	})

	t.Run("backchannel_logout_token_replay_refused_on_other_instances", func(t *testing.T) {
		carol := newBrowser(t)
		carol.Login(t, c.public, "/", "carol", "pw")
		session := sessionCookies(carol)
		c.expectOn(t, c.nodes, "/auth/user", session, http.StatusOK)
		page := carol.Get(t, c.idp.EndSessionURL(), map[string]string{"Accept": "text/html"})
		f, ok := parseForm(page.Body)
		if page.Status != http.StatusOK || !ok {
			t.Fatalf("provider end-session page: %d", page.Status)
		}
		action, _ := page.URL.Parse(f.action)
		f.fields.Set("logout", "yes")
		carol.Do(t, http.MethodPost, action.String(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, f.fields.Encode())
		var bodies []string
		var statuses []int
		for deadline := time.Now().Add(5 * time.Second); len(bodies) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			bodies, statuses = capture.captured()
		}
		if len(bodies) != 1 || statuses[0] != http.StatusOK {
			t.Fatalf("captured %d back-channel POST(s), bff a answered %v; want one, 200 (positive control)", len(bodies), statuses)
		}
		if lt, _ := url.ParseQuery(bodies[0]); lt.Get("logout_token") != "" {
			for _, s := range advs {
				s.secrets["captured logout token"] = lt.Get("logout_token")
			}
		}
		if _, err := c.waitRefusedEverywhere(c.nodes, time.Now(), session, 3*time.Second); err != nil {
			t.Errorf("the provider's logout did not end the session everywhere: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // replication time allowed before a replay
		for _, n := range []*clusterNode{b, cc} {
			t.Run("to_bff_"+n.name, func(t *testing.T) {
				advs[n].refused(t, "backchannel_replayed_to_bff_"+n.name, advWant{status: http.StatusBadRequest, reason: "invalid_request"}, func(t *testing.T) *Response {
					return advs[n].send(t, http.MethodPost, "/auth/backchannel-logout", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ""}, bodies[0])
				})
			})
		}
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
}

func startRevCapture(t *testing.T, port int, target string) *revCapture {
	t.Helper()
	c := &revCapture{}
	hc := &http.Client{Timeout: 10 * time.Second}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		status := http.StatusBadGateway
		if resp, err := hc.Do(req); err == nil {
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
