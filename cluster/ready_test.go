package cluster

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/revocation"
)

// A join list may name this member itself (a DNS name resolving to every
// member, the first of which is this one). Contacting only itself is not a
// join: Run must keep trying until JoinTimeout and then say no peer was
// reachable, not report a join. A member whose list also names a real peer
// (positive control) joins it and holds its revocations when ready.
func TestJoinReachingOnlySelf(t *testing.T) {
	const timeout = 800 * time.Millisecond
	peer := start(t, secret)
	if err := peer.c.Revoke(entry("on-peer")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		withPeer    bool
		wantLog     string
		wantMembers int
	}{
		{"only itself", false, "no cluster peer reachable", 1},
		{"itself and a peer", true, "cluster joined", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freePort(t)
			join := []string{addr}
			if tt.withPeer {
				join = append(join, peer.addr)
			}
			logs := &testsupport.Buffer{}
			list, _ := revocation.New(revocation.Config{})
			c, err := New(Config{
				Bind: addr, Join: join, Secret: secret, JoinTimeout: timeout,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			}, list)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Leave(time.Second)
			begin := time.Now()
			if err := c.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			took := time.Since(begin)
			if !c.Ready() {
				t.Error("not ready after Run")
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log does not say %q:\n%s", tt.wantLog, logs)
			}
			if n := len(c.Members()); n != tt.wantMembers {
				t.Errorf("%d members, want %d", n, tt.wantMembers)
			}
			if tt.withPeer {
				if !list.Revoked("on-peer", "", "", time.Now()) {
					t.Error("ready without the peer's revocations")
				}
				return
			}
			if strings.Contains(logs.String(), "cluster joined") {
				t.Errorf("contacting only itself was logged as a join:\n%s", logs)
			}
			if took < timeout {
				t.Errorf("Run returned after %v, before JoinTimeout %v, with no peer", took, timeout)
			}
		})
	}
}
