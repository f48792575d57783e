package cluster

import (
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/bff-project/bff/revocation"
)

// An intruder on the gossip network who has no key sends well-formed,
// unencrypted memberlist traffic: user messages over UDP and TCP, and a
// join whose push/pull offers its own full state. Each carries a revocation
// and a single-use value; none may be applied. The same entries from a
// member holding the key are (positive control). This fails if the
// cluster accepts unencrypted gossip (GossipVerifyIncoming false).
func TestUnencryptedIntruderNotApplied(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	eventually(t, "two members", func() bool { return len(a.c.Members()) == 2 })
	host, p, _ := net.SplitHostPort(a.addr)
	port, _ := strconv.Atoi(p)
	target := &memberlist.Node{Name: a.c.LocalName(), Addr: net.ParseIP(host), Port: uint16(port)}
	exp := time.Now().Add(time.Hour)
	entries := func(prefix string) []revocation.Entry {
		return []revocation.Entry{
			{Kind: revocation.KindSession, Key: prefix + "-session", Expiry: exp},
			{Kind: revocation.KindOnce, Key: prefix + "-once", Expiry: exp},
		}
	}
	msg := func(prefix string) []byte {
		return append([]byte{msgEntries}, revocation.AppendEntries(nil, entries(prefix))...)
	}
	applied := func(n *node, prefix string) (rev, once bool) {
		for _, e := range n.list.Entries() {
			switch e.Key {
			case prefix + "-session":
				rev = n.list.Revoked(e.Key, "", "", time.Now())
			case prefix + "-once":
				once = true
			}
		}
		return
	}

	intruder := plainMember(t, entries("plain-sync"))
	if err := intruder.SendBestEffort(target, msg("plain-udp")); err != nil {
		t.Fatal(err)
	}
	if err := intruder.SendReliable(target, msg("plain-tcp")); err != nil {
		t.Fatal(err)
	}
	intruder.Join([]string{a.addr}) // fails against an encrypted cluster; its state must not be merged

	// Positive control: the same messages from a member holding the key
	// apply, by each way the intruder tried.
	if err := b.c.ml.SendBestEffort(target, msg("genuine-udp")); err != nil {
		t.Fatal(err)
	}
	if err := b.c.ml.SendReliable(target, msg("genuine-tcp")); err != nil {
		t.Fatal(err)
	}
	peer := start(t, secret, a.addr) // its join's push/pull carries its state
	for _, e := range entries("genuine-sync") {
		peer.list.Add(e)
	}
	if _, err := peer.c.ml.Join([]string{a.addr}); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"genuine-udp", "genuine-tcp", "genuine-sync"} {
		eventually(t, prefix+" applied", func() bool { r, o := applied(a, prefix); return r && o })
	}
	time.Sleep(300 * time.Millisecond) // the intruder's traffic was sent first; give it the same time again
	for _, prefix := range []string{"plain-udp", "plain-tcp", "plain-sync"} {
		if r, o := applied(a, prefix); r || o {
			t.Errorf("unencrypted %s applied: revocation %v, single-use value %v", prefix, r, o)
		}
	}
	if n := len(a.c.Members()); n != 3 {
		t.Errorf("%d members, want 3 (the intruder must not be one)", n)
	}
}

// plainMember is a bare memberlist without a key (it sends unencrypted),
// not joined to anyone, whose full state in a push/pull is state.
func plainMember(t *testing.T, state []revocation.Entry) *memberlist.Memberlist {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	host, p, _ := net.SplitHostPort(freePort(t))
	mc.Name = "intruder-" + p
	mc.BindAddr, mc.AdvertiseAddr = host, host
	mc.BindPort, _ = strconv.Atoi(p)
	mc.AdvertisePort = mc.BindPort
	mc.Logger = log.New(io.Discard, "", 0)
	mc.Delegate = stateDelegate(revocation.AppendEntries(nil, state))
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Shutdown() })
	return ml
}

// stateDelegate offers a fixed full state and ignores what it receives.
type stateDelegate []byte

func (d stateDelegate) NodeMeta(int) []byte             { return nil }
func (d stateDelegate) NotifyMsg([]byte)                {}
func (d stateDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d stateDelegate) LocalState(bool) []byte          { return d }
func (d stateDelegate) MergeRemoteState([]byte, bool)   {}
