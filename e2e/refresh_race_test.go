package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// raceAccessTTL is how long the provider's access tokens live in these
// tests, and raceMargin the instances' refresh margin: a token is used for
// 5 s, then refreshed. A storm must end within those 5 s for "exactly one
// refresh per session" to be the right count (later calls would rightly
// refresh the refreshed token again); storms take under a second on an idle
// 2-core machine, several on a heavily loaded one.
const (
	raceAccessTTL = 6 * time.Second
	raceMargin    = time.Second
	raceGrace     = 30 * time.Second
)

// TestRefreshRace proves issue 5 against the real provider (refresh-token
// rotation and reuse detection on: a replayed refresh token revokes the
// grant) and three instances behind nginx round robin without stickiness:
// a storm of calls at expiry redeems each refresh token once across the
// cluster; a killed owner costs at most 503s, never a session; the internal
// refresh endpoint refuses forged and replayed requests; an upstream's
// invalid_token gets one refresh and one retry, never a loop.
func TestRefreshRace(t *testing.T) {
	began := time.Now()
	t.Cleanup(func() { t.Logf("refresh race tests: wall time %s", time.Since(began).Round(time.Millisecond)) })
	bffBinary(t)
	built := time.Now()
	rc := startRaceCluster(t, raceOptions{AccessTTL: raceAccessTTL, RefreshMargin: raceMargin, SuccessorGrace: raceGrace, Recorded: 2})
	t.Logf("binary ready in %s; 3 instances (access tokens %s, refresh margin %s, successor grace %s), nginx and the provider ready %s later",
		built.Sub(began).Round(time.Millisecond), raceAccessTTL, raceMargin, raceGrace, time.Since(built).Round(time.Millisecond))
	nodes := rc.nodes

	t.Run("one_session_100_calls_at_expiry", func(t *testing.T) {
		ck, issued := rc.login(t, "storm1")
		rc.waitExpired(issued)
		rc.idp.Reset(t)
		before := rc.refreshCounters(t, nodes)
		calls, took := rc.storm(rc.public, "/api/whoami", []string{ck}, 100, nil)
		after := rc.refreshCounters(t, nodes)
		st := rc.idp.Stats(t)
		t.Logf("storm 1: 1 session × 100 concurrent calls through nginx, %s after the token expired: wall time %s; answers %s; "+
			"provider: %d refresh_token grant(s), %d failed, %d grant(s) revoked; per instance:%s",
			time.Since(issued.Add(raceAccessTTL)).Round(time.Millisecond)-took.Round(time.Millisecond), took.Round(time.Millisecond),
			fmtCounts(statusCounts(calls)), st.TokenCalls["refresh_token"], st.TokenErrors["refresh_token"], st.GrantsRevoked,
			fmtDeltas(nodes, before, after))
		for i, c := range calls[0] {
			if c.err != nil || c.status/100 != 2 {
				t.Errorf("call %d: status %d (%s) %v", i, c.status, c.desc, c.err)
			}
		}
		if got := st.TokenCalls["refresh_token"]; got != 1 {
			t.Errorf("provider counted %d refresh_token grants, want exactly 1", got)
		}
		if st.TokenErrors["refresh_token"] != 0 || st.GrantsRevoked != 0 {
			t.Errorf("provider: %d failed refresh(es), %d grant(s) revoked; want none", st.TokenErrors["refresh_token"], st.GrantsRevoked)
		}
		refreshed := delta(before, after, `bff_refreshes_total{outcome="refreshed"}`)
		if sum(refreshed) != 1 {
			t.Errorf("instances redeemed the refresh token %v times (by instance), want once in all", refreshed)
		}
		nc := newest(calls[0])
		if nc == "" {
			t.Fatal("no answer of the storm set a new session cookie")
		}
		hc := newStormClient(1)
		defer hc.CloseIdleConnections()
		if c := rc.do(hc, http.MethodGet, rc.public+"/api/whoami", nc, ""); c.err != nil || c.status != http.StatusOK {
			t.Errorf("follow-up with the newest cookie: status %d (%s) %v", c.status, c.desc, c.err)
		}
		for _, n := range nodes {
			if c := rc.do(hc, http.MethodGet, n.url()+"/api/whoami", ck, ""); c.err != nil || c.status != http.StatusOK {
				t.Errorf("follow-up on bff %s with the OLD cookie within the grace: status %d (%s) %v", n.name, c.status, c.desc, c.err)
			}
		}
		if st := rc.idp.Stats(t); st.TokenCalls["refresh_token"] != 1 || st.GrantsRevoked != 0 {
			t.Errorf("after the follow-ups the provider counted %d refresh_token grants and %d revoked grant(s), want 1 and 0",
				st.TokenCalls["refresh_token"], st.GrantsRevoked)
		}
	})

	t.Run("20_sessions_20_calls_each_at_expiry", func(t *testing.T) {
		const sessions, per = 20, 20
		cks := make([]string, sessions)
		var issued time.Time
		loginStart := time.Now()
		for i := range cks {
			cks[i], issued = rc.login(t, fmt.Sprintf("storm2-%02d", i))
		}
		loginTook := time.Since(loginStart)
		rc.waitExpired(issued)
		rc.idp.Reset(t)
		before := rc.refreshCounters(t, nodes)
		calls, took := rc.storm(rc.public, "/api/whoami", cks, per, nil)
		after := rc.refreshCounters(t, nodes)
		st := rc.idp.Stats(t)
		t.Logf("storm 2: %d sessions × %d concurrent calls (%d at once) through nginx: wall time %s (%d logins took %s); answers %s; "+
			"provider: %d refresh_token grant(s), %d failed, %d grant(s) revoked; per instance:%s",
			sessions, per, sessions*per, took.Round(time.Millisecond), sessions, loginTook.Round(time.Millisecond),
			fmtCounts(statusCounts(calls)), st.TokenCalls["refresh_token"], st.TokenErrors["refresh_token"], st.GrantsRevoked,
			fmtDeltas(nodes, before, after))
		for i, cs := range calls {
			for j, c := range cs {
				if c.err != nil || c.status/100 != 2 {
					t.Errorf("session %d call %d: status %d (%s) %v", i, j, c.status, c.desc, c.err)
				}
			}
		}
		if got := st.TokenCalls["refresh_token"]; got != sessions {
			t.Errorf("provider counted %d refresh_token grants, want exactly %d", got, sessions)
		}
		if st.TokenErrors["refresh_token"] != 0 || st.GrantsRevoked != 0 {
			t.Errorf("provider: %d failed refresh(es), %d grant(s) revoked; want none", st.TokenErrors["refresh_token"], st.GrantsRevoked)
		}
		hc := newStormClient(4)
		defer hc.CloseIdleConnections()
		for i, cs := range calls {
			nc := newest(cs)
			if nc == "" {
				t.Errorf("session %d: no answer set a new cookie", i)
				continue
			}
			if c := rc.do(hc, http.MethodGet, rc.public+"/api/whoami", nc, ""); c.err != nil || c.status != http.StatusOK {
				t.Errorf("session %d: follow-up with the newest cookie: status %d (%s) %v", i, c.status, c.desc, c.err)
			}
		}
	})

	// An old cookie, still inside the successor grace but after the
	// successor's own access token expired: the successor must not be handed
	// out as if it were fresh. The case has its own session and storm and
	// times itself from its own measurements, so it runs whatever ran before
	// it (or was left out with -run) and however slow the machine: an
	// attempt that lands too late in the grace is retried with a new
	// session, and the case fails, never skips, if none lands.
	t.Run("old_cookie_in_grace_after_successor_expired", func(t *testing.T) {
		const attempts = 3
		const room = 2 * time.Second // grace left for the two requests, at least
		var oldCk string             // the cookie whose refresh token the storm redeemed
		var refreshFrom time.Time    // the refresh, and so its grace, started after this
		for attempt := 1; ; attempt++ {
			ck, issued := rc.login(t, fmt.Sprintf("grace-%d", attempt))
			rc.waitExpired(issued)
			rc.idp.Reset(t)
			from := time.Now()
			calls, took := rc.storm(rc.public, "/api/whoami", []string{ck}, 10, nil)
			by := time.Now() // the successor's access token was issued before this
			for i, c := range calls[0] {
				if c.err != nil || c.status/100 != 2 {
					t.Fatalf("attempt %d: storm call %d: status %d (%s) %v", attempt, i, c.status, c.desc, c.err)
				}
			}
			if st := rc.idp.Stats(t); st.TokenCalls["refresh_token"] != 1 || newest(calls[0]) == "" {
				t.Fatalf("attempt %d: the storm made %d refresh_token grant(s) and set a new cookie: %v; want 1 and a cookie (no successor, nothing to test)",
					attempt, st.TokenCalls["refresh_token"], newest(calls[0]) != "")
			}
			// Past the successor's expiry, measured from the storm's end.
			time.Sleep(time.Until(by.Add(raceAccessTTL + 150*time.Millisecond)))
			since := time.Since(from)
			if since <= raceGrace-room {
				oldCk, refreshFrom = ck, from
				t.Logf("attempt %d: storm took %s; old cookie used %s after the refresh started (grace %s)",
					attempt, took.Round(time.Millisecond), since.Round(time.Millisecond), raceGrace)
				break
			}
			if attempt == attempts {
				t.Fatalf("%d attempts, the last %s after its refresh started: never with %s of the %s grace left; the case did not run",
					attempts, since.Round(time.Millisecond), room, raceGrace)
			}
			t.Logf("attempt %d: %s after the refresh started, too late in the %s grace; again with a new session",
				attempt, since.Round(time.Millisecond), raceGrace)
		}
		rc.idp.Reset(t)
		hc := newStormClient(1)
		defer hc.CloseIdleConnections()
		t.Run("post_with_body", func(t *testing.T) {
			c := rc.do(hc, http.MethodPost, nodes[0].url()+"/api/echo", oldCk, `{"x":1}`)
			if c.err != nil || c.status != http.StatusOK {
				t.Errorf("POST with a body and the old cookie %s after the refresh: status %d (%s) %v, want 200",
					time.Since(refreshFrom).Round(time.Millisecond), c.status, c.desc, c.err)
			}
		})
		t.Run("get", func(t *testing.T) {
			c := rc.do(hc, http.MethodGet, nodes[1].url()+"/api/whoami", oldCk, "")
			if c.err != nil || c.status != http.StatusOK {
				t.Errorf("GET with the old cookie %s after the refresh: status %d (%s) %v, want 200",
					time.Since(refreshFrom).Round(time.Millisecond), c.status, c.desc, c.err)
			}
		})
		if since := time.Since(refreshFrom); since >= raceGrace {
			t.Errorf("the requests ended %s after the refresh started, past the %s grace: their answers prove nothing about it",
				since.Round(time.Millisecond), raceGrace)
		}
		if st := rc.idp.Stats(t); st.GrantsRevoked != 0 || st.TokenErrors["refresh_token"] != 0 {
			t.Errorf("the old cookie's requests: %d grant(s) revoked, %d failed refresh(es) at the provider; want none",
				st.GrantsRevoked, st.TokenErrors["refresh_token"])
		}
	})

	t.Run("upstream_invalid_token_one_refresh_one_retry", func(t *testing.T) {
		hc := newStormClient(1)
		defer hc.CloseIdleConnections()
		f := rc.flaky
		f.set(false)
		ck, _ := rc.login(t, "flaky")
		n0 := f.count()
		if c := rc.do(hc, http.MethodGet, rc.public+"/flaky/x", ck, ""); c.err != nil || c.status != http.StatusOK {
			t.Fatalf("first call: status %d (%s) %v", c.status, c.desc, c.err)
		}
		seen := f.since(n0)
		if len(seen) != 1 || seen[0].token == "" {
			t.Fatalf("upstream saw %d requests, want 1 with a token", len(seen))
		}
		t1 := seen[0].token

		// The upstream refuses t1 (as if the provider had revoked it early):
		// one forced refresh, one retry with the new token, 200.
		f.set(false, t1)
		rc.idp.Reset(t)
		n1 := f.count()
		c := rc.do(hc, http.MethodGet, rc.public+"/flaky/x", ck, "")
		seen = f.since(n1)
		st := rc.idp.Stats(t)
		t.Logf("invalid_token once: client %d; upstream saw %d request(s); provider %d refresh_token grant(s)", c.status, len(seen), st.TokenCalls["refresh_token"])
		if c.err != nil || c.status != http.StatusOK {
			t.Errorf("call with a refused token: status %d (%s) %v, want 200 after one retry", c.status, c.desc, c.err)
		}
		if len(seen) != 2 {
			t.Fatalf("upstream saw %d requests, want 2 (the refused one and one retry)", len(seen))
		}
		if seen[0].token != t1 || seen[0].status != http.StatusUnauthorized {
			t.Errorf("first attempt: not the old token, or not refused")
		}
		if seen[1].token == t1 || seen[1].token == "" || seen[1].status != http.StatusOK {
			t.Errorf("retry: same token as the refused one (%v), or not accepted (status %d)", seen[1].token == t1, seen[1].status)
		}
		if st.TokenCalls["refresh_token"] != 1 || st.TokenErrors["refresh_token"] != 0 {
			t.Errorf("provider: %d refresh_token grant(s), %d failed; want exactly 1", st.TokenCalls["refresh_token"], st.TokenErrors["refresh_token"])
		}
		ck2 := c.cookie
		if ck2 == "" {
			t.Fatal("the retried answer set no new cookie")
		}
		t2 := seen[1].token

		// The upstream refuses every token: one refresh, one retry, then
		// the 401 goes back to the client. No third attempt.
		f.set(true)
		rc.idp.Reset(t)
		n2 := f.count()
		c = rc.do(hc, http.MethodGet, rc.public+"/flaky/x", ck2, "")
		time.Sleep(300 * time.Millisecond) // a third attempt would arrive by now
		seen = f.since(n2)
		st = rc.idp.Stats(t)
		t.Logf("invalid_token twice: client %d (%s); upstream saw %d request(s); provider %d refresh_token grant(s)",
			c.status, c.wwwAuth, len(seen), st.TokenCalls["refresh_token"])
		if c.err != nil || c.status != http.StatusUnauthorized || !strings.Contains(c.wwwAuth, "invalid_token") {
			t.Errorf("call refused twice: status %d, WWW-Authenticate %q, %v; want the upstream's 401 invalid_token", c.status, c.wwwAuth, c.err)
		}
		if len(seen) != 2 {
			t.Fatalf("upstream saw %d requests, want exactly 2 (no loop)", len(seen))
		}
		if seen[0].token != t2 || seen[1].token == t2 || seen[1].token == "" {
			t.Errorf("attempts: first with the current token %v, retry with a new one %v", seen[0].token == t2, seen[1].token != t2)
		}
		if st.TokenCalls["refresh_token"] != 1 {
			t.Errorf("provider: %d refresh_token grant(s), want exactly 1", st.TokenCalls["refresh_token"])
		}
		ck3 := c.cookie
		if ck3 == "" {
			t.Errorf("the 401 after a successful forced refresh set no new cookie: the browser keeps a redeemed refresh token")
			ck3 = ck2
		}

		// A request with a body is never retried.
		rc.idp.Reset(t)
		n3 := f.count()
		c = rc.do(hc, http.MethodPost, rc.public+"/flaky/x", ck3, `{"a":1}`)
		time.Sleep(200 * time.Millisecond)
		seen = f.since(n3)
		if c.status != http.StatusUnauthorized || len(seen) != 1 || !seen[0].hasBody {
			t.Errorf("POST with a body: status %d, upstream saw %d request(s); want 401 and exactly 1", c.status, len(seen))
		}
		if st := rc.idp.Stats(t); st.TokenCalls["refresh_token"] != 0 {
			t.Errorf("POST with a body: provider counted %d refresh(es), want none", st.TokenCalls["refresh_token"])
		}

		// The session survived all of it.
		f.set(false)
		if c := rc.do(hc, http.MethodGet, rc.public+"/flaky/x", ck3, ""); c.err != nil || c.status != http.StatusOK {
			t.Errorf("once the upstream accepts tokens again: status %d (%s) %v", c.status, c.desc, c.err)
		}
		if st := rc.idp.Stats(t); st.GrantsRevoked != 0 || st.TokenErrors["refresh_token"] != 0 {
			t.Errorf("provider: %d grant(s) revoked, %d failed refresh(es)", st.GrantsRevoked, st.TokenErrors["refresh_token"])
		}
	})

	t.Run("internal_refresh_endpoint_refuses_forgeries", func(t *testing.T) {
		rec := nodes[rc.opts.Recorded]
		forwarder := nodes[0]
		bystander := nodes[1]
		hc := newStormClient(1)
		defer hc.CloseIdleConnections()

		// Capture a genuine internal request: sessions called on the
		// forwarder alone until one is owned by the recorded instance.
		const candidates = 12
		cks := make([]string, candidates)
		var issued time.Time
		for i := range cks {
			cks[i], issued = rc.login(t, fmt.Sprintf("forge-%02d", i))
		}
		rc.waitExpired(issued)
		var captured recordedRequest
		victim, victimCk := -1, ""
		for i, ck := range cks {
			n := len(rc.recorder.recorded())
			c := rc.do(hc, http.MethodGet, forwarder.url()+"/api/whoami", ck, "")
			if c.err != nil || c.status != http.StatusOK {
				t.Fatalf("session %d on bff %s: status %d (%s) %v", i, forwarder.name, c.status, c.desc, c.err)
			}
			if got := rc.recorder.recorded(); len(got) > n {
				captured, victim, victimCk = got[len(got)-1], i, c.cookie
				break
			}
		}
		if victim < 0 {
			t.Fatalf("none of %d sessions is owned by bff %s: nothing captured", candidates, rec.name)
		}
		if captured.status != http.StatusOK {
			t.Fatalf("the genuine internal request got %d from its owner", captured.status)
		}
		t.Logf("captured a genuine internal refresh request (%d bytes) from bff %s to bff %s (session %d of %d)",
			len(captured.body), forwarder.name, rec.name, victim+1, candidates)

		// refused sends body to target and checks 404 JSON (as for any path
		// that does not exist: a forged request learns nothing, not even
		// that the instance is clustered), the refusal counter and that the
		// provider redeemed nothing.
		refused := func(t *testing.T, target *clusterNode, what string, body []byte) {
			t.Helper()
			rc.idp.Reset(t)
			before := rc.refreshCounters(t, nodes)
			status, ctype, code, err := rc.postInternal(target.url(), body)
			after := rc.refreshCounters(t, nodes)
			st := rc.idp.Stats(t)
			if err != nil || status != http.StatusNotFound || !strings.HasPrefix(ctype, "application/json") || code != "not_found" {
				t.Errorf("%s to bff %s: status %d, Content-Type %q, error %q, %v; want 404 JSON not_found", what, target.name, status, ctype, code, err)
			}
			if d := delta(before, after, "bff_internal_requests_refused_total"); d[slices.Index(nodes, target)] != 1 {
				t.Errorf("%s to bff %s: bff_internal_requests_refused_total moved by %v (by instance), want +1 on bff %s", what, target.name, d, target.name)
			}
			if n := st.TokenCalls["refresh_token"]; n != 0 || st.GrantsRevoked != 0 {
				t.Errorf("%s to bff %s: the provider saw %d refresh(es), %d grant(s) revoked; want none", what, target.name, n, st.GrantsRevoked)
			}
		}

		t.Run("forged", func(t *testing.T) {
			random := make([]byte, 700)
			rand.Read(random)
			b64 := base64.RawURLEncoding.EncodeToString
			part := func(n int) string {
				b := make([]byte, n)
				rand.Read(b)
				return b64(b)
			}
			jwe := b64([]byte(`{"alg":"dir","enc":"A256GCM","kid":"internal.1","cty":"refresh-request"}`)) + ".." +
				part(12) + "." + part(160) + "." + part(16)
			cookieValue := strings.TrimPrefix(strings.SplitN(victimCk, ";", 2)[0], sessionCookie+"=")
			forgeries := []struct{ name, body string }{
				{"empty body", ""},
				{"random bytes", string(random)},
				{"JWE-looking string", jwe},
				{"a session cookie's value", cookieValue},
			}
			for _, n := range nodes {
				for _, f := range forgeries {
					refused(t, n, f.name, []byte(f.body))
				}
			}
			// Through the balancer too: the endpoint is on the public listener.
			status, _, code, err := rc.postInternal(rc.public, []byte(jwe))
			if err != nil || status != http.StatusNotFound || code != "not_found" {
				t.Errorf("JWE-looking string through nginx: status %d, error %q, %v; want 404 not_found", status, code, err)
			}
		})

		t.Run("replayed_to_its_owner", func(t *testing.T) {
			refused(t, rec, "replay of a genuine request", captured.body)
		})

		t.Run("replayed_to_another_instance", func(t *testing.T) {
			for _, n := range []*clusterNode{bystander, forwarder} {
				refused(t, n, "replay of a genuine request", captured.body)
			}
			if c := rc.do(hc, http.MethodGet, rc.public+"/api/whoami", victimCk, ""); c.err != nil || c.status != http.StatusOK {
				t.Errorf("the captured session after the replays: status %d (%s) %v", c.status, c.desc, c.err)
			}
		})
	})

	// Last: it kills an instance.
	t.Run("owner_killed_during_storm", func(t *testing.T) {
		const sessions, per = 9, 20
		cks := make([]string, sessions)
		var issued time.Time
		for i := range cks {
			cks[i], issued = rc.login(t, fmt.Sprintf("kill-%d", i))
		}
		rc.waitExpired(issued)

		// A first storm per session finds its owner: the instance whose
		// "refreshed" counter moved.
		owners := make([]int, sessions)
		owned := make([]int, len(nodes))
		last := time.Now()
		for i, ck := range cks {
			before := rc.refreshCounters(t, nodes)
			calls, _ := rc.storm(rc.public, "/api/whoami", []string{ck}, 10, nil)
			last = time.Now()
			after := rc.refreshCounters(t, nodes)
			d := delta(before, after, `bff_refreshes_total{outcome="refreshed"}`)
			owners[i] = slices.Index(d, 1)
			if sum(d) != 1 || owners[i] < 0 {
				t.Fatalf("session %d: refreshed counters moved by %v, want +1 on one instance", i, d)
			}
			owned[owners[i]]++
			if cks[i] = newest(calls[0]); cks[i] == "" {
				t.Fatalf("session %d: the first storm set no new cookie (answers %s)", i, fmtCounts(statusCounts(calls)))
			}
		}
		victimIdx := 0
		for i := range owned {
			if owned[i] > owned[victimIdx] {
				victimIdx = i
			}
		}
		victim := nodes[victimIdx]
		var survivors []*clusterNode
		for _, n := range nodes {
			if n != victim {
				survivors = append(survivors, n)
			}
		}
		t.Logf("owners found from the metrics after a first storm per session: sessions per instance %v; killing bff %s, owner of %d of %d sessions",
			owned, victim.name, owned[victimIdx], sessions)

		// The storm: every session's calls at once, the victim's own
		// sessions a moment later. The victim is SIGKILLed while the first
		// wave is in flight (it is serving and forwarding some of those
		// calls), before any call of its own sessions reached it: a refresh
		// the provider completed for a process that died before answering
		// cannot be saved by any design (the new refresh token died with it
		// and the old one is spent), so the test keeps that window closed.
		var others, mine []int
		for i := range cks {
			if owners[i] == victimIdx {
				mine = append(mine, i)
			} else {
				others = append(others, i)
			}
		}
		pick := func(idx []int) []string {
			out := make([]string, len(idx))
			for k, i := range idx {
				out[k] = cks[i]
			}
			return out
		}
		time.Sleep(time.Until(last.Add(raceAccessTTL + 150*time.Millisecond)))
		rc.idp.Reset(t)
		before := rc.refreshCounters(t, survivors)
		var (
			first     [][]call
			firstTook time.Duration
			done      = make(chan struct{})
		)
		began := time.Now()
		go func() {
			defer close(done)
			first, firstTook = rc.storm(rc.public, "/api/whoami", pick(others), per, nil)
		}()
		time.Sleep(40 * time.Millisecond) // the first wave is released 20 ms after the start
		victim.kill(t)
		killedAt := time.Since(began)
		second, secondTook := rc.storm(rc.public, "/api/whoami", pick(mine), per, nil)
		<-done
		took := time.Since(began)
		calls := make([][]call, sessions)
		for k, i := range others {
			calls[i] = first[k]
		}
		for k, i := range mine {
			calls[i] = second[k]
		}
		after := rc.refreshCounters(t, survivors)
		st := rc.idp.Stats(t)
		t.Logf("storm 3: %d sessions × %d concurrent calls through nginx, bff %s SIGKILLed %s after the start, its %d sessions' calls right after: "+
			"wall time %s (first wave %s, second %s); answers %s; provider: %d refresh_token grant(s), %d failed, %d grant(s) revoked; survivors:%s",
			sessions, per, victim.name, killedAt.Round(time.Millisecond), len(mine), took.Round(time.Millisecond), firstTook.Round(time.Millisecond),
			secondTook.Round(time.Millisecond), fmtCounts(statusCounts(calls)), st.TokenCalls["refresh_token"], st.TokenErrors["refresh_token"],
			st.GrantsRevoked, fmtDeltas(survivors, before, after))
		for i, cs := range calls {
			for j, c := range cs {
				if c.err != nil || (c.status/100 != 2 && c.status != http.StatusServiceUnavailable) {
					t.Errorf("session %d (owner bff %s) call %d: status %d (%s) %v; want 2xx or 503",
						i, nodes[owners[i]].name, j, c.status, c.desc, c.err)
				}
			}
		}
		if st.TokenErrors["refresh_token"] != 0 || st.GrantsRevoked != 0 {
			t.Errorf("provider: %d failed refresh(es), %d grant(s) revoked: a refresh token was redeemed twice", st.TokenErrors["refresh_token"], st.GrantsRevoked)
		}
		if got := st.TokenCalls["refresh_token"]; got != sessions {
			t.Errorf("provider counted %d refresh_token grants, want exactly %d (one per session)", got, sessions)
		}

		noticed := rc.waitMembers(t, survivors, 2, 20*time.Second)
		t.Logf("survivors counted 2 members %s after the storm", noticed.Round(time.Millisecond))
		hc := newStormClient(2)
		defer hc.CloseIdleConnections()
		for i, cs := range calls {
			ck := newest(cs)
			if ck == "" {
				ck = cks[i]
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				c := rc.do(hc, http.MethodGet, rc.public+"/api/whoami", ck, "")
				if c.err == nil && c.status == http.StatusOK {
					break
				}
				if c.status == http.StatusUnauthorized || time.Now().After(deadline) {
					t.Errorf("session %d (owner bff %s) after the kill: status %d (%s) %v: session lost", i, nodes[owners[i]].name, c.status, c.desc, c.err)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
