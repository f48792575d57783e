package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The attack review's end-to-end proofs: one test per finding (or a group
// sharing one stack), each with a positive control, against the built
// binary, the real provider, real upstreams and nginx. Refusals are checked
// with the adversarial suite's contract (advStack.refused): JSON 4xx with
// no-store, a logged and counted refusal, and nothing else changed.

// revProxyRoutes are the routes of the proxy group's BFF (all through the tap).
var revProxyRoutes = []revRoute{
	{path: "/api/", token: "user"},
	{path: "/cache/", token: "user"},
	{path: "/public/", token: "none"},
	{path: "/deny/", token: "user"},
	{path: "/up/", token: "user"},
	{path: "/cookie/", token: "user"},
}

// TestReviewProxy: findings 2, 4, 5, 6, 7, 8 (with metrics_listen), 10 and
// 11 on one stack whose config the old binary also accepts. The steps run
// one after the other: the refusal checks compare global counters.
func TestReviewProxy(t *testing.T) {
	t.Parallel()
	s := startRevStack(t, revProxyRoutes, nil)
	bff := s.bff
	victim := s.login(t, "victim")
	s.adv.setVictim(victim)
	mallory := s.login(t, "mallory")
	atkCookie := s.adv.cookieHeader(mallory)

	// Finding 8: /metrics is not on the app's listener.
	t.Run("metrics_only_on_metrics_listen", func(t *testing.T) {
		r := s.adv.refused(t, "GET_/metrics_on_the_app_listener", advWant{status: http.StatusNotFound, reason: "not_found"}, func(t *testing.T) *Response {
			return s.adv.send(t, http.MethodGet, "/metrics", "", nil, "")
		})
		if strings.Contains(string(r.Body), "bff_") {
			t.Errorf("the app listener's /metrics answer holds metrics")
		}
		m := s.metrics(t) // positive control: served on metrics_listen
		if !strings.Contains(m, "bff_http_requests_total") {
			t.Errorf("metrics_listen serves no bff_http_requests_total")
		}
	})

	// Finding 5: only WebSocket upgrades are forwarded.
	t.Run("upgrade_other_than_websocket_refused", func(t *testing.T) {
		for _, tc := range []struct{ name, upgrade, connection string }{
			{"h2c", "h2c", "Upgrade, HTTP2-Settings"},
			{"TLS", "TLS/1.2", "Upgrade"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := s.rev.hit("up")
				s.adv.refused(t, "upgrade_"+tc.name, advWant{status: http.StatusBadRequest, reason: "invalid_request"}, func(t *testing.T) *Response {
					return s.adv.send(t, http.MethodGet, "/up/tunnel", atkCookie, map[string]string{
						"X-CSRF": "1", "Connection": tc.connection, "Upgrade": tc.upgrade,
						"HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
					}, "")
				})
				if n := s.rev.hit("up") - before; n != 0 {
					t.Errorf("the upstream saw %d Upgrade: %s request(s)", n, tc.upgrade)
				}
			})
		}
		t.Run("control_websocket_same_route_passes", func(t *testing.T) {
			before := s.rev.hit("up")
			conn := revDial(t, bff.cfg.port)
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			kb := make([]byte, 16)
			rand.Read(kb)
			key := base64.StdEncoding.EncodeToString(kb)
			req, _ := http.NewRequest(http.MethodGet, bff.URL()+"/up/ws", nil)
			for k, v := range map[string]string{
				"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13",
				"Origin": bff.URL(), "Sec-Fetch-Site": "same-origin", "X-CSRF": "1", "Cookie": atkCookie,
			} {
				req.Header.Set(k, v)
			}
			if err := req.Write(conn); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
				t.Fatalf("WebSocket handshake: status %d: %s", resp.StatusCode, body)
			}
			conn.Write(wsFrame([]byte("ping through the bff"), true))
			if op, payload, _, err := wsReadFrame(br); err != nil || op != 1 || string(payload) != "ping through the bff" {
				t.Fatalf("WebSocket echo: op %d payload %q err %v", op, payload, err)
			}
			if s.rev.hit("up") != before+1 {
				t.Errorf("the upstream saw %d WebSocket handshakes, want 1", s.rev.hit("up")-before)
			}
		})
	})

	// Finding 7: an upstream cannot sign the user out.
	t.Run("upstream_cannot_sign_the_user_out", func(t *testing.T) {
		base := s.login(t, "cookie-user")
		snap := base.Snapshot()
		bffURL, _ := url.Parse(bff.URL() + "/")
		for _, v := range revCookieVariants {
			t.Run(v.name, func(t *testing.T) {
				b := newBrowser(t) // a tab of the same browser, fresh for each variant
				b.Restore(snap)
				r := b.Get(t, bff.URL()+"/cookie/"+v.name, csrf)
				if r.Status != http.StatusOK {
					t.Fatalf("/cookie/%s: %d %s", v.name, r.Status, r.Body)
				}
				var nameless []string
				for _, line := range r.Header.Values("Set-Cookie") {
					pair, _, _ := strings.Cut(line, ";")
					name, _, named := strings.Cut(pair, "=")
					name = strings.TrimSpace(name)
					if !named {
						nameless = append(nameless, name) // a browser keeps it as a nameless cookie
					}
					if strings.HasPrefix(name, sessionPrefix) {
						t.Errorf("the upstream's Set-Cookie %q reached the browser", line)
					}
				}
				if got, ok := b.CookieValue(bffHost, "app"); !ok || got != "1" {
					t.Errorf("the upstream's own cookie app=1 was not kept (positive control)")
				}
				if cs := r.Header.Get("Clear-Site-Data"); cs != "" {
					t.Errorf("the upstream's Clear-Site-Data %s reached the browser", cs)
					b.Restore(JarSnapshot{}) // what a browser does with "cookies"
				}
				cookie := b.jar.header(bffURL)
				for _, n := range nameless {
					cookie += "; " + n // browsers send a nameless cookie as its bare value
				}
				if r := b.Get(t, bff.URL()+"/auth/user", map[string]string{"Cookie": cookie}); r.Status != http.StatusOK {
					t.Errorf("after the upstream's answer /auth/user = %d, want 200 (signed out by an upstream)", r.Status)
				}
			})
		}
	})

	// Finding 2: a shared cache in front of the BFF never hands one user's
	// answer to another.
	t.Run("shared_cache_keeps_users_apart", func(t *testing.T) {
		cache := revNginxCache(t, fmt.Sprintf("127.0.0.1:%d", bff.cfg.port))
		alice, bob := s.login(t, "alice"), s.login(t, "bob")
		unique := fmt.Sprint(time.Now().UnixNano())
		get := func(b *Browser, path string) (map[string]any, *Response) {
			t.Helper()
			r := b.Get(t, cache+path, csrf)
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s through nginx: %d %.200s", path, r.Status, r.Body)
			}
			var v map[string]any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatalf("GET %s: body %.200s", path, r.Body)
			}
			return v, r
		}
		t.Run("control_token_none_route_is_cached", func(t *testing.T) {
			hits := s.rev.hit("public")
			p1, _ := get(alice, "/public/news?u="+unique)
			p2, r2 := get(bob, "/public/news?u="+unique)
			if p1["n"] != p2["n"] || s.rev.hit("public") != hits+1 {
				t.Errorf("nginx did not cache the token-less route (answers %v and %v, %d upstream call(s), X-Cache-Status %q): the check below would prove nothing",
					p1["n"], p2["n"], s.rev.hit("public")-hits, r2.Header.Get("X-Cache-Status"))
			}
		})
		a, ra := get(alice, "/cache/profile?u="+unique)
		if a["sub"] != "alice" {
			t.Fatalf("alice's answer names %v", a["sub"])
		}
		b, rb := get(bob, "/cache/profile?u="+unique)
		if b["sub"] != "bob" {
			t.Errorf("bob got an answer naming %v (X-Cache-Status %q): the shared cache served alice's answer to bob", b["sub"], rb.Header.Get("X-Cache-Status"))
		}
		if cc := ra.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
			t.Errorf("a user route's answer has Cache-Control %q, want private", cc)
		}
		t.Logf("user route: Cache-Control %q, Vary %q; nginx %q then %q", ra.Header.Get("Cache-Control"), ra.Header.Values("Vary"),
			ra.Header.Get("X-Cache-Status"), rb.Header.Get("X-Cache-Status"))
	})

	// Finding 4: an upstream that always refuses the token costs the
	// provider one refresh per session per cooldown, not one per call.
	t.Run("forced_refresh_cooldown", func(t *testing.T) {
		b := s.login(t, "cooldown-user")
		st0, m0 := s.idp.Stats(t), s.metrics(t)
		call := func() int {
			r, err := b.send(http.MethodGet, bff.URL()+"/deny/x", fetchHeaders(http.MethodGet, "", csrf), nil)
			if err != nil {
				t.Fatal(err)
			}
			return r.Status
		}
		statuses := map[int]int{call(): 1}
		if d := s.idp.Stats(t).TokenCalls["refresh_token"] - st0.TokenCalls["refresh_token"]; d != 1 {
			t.Errorf("the first refused call made %d provider refresh(es), want 1 (positive control: it forces one)", d)
		}
		for range 19 {
			statuses[call()]++
		}
		st1, m1 := s.idp.Stats(t), s.metrics(t)
		if statuses[http.StatusUnauthorized] != 20 {
			t.Errorf("20 calls answered %v, want 20×401", statuses)
		}
		if d := st1.TokenCalls["refresh_token"] - st0.TokenCalls["refresh_token"]; d > 1 {
			t.Errorf("20 calls made %d provider refreshes, want at most 1", d)
		}
		if n := len(issuedFor(t, s.idp, "cooldown-user")); n != 2 {
			t.Errorf("the provider issued %d token sets for the user, want 2 (sign-in and one refresh)", n)
		}
		cd := map[string]string{"outcome": "cooldown"}
		if d := metric(m1, "bff_refreshes_total", cd) - metric(m0, "bff_refreshes_total", cd); d != 19 {
			t.Errorf("bff_refreshes_total{outcome=cooldown} moved by %v, want 19", d)
		}
	})

	// Finding 11: a refresh the provider refuses revokes the session id,
	// so a copy of the cookie dies even while its access token lasts.
	t.Run("failed_refresh_revokes_the_session", func(t *testing.T) {
		b := s.login(t, "revoke-user")
		thief := newBrowser(t)
		thief.Restore(b.Snapshot())
		if r := thief.Get(t, bff.URL()+"/api/whoami", csrf); r.Status != http.StatusOK {
			t.Fatalf("the copy before the failed refresh: %d (positive control)", r.Status)
		}
		issued := issuedFor(t, s.idp, "revoke-user")
		if len(issued) != 1 {
			t.Fatalf("%d token sets issued for the user, want 1", len(issued))
		}
		s.idp.Revoke(t, issued[0].RefreshToken)
		m0 := s.metrics(t)
		r := b.Get(t, bff.URL()+"/deny/x", csrf) // the upstream refuses the token: a forced refresh, refused
		if r.Status != http.StatusUnauthorized {
			t.Errorf("the call whose refresh was refused: %d, want 401", r.Status)
		}
		for _, n := range b.CookieNames(bffHost) {
			if strings.HasPrefix(n, sessionPrefix) {
				t.Errorf("cookie %s survived the refused refresh", n)
			}
		}
		if d := s.idp.Stats(t).TokenErrors["refresh_token"]; d == 0 {
			t.Errorf("the provider saw no failed refresh: the test did not exercise a refused refresh")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, _, _, err := s.api.Verify(ctx, issued[0].AccessToken); err != nil {
			t.Fatalf("the session's access token no longer verifies at the upstream (%v): the check below would prove nothing", err)
		}
		before := len(s.api.Requests())
		assertJSONError(t, thief.Get(t, bff.URL()+"/api/whoami", csrf), http.StatusUnauthorized)
		if n := len(s.api.Requests()) - before; n != 0 {
			t.Errorf("the copy reached the upstream %d time(s) after the session ended", n)
		}
		rr := map[string]string{"kind": "refresh_refused"}
		if d := metric(s.metrics(t), "bff_revocations_total", rr) - metric(m0, "bff_revocations_total", rr); d != 1 {
			t.Errorf("bff_revocations_total{kind=refresh_refused} moved by %v, want 1", d)
		}
	})

	// Finding 6: page script never receives a token; the logout URL is the
	// BFF's own, sealed, single use.
	t.Run("logout_url_is_opaque", func(t *testing.T) {
		b := s.login(t, "logout-user")
		issued := issuedFor(t, s.idp, "logout-user")
		if len(issued) != 1 {
			t.Fatalf("%d token sets issued for the user, want 1", len(issued))
		}
		r := b.Post(t, bff.URL()+"/auth/logout", csrf, "")
		if r.Status != http.StatusOK {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		body := string(r.Body)
		for _, it := range s.idp.Issued(t) {
			for what, tok := range map[string]string{"ID": it.IDToken, "access": it.AccessToken, "refresh": it.RefreshToken} {
				if tok != "" && strings.Contains(body, tok) {
					t.Errorf("the logout answer holds an %s token the provider issued", what)
				}
			}
		}
		for _, n := range compactParts(body) {
			if n == 3 {
				t.Errorf("the logout answer holds a JWS (three-part compact token)")
			}
		}
		var out struct {
			LogoutURL string `json:"logout_url"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatalf("logout body: %v", err)
		}
		lu, err := url.Parse(out.LogoutURL)
		if err != nil || lu.Scheme+"://"+lu.Host+lu.Path != bff.URL()+"/auth/end-session" {
			t.Fatalf("logout_url is %q, want %s/auth/end-session?...", redactURL(out.LogoutURL), bff.URL())
		}
		for k, vs := range lu.Query() {
			for _, v := range vs {
				if len(v) >= 8 {
					s.adv.secrets["logout_url "+k] = v
				}
			}
		}
		nav := map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "same-origin", "Accept": "text/html"}
		endSession := func(t *testing.T) *url.URL {
			t.Helper()
			r := b.do(t, http.MethodGet, lu.String(), nav, nil)
			loc, ok := r.Location()
			if r.Status != http.StatusFound || !ok {
				t.Fatalf("GET logout_url: %d, Location %v", r.Status, ok)
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != s.idp.EndSessionURL() {
				t.Fatalf("GET logout_url redirects to %s, want the provider's end_session_endpoint %s", got, s.idp.EndSessionURL())
			}
			if got := loc.Query().Get("post_logout_redirect_uri"); got != bff.URL()+"/" {
				t.Errorf("post_logout_redirect_uri %q, want %q", got, bff.URL()+"/")
			}
			return loc
		}
		first := endSession(t)
		if first.Query().Get("id_token_hint") != issued[0].IDToken {
			t.Errorf("the first navigation's id_token_hint is not the session's ID token")
		}
		if r := b.do(t, http.MethodGet, first.String(), map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-site", "Accept": "text/html"}, nil); r.Status >= 400 {
			t.Errorf("the provider's end-session endpoint answered %d", r.Status)
		}
		if second := endSession(t); second.Query().Has("id_token_hint") {
			t.Errorf("a second navigation to the same logout_url still carries id_token_hint: not single use")
		}
		t.Run("tampered", func(t *testing.T) {
			q := lu.Query()
			for k, vs := range q {
				if len(vs) == 1 && len(vs[0]) >= 20 {
					v := []byte(vs[0])
					i := len(v) / 2
					if v[i] == 'A' {
						v[i] = 'B'
					} else {
						v[i] = 'A'
					}
					q.Set(k, string(v))
				}
			}
			s.adv.refused(t, "end-session_tampered", advWant{status: http.StatusBadRequest, reason: "invalid_request"}, func(t *testing.T) *Response {
				return s.adv.send(t, http.MethodGet, lu.Path+"?"+q.Encode(), "", nav, "")
			})
		})
	})

	// Finding 10: a request framed by both Content-Length and
	// Transfer-Encoding closes the connection.
	t.Run("ambiguous_framing_closes_the_connection", func(t *testing.T) {
		host := strings.TrimPrefix(bff.URL(), "http://")
		next := "GET /auth/user HTTP/1.1\r\nHost: " + host + "\r\nCookie: " + atkCookie + "\r\n\r\n"
		post := "POST /api/echo HTTP/1.1\r\nHost: " + host + "\r\nX-CSRF: 1\r\nCookie: " + atkCookie + "\r\nContent-Type: text/plain\r\n"
		for _, tc := range []struct {
			name      string
			framing   string
			wantClose bool
		}{
			{"control_content_length_keeps_alive", "Content-Length: 5\r\n\r\nhello", false},
			{"content_length_and_chunked", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conn := revDial(t, bff.cfg.port)
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, post+tc.framing+next); err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(conn)
				first, closeHdr, err := revRawResponseClose(br, bff.URL()+"/api/echo")
				if err != nil {
					t.Fatalf("first response: %v", err)
				}
				if !tc.wantClose {
					if first.Status != http.StatusOK || closeHdr {
						t.Fatalf("plain POST: %d, Connection: close %v; want 200 kept alive", first.Status, closeHdr)
					}
					second, err := revRawResponse(br, bff.URL()+"/auth/user")
					if err != nil || second.Status != http.StatusOK {
						t.Fatalf("the second request on the connection: %v %v, want 200", second, err)
					}
					return
				}
				if !closeHdr {
					t.Errorf("the answer (%d) to an ambiguously framed request has no Connection: close", first.Status)
				}
				if closed, how := revClosed(conn, br, 3*time.Second); !closed {
					t.Errorf("after the ambiguously framed request the connection is not closed: %s", how)
				}
			})
		}
	})

	t.Run("logs_hold_no_secrets", func(t *testing.T) { revCheckLogs(t, s.adv) })
	s.adv.table(t, "review proxy")
}

// TestReviewRestart: finding 3 (the revocation snapshot is on by default)
// and finding 8 without metrics_listen.
func TestReviewRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	public := fmt.Sprintf("http://localhost:%d", port)
	idp := startIDP(t, IDPOptions{RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/"}})
	api := startUpstream(t, idp.Issuer(), DefaultAudience)
	stateDir := t.TempDir()
	bff := startRevBFF(t, revConfig{
		port: port, issuer: idp.Issuer(), clientSecret: idp.ClientSecret(),
		routes:     []revRoute{{path: "/api/", upstream: api.URL(), token: "user"}},
		revocation: revNoRevocation, // no snapshot_file: the default under $STATE_DIRECTORY
		env:        []string{"STATE_DIRECTORY=" + stateDir},
	})

	t.Run("metrics_not_on_the_app_listener", func(t *testing.T) {
		r := newBrowser(t).Get(t, bff.URL()+"/metrics", nil)
		if r.Status != http.StatusNotFound || strings.Contains(string(r.Body), "bff_") {
			t.Errorf("GET /metrics on the app listener without metrics_listen: %d (%d bytes), want 404 without metrics", r.Status, len(r.Body))
		}
	})

	t.Run("logout_survives_restart", func(t *testing.T) {
		stayer := newBrowser(t)
		stayer.Login(t, bff.URL(), "/", "stayer", "pw")
		leaver := newBrowser(t)
		leaver.Login(t, bff.URL(), "/", "leaver", "pw")
		copied := leaver.Snapshot()
		thief := func() *Response { // replays the frozen copy, whatever the BFF answered before
			b := newBrowser(t)
			b.Restore(copied)
			return b.Get(t, bff.URL()+"/auth/user", nil)
		}
		if r := leaver.Post(t, bff.URL()+"/auth/logout", csrf, ""); r.Status != http.StatusOK {
			t.Fatalf("logout: %d", r.Status)
		}
		if r := thief(); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), revokedDesc) {
			t.Fatalf("the copy right after logout: %d %s, want 401 %q (positive control)", r.Status, r.Body, revokedDesc)
		}
		bff.stop(t)
		if _, err := os.Stat(filepath.Join(stateDir, "revoked")); err != nil {
			t.Errorf("no revocation snapshot at $STATE_DIRECTORY/revoked: %v", err)
		}
		bff.start(t)
		bff.waitReady(t, "/readyz")
		if r := stayer.Get(t, bff.URL()+"/auth/user", nil); r.Status != http.StatusOK {
			t.Errorf("a session that did not log out answers %d after the restart, want 200 (positive control)", r.Status)
		}
		r := thief()
		assertJSONError(t, r, http.StatusUnauthorized)
		if r.Status == http.StatusOK {
			t.Errorf("the restart undid the logout: the copied cookie opens the session again")
		} else if !strings.Contains(string(r.Body), revokedDesc) {
			t.Errorf("the copy after the restart: %s, want a refused session (%q)", r.Body, revokedDesc)
		}
	})
}

// TestReviewConfig: what the BFF refuses at start or in `bff check`
// (finding 3's failure modes, the insecure_upstream extra). No provider:
// none of it connects.
func TestReviewConfig(t *testing.T) {
	t.Parallel()
	const issuer = "http://127.0.0.1:1" // unreachable: /readyz stays 503, nothing else needs it
	regular := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(regular, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refusedStart := func(t *testing.T, cfg revConfig) {
		t.Helper()
		rb := newRevBFF(t, cfg)
		rb.start(t)
		err := rb.waitExit(t, 8*time.Second)
		if err == nil {
			t.Errorf("the process exited with status 0, want a failure")
		}
		if logs := rb.Logs(); !strings.Contains(logs, "revocation.snapshot_file") {
			t.Errorf("the refusal does not name revocation.snapshot_file:\n%s", tail(logs, 2<<10))
		}
	}

	t.Run("in_memory_starts_with_a_warning", func(t *testing.T) {
		t.Parallel()
		rb := newRevBFF(t, revConfig{issuer: issuer, clientSecret: "secret", revocation: "  in_memory: true\n",
			env: []string{"STATE_DIRECTORY=" + regular}}) // would be refused if in_memory were ignored
		rb.start(t)
		rb.waitReady(t, "/healthz")
		err := waitFor(rb.proc, 3*time.Second, func() bool {
			for _, line := range strings.Split(rb.Logs(), "\n") {
				var l struct {
					Level string `json:"level"`
				}
				low := strings.ToLower(line)
				if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" && (strings.Contains(low, "in_memory") || strings.Contains(low, "in memory")) {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Errorf("no WARN line about in_memory: %v\n%s", err, tail(rb.Logs(), 2<<10))
		}
	})
	t.Run("unwritable_snapshot_file_refuses_start", func(t *testing.T) {
		t.Parallel()
		refusedStart(t, revConfig{issuer: issuer, clientSecret: "secret",
			revocation: fmt.Sprintf("  snapshot_file: %q\n", filepath.Join(regular, "revoked"))})
	})
	t.Run("unwritable_state_directory_refuses_start", func(t *testing.T) {
		t.Parallel()
		refusedStart(t, revConfig{issuer: issuer, clientSecret: "secret", revocation: revNoRevocation,
			env: []string{"STATE_DIRECTORY=" + regular}})
	})

	// Finding 9, off the proxy routes: 10 s for any other body.
	t.Run("body_trickle_elsewhere_cut_after_10s", func(t *testing.T) {
		t.Parallel()
		rb := newRevBFF(t, revConfig{issuer: issuer, clientSecret: "secret"})
		rb.start(t)
		rb.waitReady(t, "/healthz")
		head := "POST /auth/backchannel-logout HTTP/1.1\r\nHost: " + strings.TrimPrefix(rb.URL(), "http://") +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 64\r\n\r\n"
		r, took := revTrickle(t, rb.cfg.port, head, 64, 20*time.Second)
		assertJSONError(t, r, http.StatusRequestTimeout)
		if took < 9*time.Second || took > 13*time.Second {
			t.Errorf("the trickle was answered after %s, want about 10-12 s", took.Round(100*time.Millisecond))
		}
	})

	t.Run("check_refuses_a_plain_http_upstream_off_loopback", func(t *testing.T) {
		t.Parallel()
		bin := bffBinary(t)
		dir := t.TempDir()
		check := func(t *testing.T, upstream, extra string) (string, error) {
			t.Helper()
			cfg := revConfig{port: 8080, issuer: issuer, clientSecret: "secret",
				revocation: fmt.Sprintf("  snapshot_file: %q\n", filepath.Join(dir, "revoked")),
				routes:     []revRoute{{path: "/api/", upstream: "http://127.0.0.1:9000", token: "user"}, {path: "/ext/", upstream: upstream, token: "user", extra: extra}}}
			path := filepath.Join(dir, "bff.yaml")
			if err := os.WriteFile(path, []byte(revYAML(cfg, "http://localhost:8080", "", dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "check", "-config", path)
			cmd.Env = append(os.Environ(), "BFF_OIDC_CLIENT_SECRET=secret", "BFF_KEYS_SECRETS="+newKeySecret(t), "STATE_DIRECTORY="+dir)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := check(t, "http://127.0.0.1:9001", ""); err != nil {
			t.Fatalf("a loopback http upstream is refused (positive control): %v\n%s", err, out)
		}
		if out, err := check(t, "https://example.invalid:9000", ""); err != nil {
			t.Errorf("an https upstream is refused: %v\n%s", err, out)
		}
		out, err := check(t, "http://example.invalid:9000", "")
		if err == nil {
			t.Errorf("bff check accepts a user route to http://example.invalid:9000:\n%s", out)
		} else if !strings.Contains(out, "/ext/") || !strings.Contains(out, "insecure_upstream") {
			t.Errorf("the refusal does not name the route and insecure_upstream:\n%s", out)
		}
		if out, err := check(t, "http://example.invalid:9000", "    insecure_upstream: true"); err != nil {
			t.Errorf("insecure_upstream: true is refused: %v\n%s", err, out)
		}
	})
}
