package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterAdmin: the admin API of one instance ends every session of a
// user on all three instances behind nginx, leaves another user's session
// and a sign-in after it alone, refuses a wrong token (nothing changes), and
// is not reachable through the public listener or the balancer.
func TestClusterAdmin(t *testing.T) {
	t.Parallel()
	const token = "cluster-admin-token-0123456789abcdefghij"
	adminPorts := []int{freePort(t), freePort(t), freePort(t)}
	c := startClusterWith(t, clusterOptions{
		secret: newKeySecret(t),
		config: func(i int, yaml string) string {
			return yaml + fmt.Sprintf("admin:\n  listen: %s\n  token: %s\n",
				strconv.Quote(fmt.Sprintf("127.0.0.1:%d", adminPorts[i])), strconv.Quote(token))
		},
	})
	admin := func(i int, method, path, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", adminPorts[i], path), strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("admin %s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	login := func(user string) string {
		t.Helper()
		br := newBrowser(t)
		br.Login(t, c.public, "/", user, "pw")
		ck := sessionCookies(br)
		if ck == "" {
			t.Fatalf("no session cookie for %s", user)
		}
		return ck
	}
	alice1, alice2, bob := login("alice"), login("alice"), login("bob")
	for _, ck := range []string{alice1, alice2, bob} {
		c.expectOn(t, c.nodes, "/auth/user", ck, http.StatusOK)
	}

	// Not on the public side: the balancer and each instance's own
	// listener answer 404, with the right token; nothing is revoked.
	for _, base := range []string{c.public, c.nodes[0].url()} {
		req, _ := http.NewRequest(http.MethodPost, base+"/admin/v1/revoke", strings.NewReader(`{"sub":"alice"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s/admin/v1/revoke: %d, want 404", base, resp.StatusCode)
		}
	}
	if status, _ := admin(1, http.MethodPost, "/admin/v1/revoke", token+"x", `{"sub":"alice"}`); status != http.StatusUnauthorized {
		t.Errorf("admin API with a wrong token: %d, want 401", status)
	}
	time.Sleep(300 * time.Millisecond) // time for a wrongly accepted revocation to replicate
	c.expectOn(t, c.nodes, "/auth/user", alice1, http.StatusOK)

	// Revoke alice on instance b: every instance refuses both her sessions.
	start := time.Now()
	if status, body := admin(1, http.MethodPost, "/admin/v1/revoke", token, `{"sub":"alice"}`); status != http.StatusOK {
		t.Fatalf("admin revoke: %d %s", status, body)
	}
	for _, ck := range []string{alice1, alice2} {
		lag, err := c.waitRefusedEverywhere(c.nodes, start, ck, 5*time.Second)
		if err != nil {
			t.Fatalf("alice's session after the admin revocation: %v", err)
		}
		t.Logf("refused on every instance %s after the admin call", lag.Round(time.Millisecond))
	}
	c.expectOn(t, c.nodes, "/auth/user", bob, http.StatusOK)
	time.Sleep(1100 * time.Millisecond) // a sign-in in a later second than the revocation
	c.expectOn(t, c.nodes, "/auth/user", login("alice"), http.StatusOK)

	// Every instance's status counts the replicated entry.
	for i := range c.nodes {
		status, body := admin(i, http.MethodGet, "/admin/v1/status", token, "")
		var st struct {
			Entries int      `json:"revocation_entries"`
			Members []string `json:"cluster_members"`
			IDs     []string `json:"master_secret_ids"`
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Entries < 1 || len(st.Members) != 3 || len(st.IDs) != 1 {
			t.Errorf("instance %d status: %d %s", i, status, body)
		}
	}
	for _, n := range c.nodes {
		if strings.Contains(n.logs.String(), token) {
			t.Errorf("bff %s logged the admin token", n.name)
		}
		if !strings.Contains(n.logs.String(), "admin API listening") {
			t.Errorf("bff %s does not log its admin listener", n.name)
		}
	}
}
