package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/revocation"
)

// TestCluster runs three BFF instances behind nginx (round robin, no
// stickiness) with nothing shared but configuration, and proves issue 4's
// list: any instance serves any session; a logout, and a back-channel
// logout delivered to one instance, end the session on all of them
// quickly; a restarted instance refuses what was revoked while it was down
// as soon as it is ready; epoch rollovers log nobody out and master secrets
// rotate with SIGHUP; garbage gossip changes nothing.
func TestCluster(t *testing.T) {
	t.Parallel()
	began := time.Now()
	t.Cleanup(func() { t.Logf("cluster tests: wall time %s", time.Since(began).Round(time.Millisecond)) })

	bffBinary(t) // built once per run; its time is not the cluster's
	built := time.Now()
	oldSecret, newSecret := newKeySecret(t), newKeySecret(t)
	c := startCluster(t, oldSecret)
	t.Logf("binary ready in %s; 3 instances, nginx and the provider ready %s later",
		built.Sub(began).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	api := map[string]string{"X-CSRF": "1"}

	login := func(t *testing.T, user string) *Browser {
		t.Helper()
		br := newBrowser(t)
		final := br.Login(t, c.public, "/", user, "pw")
		if u, err := url.Parse(final); err != nil || u.Host != strings.TrimPrefix(c.public, "http://") {
			t.Fatalf("callback sent the browser to %q, want the public origin %s", final, c.public)
		}
		if sessionCookies(br) == "" {
			t.Fatalf("no session cookie after login")
		}
		return br
	}

	if !t.Run("session_through_balancer_works_on_every_instance", func(t *testing.T) {
		br := login(t, "alice")
		ck := sessionCookies(br)
		for _, n := range c.nodes {
			before := len(c.up.Requests())
			c.expectOn(t, []*clusterNode{n}, "/auth/user", ck, http.StatusOK)
			c.expectOn(t, []*clusterNode{n}, "/api/whoami", ck, http.StatusOK)
			reqs := c.up.Requests()
			if len(reqs) != before+1 || !reqs[len(reqs)-1].AuthOK || reqs[len(reqs)-1].Sub != "alice" {
				t.Errorf("bff %s: upstream did not get alice's valid bearer token", n.name)
			}
		}
		// And through the balancer, which spreads consecutive calls over
		// all three.
		for i := range 6 {
			if r := br.Get(t, c.public+"/api/whoami", api); r.Status != http.StatusOK {
				t.Errorf("call %d through nginx: status %d: %s", i, r.Status, r.Body)
			}
		}
	}) {
		t.FailNow()
	}

	t.Run("logout_through_balancer_refused_everywhere", func(t *testing.T) {
		const sessions = 50
		started := time.Now()
		browsers := make([]*Browser, sessions)
		for i := range browsers {
			browsers[i] = login(t, fmt.Sprintf("user%02d", i))
		}
		t.Logf("%d logins through nginx and the provider in %s", sessions, time.Since(started).Round(time.Millisecond))
		var lags []time.Duration
		for i, br := range browsers {
			ck := sessionCookies(br)
			r := br.Post(t, c.public+"/auth/logout", api, "")
			answered := time.Now()
			if r.Status != http.StatusOK {
				t.Fatalf("logout %d: status %d: %s", i, r.Status, r.Body)
			}
			lag, err := c.waitRefusedEverywhere(c.nodes, answered, ck, 5*time.Second)
			if err != nil {
				t.Fatalf("logout %d: %v", i, err)
			}
			lags = append(lags, lag)
		}
		p50, p99 := percentile(lags, 50), percentile(lags, 99)
		t.Logf("logout -> refused on the last of 3 instances, over %d logouts (polling every 5 ms): p50 %s, p99 %s, max %s",
			len(lags), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), percentile(lags, 100).Round(10*time.Microsecond))
		if p99 > 2*time.Second {
			t.Errorf("p99 %s: a logout takes too long to reach every instance (goal 500 ms)", p99)
		}
	})

	t.Run("backchannel_logout_to_one_instance_ends_session_on_all", func(t *testing.T) {
		br := login(t, "bob")
		other := login(t, "carol")
		ck, otherCk := sessionCookies(br), sessionCookies(other)
		c.expectOn(t, c.nodes, "/auth/user", ck, http.StatusOK)
		c.idp.Reset(t)

		// End the session at the provider, as the user would in another
		// app: its confirmation page, then "Yes, sign me out".
		page := br.Get(t, c.idp.EndSessionURL(), map[string]string{"Accept": "text/html"})
		if page.Status != http.StatusOK {
			t.Fatalf("provider end-session page: status %d", page.Status)
		}
		f, ok := parseForm(page.Body)
		if !ok {
			t.Fatalf("provider end-session page has no form: %.400s", page.Body)
		}
		action, err := page.URL.Parse(f.action)
		if err != nil {
			t.Fatal(err)
		}
		f.fields.Set("logout", "yes")
		r := br.Do(t, http.MethodPost, action.String(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, f.fields.Encode())
		ended := time.Now()
		if r.Status < 300 || r.Status >= 400 {
			t.Fatalf("provider end-session confirm: status %d: %.400s", r.Status, r.Body)
		}
		lag, err := c.waitRefusedEverywhere(c.nodes, ended, ck, 3*time.Second)
		if err != nil {
			t.Fatalf("after back-channel logout: %v", err)
		}
		t.Logf("back-channel logout delivered to bff %s: refused on all 3 instances %s after the provider answered", a.name, lag.Round(10*time.Microsecond))
		s := c.idp.Stats(t)
		if s.BackchannelSuccess != 1 || s.BackchannelError != 0 {
			t.Errorf("provider delivered %d logout token(s), %d failed; want 1 delivered", s.BackchannelSuccess, s.BackchannelError)
		}
		for i, n := range c.nodes {
			got := metricValue(c.metricsOf(t, n), `bff_revocations_total{kind="backchannel"}`)
			if want := map[bool]float64{true: 1, false: 0}[i == 0]; got != want {
				t.Errorf("bff %s counted %v back-channel logout(s), want %v (only %s receives them)", n.name, got, want, a.name)
			}
		}
		c.expectOn(t, c.nodes, "/auth/user", otherCk, http.StatusOK)
	})

	t.Run("garbage_gossip_is_dropped_and_changes_nothing", func(t *testing.T) {
		// Two sessions that start before any revocation below: alice's must
		// survive the intruder's revocation of her, zed's must end by the
		// same revocation from a member with the right secret (the positive
		// control). A session started after a revocation of its subject
		// would survive it anyway and prove nothing.
		alice, zed := login(t, "alice"), login(t, "zed")
		aliceCk, zedCk := sessionCookies(alice), sessionCookies(zed)
		c.expectOn(t, c.nodes, "/auth/user", aliceCk, http.StatusOK)
		c.expectOn(t, c.nodes, "/auth/user", zedCk, http.StatusOK)

		entries := make([]float64, len(c.nodes))
		dropped := make([]float64, len(c.nodes))
		errLines := make([]int, len(c.nodes))
		for i, n := range c.nodes {
			m := c.metricsOf(t, n)
			entries[i] = metricValue(m, "bff_revocation_list_entries")
			dropped[i] = metricValue(m, "bff_cluster_messages_dropped_total")
			errLines[i] = memberlistErrors(n.logs.String())
		}
		for i := range entries {
			if entries[i] != entries[0] {
				t.Fatalf("revocation lists differ before the test: %v", entries)
			}
		}

		// 1. Raw garbage at every gossip port, UDP and TCP, unframed and
		// framed as memberlist's encrypted or plaintext messages.
		for _, n := range c.nodes {
			addr := fmt.Sprintf("127.0.0.1:%d", n.gossip)
			for _, pkt := range garbagePackets() {
				sendUDP(t, addr, pkt)
				sendTCP(t, addr, pkt)
			}
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				t.Fatalf("gossip TCP %s: %v", addr, err)
			}
			conn.Close() // connect and hang up
		}

		// 2. A node with a different cluster secret tries to join and to
		// revoke a session.
		wrong := make([]byte, 32)
		rand.Read(wrong)
		list, err := revocation.New(revocation.Config{})
		if err != nil {
			t.Fatal(err)
		}
		intruder, err := cluster.New(cluster.Config{
			Bind:        fmt.Sprintf("127.0.0.1:%d", freeGossipPort(t)),
			Join:        []string{fmt.Sprintf("127.0.0.1:%d", a.gossip), fmt.Sprintf("127.0.0.1:%d", b.gossip)},
			Secret:      wrong,
			Name:        "intruder-wrong-secret",
			JoinTimeout: 1500 * time.Millisecond,
			Logger:      quietLogger(),
		}, list)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = intruder.Run(ctx)
		cancel()
		if err != nil {
			t.Fatalf("intruder run: %v", err)
		}
		if m := intruder.Members(); len(m) != 1 {
			t.Errorf("a node with the wrong cluster secret joined: it sees %d members", len(m))
		}
		if err := intruder.Revoke(revocation.Entry{Kind: revocation.KindSubject, Key: "alice", Before: time.Now(), Expiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := intruder.Leave(5 * time.Second); err != nil {
			t.Errorf("intruder leave: %v", err)
		}

		// Positive control: the same code with the right secret joins the
		// same members and the same revocation, of zed, ends zed's session
		// on every instance. Within that wait alice's, revoked the same way
		// a moment earlier by the intruder, still opens everywhere.
		friendList, err := revocation.New(revocation.Config{})
		if err != nil {
			t.Fatal(err)
		}
		friend, err := cluster.New(cluster.Config{
			Bind:        fmt.Sprintf("127.0.0.1:%d", freeGossipPort(t)),
			Join:        []string{fmt.Sprintf("127.0.0.1:%d", a.gossip), fmt.Sprintf("127.0.0.1:%d", b.gossip)},
			Secret:      mustDecodeB64(t, c.cluster),
			Name:        "member-right-secret",
			JoinTimeout: 1500 * time.Millisecond,
			Logger:      quietLogger(),
		}, friendList)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		err = friend.Run(ctx)
		cancel()
		if err != nil {
			t.Fatalf("positive control: a member with the right secret could not join: %v", err)
		}
		if m := friend.Members(); len(m) != len(c.nodes)+1 {
			t.Fatalf("positive control: a member with the right secret sees %d members, want %d", len(m), len(c.nodes)+1)
		}
		revoked := time.Now()
		if err := friend.Revoke(revocation.Entry{Kind: revocation.KindSubject, Key: "zed", Before: revoked, Expiry: revoked.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.waitRefusedEverywhere(c.nodes, revoked, zedCk, 5*time.Second); err != nil {
			t.Fatalf("positive control: a revocation from a member with the right secret did not end the session everywhere: %v", err)
		}
		c.expectOn(t, c.nodes, "/auth/user", aliceCk, http.StatusOK)
		if err := friend.Leave(5 * time.Second); err != nil {
			t.Errorf("positive control member leave: %v", err)
		}

		// 3. A member with the right secret sends messages our layer cannot
		// decode: each is dropped and counted.
		mc := memberlist.DefaultLANConfig()
		mc.Name = "intruder-malformed"
		mc.BindAddr, mc.BindPort = "127.0.0.1", freeGossipPort(t)
		mc.AdvertiseAddr, mc.AdvertisePort = mc.BindAddr, mc.BindPort
		mc.SecretKey = mustDecodeB64(t, c.cluster)
		mc.Logger = log.New(io.Discard, "", 0)
		ml, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ml.Join([]string{fmt.Sprintf("127.0.0.1:%d", a.gossip)}); err != nil {
			ml.Shutdown()
			t.Fatalf("member with the right secret could not join: %v", err)
		}
		garbage := make([]byte, 300)
		rand.Read(garbage)
		malformed := [][]byte{
			{0xee, 1, 2, 3},               // unknown message type
			append([]byte{1}, garbage...), // entries tag, undecodable body
			{1},                           // entries tag, empty body
			{1, 0, 0, 0, 200},             // entries tag, truncated
		}
		for _, member := range ml.Members() {
			if member.Name == mc.Name {
				continue
			}
			for _, msg := range malformed {
				if err := ml.SendReliable(member, msg); err != nil {
					t.Errorf("send to %s: %v", member.Name, err)
				}
			}
		}
		err = waitUntil(5*time.Second, func() bool {
			for i, n := range c.nodes {
				if metricValue(c.metricsOf(t, n), "bff_cluster_messages_dropped_total") < dropped[i]+float64(len(malformed)) {
					return false
				}
			}
			return true
		})
		if err != nil {
			for i, n := range c.nodes {
				t.Errorf("bff %s: bff_cluster_messages_dropped_total %v, want at least %v", n.name,
					metricValue(c.metricsOf(t, n), "bff_cluster_messages_dropped_total"), dropped[i]+float64(len(malformed)))
			}
		}
		if err := ml.Leave(5 * time.Second); err != nil {
			t.Errorf("malformed member leave: %v", err)
		}
		if err := ml.Shutdown(); err != nil {
			t.Errorf("malformed member shutdown: %v", err)
		}

		// Nothing else changed: the lists hold zed's revocation alone (not
		// the intruder's), three members, every instance ready, and the
		// packets that memberlist refused before our code saw them are in
		// the logs.
		if err := waitUntil(10*time.Second, func() bool {
			for _, n := range c.nodes {
				if metricValue(c.metricsOf(t, n), "bff_cluster_members") != 3 {
					return false
				}
			}
			return true
		}); err != nil {
			for _, n := range c.nodes {
				t.Errorf("bff %s: bff_cluster_members %v, want 3", n.name, metricValue(c.metricsOf(t, n), "bff_cluster_members"))
			}
		}
		for i, n := range c.nodes {
			if got := metricValue(c.metricsOf(t, n), "bff_revocation_list_entries"); got != entries[i]+1 {
				t.Errorf("bff %s: revocation list has %v entries after the garbage, had %v; want one more (zed's, from the member with the right secret)", n.name, got, entries[i])
			}
			if st := n.readyz(c.client); st != http.StatusOK {
				t.Errorf("bff %s: /readyz %d after the garbage", n.name, st)
			}
			if got := memberlistErrors(n.logs.String()); got <= errLines[i] {
				t.Errorf("bff %s: no memberlist warning logged for the garbage packets", n.name)
			}
		}
		// alice's session, started before the intruder revoked her, is not
		// revoked: the intruder's entry stayed with it.
		c.expectOn(t, c.nodes, "/auth/user", aliceCk, http.StatusOK)

		// The cluster still replicates.
		if r := alice.Post(t, c.public+"/auth/logout", api, ""); r.Status != http.StatusOK {
			t.Fatalf("logout: status %d", r.Status)
		}
		if _, err := c.waitRefusedEverywhere(c.nodes, time.Now(), aliceCk, 3*time.Second); err != nil {
			t.Errorf("after the garbage, a logout did not replicate: %v", err)
		}
	})

	t.Run("restarted_instance_refuses_what_was_revoked_while_down", func(t *testing.T) {
		victim, bystander := login(t, "erin"), login(t, "frank")
		vck, bck := sessionCookies(victim), sessionCookies(bystander)
		c.expectOn(t, c.nodes, "/auth/user", vck, http.StatusOK)

		cc.kill(t)
		if r := victim.Post(t, c.public+"/auth/logout", api, ""); r.Status != http.StatusOK {
			t.Fatalf("logout while bff %s is down: status %d: %s", cc.name, r.Status, r.Body)
		}
		if _, err := c.waitRefusedEverywhere([]*clusterNode{a, b}, time.Now(), vck, 3*time.Second); err != nil {
			t.Fatalf("live instances: %v", err)
		}

		restarted := time.Now()
		cc.start(c.owner, bffBinary(t)) // stopped when the whole test ends, not this subtest
		hc := &http.Client{Timeout: time.Second}
		defer hc.CloseIdleConnections()
		for cc.readyz(hc) != http.StatusOK {
			if cc.proc.exited() {
				t.Fatalf("bff %s exited after restart: %v\n%s", cc.name, cc.proc.err, tail(cc.logs.String(), 4<<10))
			}
			if time.Since(restarted) > 30*time.Second {
				t.Fatalf("bff %s not ready 30s after restart", cc.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("bff %s ready %s after restart (same ports, same config, no snapshot file)", cc.name, time.Since(restarted).Round(time.Millisecond))
		c.expectOn(t, []*clusterNode{cc}, "/auth/user", vck, http.StatusUnauthorized)
		c.expectOn(t, []*clusterNode{cc}, "/api/whoami", vck, http.StatusUnauthorized)
		c.expectOn(t, []*clusterNode{cc}, "/auth/user", bck, http.StatusOK)
		want := metricValue(c.metricsOf(t, a), "bff_revocation_list_entries")
		if got := metricValue(c.metricsOf(t, cc), "bff_revocation_list_entries"); got != want {
			t.Errorf("restarted bff %s has %v revocation entries, %s has %v", cc.name, got, a.name, want)
		}
	})

	t.Run("epoch_rollovers_and_master_secret_rotation", func(t *testing.T) {
		br := login(t, "gina")
		master0, epoch := sealKid(t, br)
		direct := func(n *clusterNode) string { return fmt.Sprintf("http://localhost:%d", n.port) }
		hdr := map[string]string{"X-CSRF": "1", "Origin": c.public}

		// Three rollovers, ~6 s: the first call after each, alternately
		// /auth/user and a proxied call on a different instance, re-seals
		// under the new epoch's key; the others accept the new cookie.
		for k := 1; k <= 3; k++ {
			// Into the epoch after the one the cookie was sealed in (epochs
			// are Unix time / rotation, on every instance alike).
			time.Sleep(time.Until(time.Unix(0, 0).Add(time.Duration(epoch+1) * clusterRotation).Add(50 * time.Millisecond)))
			first := c.nodes[k%3]
			path := "/auth/user"
			if k%2 == 1 {
				path = "/api/whoami"
			}
			r := br.Get(t, direct(first)+path, hdr)
			if r.Status != http.StatusOK {
				t.Fatalf("rollover %d: bff %s %s: status %d: %s", k, first.name, path, r.Status, r.Body)
			}
			if _, ok := r.SetCookie(sessionCookie); !ok {
				t.Errorf("rollover %d: bff %s %s did not re-seal a cookie from the previous epoch", k, first.name, path)
			}
			master, e := sealKid(t, br)
			if master != master0 || e <= epoch {
				t.Errorf("rollover %d: cookie sealed under epoch %d (master changed: %v), want an epoch after %d", k, e, master != master0, epoch)
			}
			epoch = e
			for _, n := range c.nodes {
				for _, p := range []string{"/auth/user", "/api/whoami"} {
					if r := br.Get(t, direct(n)+p, hdr); r.Status != http.StatusOK {
						t.Errorf("rollover %d: bff %s %s: status %d: %s", k, n.name, p, r.Status, r.Body)
					}
				}
			}
			// These calls re-seal too when one of them crosses into the
			// next epoch (a loaded machine): count from the cookie held now.
			_, epoch = sealKid(t, br)
		}

		// Master secret rotation, step 1: NEW first, OLD still opens.
		// Nobody is logged out; the next write seals under NEW.
		frozen := sessionCookies(login(t, "hank")) // sealed under OLD, never re-sealed
		for _, n := range c.nodes {
			n.writeSecrets(t, newSecret, oldSecret)
			n.hup(t)
		}
		c.expectOn(t, c.nodes, "/auth/user", frozen, http.StatusOK)
		c.expectOn(t, c.nodes, "/api/whoami", frozen, http.StatusOK)
		r := br.Get(t, direct(a)+"/auth/user", hdr)
		if r.Status != http.StatusOK {
			t.Fatalf("after adding NEW: status %d: %s", r.Status, r.Body)
		}
		if _, ok := r.SetCookie(sessionCookie); !ok {
			t.Errorf("after adding NEW first, a cookie sealed under OLD was not re-sealed")
		}
		if master, _ := sealKid(t, br); master == master0 {
			t.Errorf("after adding NEW first, the cookie is still sealed under OLD")
		}
		resealed := sessionCookies(br)
		c.expectOn(t, c.nodes, "/auth/user", resealed, http.StatusOK)

		// Step 2: OLD removed. Sessions sealed only under it end; the
		// re-sealed one lives.
		for _, n := range c.nodes {
			n.writeSecrets(t, newSecret)
			n.hup(t)
		}
		c.expectOn(t, c.nodes, "/auth/user", frozen, http.StatusUnauthorized)
		c.expectOn(t, c.nodes, "/api/whoami", frozen, http.StatusUnauthorized)
		c.expectOn(t, c.nodes, "/auth/user", resealed, http.StatusOK)
		c.expectOn(t, c.nodes, "/api/whoami", resealed, http.StatusOK)
	})
}

// garbagePackets are payloads no member would send: random bytes, and
// memberlist frames (encrypted, plaintext push/pull, compound, a huge
// length) with random contents.
func garbagePackets() [][]byte {
	rnd := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	frame := func(typ byte, length uint32, body []byte) []byte {
		out := []byte{typ}
		out = binary.BigEndian.AppendUint32(out, length)
		return append(out, body...)
	}
	return [][]byte{
		rnd(1),
		rnd(64),
		rnd(1200),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		frame(10, 64, rnd(64)),        // encryptMsg with a bogus ciphertext
		frame(10, 0xffffffff, nil),    // encryptMsg claiming 4 GiB
		append([]byte{1}, rnd(80)...), // encryption version byte, bad tag
		append([]byte{6}, rnd(80)...), // plaintext pushPullMsg
		append([]byte{7}, rnd(80)...), // plaintext compoundMsg
		append([]byte{8}, rnd(80)...), // plaintext userMsg
	}
}

func sendUDP(t *testing.T, addr string, pkt []byte) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(pkt); err != nil {
		t.Fatalf("gossip UDP %s: %v", addr, err)
	}
}

func sendTCP(t *testing.T, addr string, pkt []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("gossip TCP %s: %v", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatalf("gossip TCP %s: %v", addr, err)
	}
	// The first write on a fresh connection lands in the socket buffer
	// before the member has read anything: an error means nothing was sent.
	if _, err := conn.Write(pkt); err != nil {
		t.Fatalf("gossip TCP %s: writing the garbage: %v", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, conn) // until the member hangs up (a reset is one way to)
}

// memberlistErrors counts memberlist's complaints (logged as rate-limited
// warnings) in a JSON log.
func memberlistErrors(logs string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"component":"memberlist"`) && strings.Contains(line, `"level":"WARN"`) {
			n++
		}
	}
	return n
}

// waitUntil polls cond every 50 ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: condition not met after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
