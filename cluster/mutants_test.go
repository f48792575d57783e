package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/revocation"
)

// Tests for what the other tests left free (found by mutation testing,
// tools/mutation). Each names what would go wrong without it.

// The documented defaults (JoinTimeout 30 s, PushPullInterval 15 s) replace
// zero and negative values, and only those; metadata may use memberlist's
// whole 512 bytes, and not one more.
func TestConfigDefaultsAndMeta(t *testing.T) {
	list, _ := revocation.New(revocation.Config{})
	tests := []struct {
		name       string
		join, sync time.Duration // given
		meta       int
		wantJoin   time.Duration
		wantSync   time.Duration
		wantErr    bool
	}{
		{"zero: defaults", 0, 0, 0, 30 * time.Second, 15 * time.Second, false},
		{"negative: defaults", -time.Second, -time.Second, 0, 30 * time.Second, 15 * time.Second, false},
		{"given: kept", 700 * time.Millisecond, 3 * time.Second, 0, 700 * time.Millisecond, 3 * time.Second, false},
		{"meta of 512 bytes", 0, 0, 512, 30 * time.Second, 15 * time.Second, false},
		{"meta of 513 bytes", 0, 0, 513, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{
				Bind: freePort(t), Secret: secret, JoinTimeout: tt.join, PushPullInterval: tt.sync,
				Meta: bytes.Repeat([]byte{'m'}, tt.meta), Logger: discard,
			}, list)
			if tt.wantErr {
				if err == nil {
					c.Leave(0)
					t.Fatal("New accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Leave(0)
			if c.cfg.JoinTimeout != tt.wantJoin {
				t.Errorf("JoinTimeout %v, want %v", c.cfg.JoinTimeout, tt.wantJoin)
			}
			if got := c.memberlistConfig("127.0.0.1", 1, "127.0.0.1", 1).PushPullInterval; got != tt.wantSync {
				t.Errorf("memberlist's PushPullInterval %v, want %v", got, tt.wantSync)
			}
			if m := c.Members(); len(m) != 1 || len(m[0].Meta) != tt.meta {
				t.Errorf("members %v, want this one with its %d bytes of meta", m, tt.meta)
			}
		})
	}
}

// Settings whose effect no test can time: gossip must be on (a zero
// interval turns it off, and a member that missed the direct send would
// then wait for a probe's piggyback or the next push/pull, stretching the
// replay window of a single-use value); a crashed member's name must be
// reclaimable at a new address (zero means never, until memberlist reaps the
// dead node); encryption must be required both ways, with the cluster key.
func TestMemberlistSettings(t *testing.T) {
	c := &Cluster{cfg: Config{Secret: secret, PushPullInterval: 15 * time.Second, Name: "n1"}, log: discard}
	mc := c.memberlistConfig("127.0.0.1", 7946, "10.0.0.5", 7947)
	if mc.GossipInterval <= 0 || mc.GossipInterval > time.Second || mc.GossipNodes <= 0 {
		t.Errorf("gossip every %v to %d members: off or too slow", mc.GossipInterval, mc.GossipNodes)
	}
	if mc.DeadNodeReclaimTime <= 0 {
		t.Errorf("DeadNodeReclaimTime %v: a crashed member's name is never reclaimable", mc.DeadNodeReclaimTime)
	}
	if !mc.GossipVerifyIncoming || !mc.GossipVerifyOutgoing || !bytes.Equal(mc.SecretKey, secret) {
		t.Error("encryption is not required both ways with the cluster key")
	}
	if mc.Name != "n1" || mc.BindAddr != "127.0.0.1" || mc.BindPort != 7946 || mc.AdvertiseAddr != "10.0.0.5" || mc.AdvertisePort != 7947 {
		t.Errorf("name or addresses wrong: %s %s:%d %s:%d", mc.Name, mc.BindAddr, mc.BindPort, mc.AdvertiseAddr, mc.AdvertisePort)
	}
	if mc.PushPullInterval != 15*time.Second || mc.Delegate == nil || mc.Logger == nil {
		t.Error("push/pull interval, delegate or logger not set")
	}
}

// Ports are 1 to 65535: port 0 would bind a random port that no other
// member is told of.
func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in   string
		port int
		ok   bool
	}{
		{"127.0.0.1:1", 1, true},
		{"127.0.0.1:65535", 65535, true},
		{"[::1]:7946", 7946, true},
		{"127.0.0.1:0", 0, false},
		{"127.0.0.1:65536", 0, false},
		{"127.0.0.1:-1", 0, false},
		{"127.0.0.1", 0, false},
		{"127.0.0.1:x", 0, false},
	}
	for _, tt := range tests {
		_, port, err := splitHostPort(tt.in)
		if (err == nil) != tt.ok || port != tt.port {
			t.Errorf("splitHostPort(%q) = %d, %v; want %d, ok=%v", tt.in, port, err, tt.port, tt.ok)
		}
	}
	list, _ := revocation.New(revocation.Config{})
	if c, err := New(Config{Bind: "127.0.0.1:0", Secret: secret, Logger: discard}, list); err == nil {
		c.Leave(0)
		t.Error("New accepted bind port 0")
	}
}

// fakePeer accepts TCP connections on a gossip address and closes them at
// once, counting them: each is one join attempt that fails.
func fakePeer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			conn.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// Run retries a join that fails with a backoff (200 ms, doubling, at most
// 2 s), not in a loop that hammers the peers, and for JoinTimeout: zero
// means 30 s, so with no peer answering it is still trying when the
// context ends.
func TestJoinRetryBackoff(t *testing.T) {
	tests := []struct {
		name          string
		joinTimeout   time.Duration
		ctx           time.Duration
		wantCtxErr    bool
		minTry, maxTr int32
	}{
		// Attempts at 0, 0.2, 0.6 and 1.4 s, then the deadline has passed.
		{"gives up after JoinTimeout", time.Second, 20 * time.Second, false, 2, 6},
		// Attempts at 0, 0.2 and 0.6 s, then the context ends at 1 s.
		{"zero JoinTimeout is 30 s", 0, time.Second, true, 2, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, tries := fakePeer(t)
			list, _ := revocation.New(revocation.Config{})
			c, err := New(Config{Bind: freePort(t), Join: []string{peer}, Secret: secret, JoinTimeout: tt.joinTimeout, Logger: discard}, list)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Leave(0)
			ctx, cancel := context.WithTimeout(t.Context(), tt.ctx)
			defer cancel()
			err = c.Run(ctx)
			if got := errors.Is(err, context.DeadlineExceeded); got != tt.wantCtxErr {
				t.Errorf("Run: %v; want the context's error: %v", err, tt.wantCtxErr)
			}
			if n := tries.Load(); n < tt.minTry || n > tt.maxTr {
				t.Errorf("%d join attempts, want %d to %d", n, tt.minTry, tt.maxTr)
			}
			if !c.Ready() {
				t.Error("not ready after Run")
			}
		})
	}
}

// Being joined is not joining: a member whose own peers do not answer, but
// that a fresh member joins meanwhile, holds only that member's list (here
// empty), not the cluster's. It must keep trying its peers until
// JoinTimeout and then say none was reachable, not report a join. The fresh
// member's join does succeed (positive control: two members at the end).
func TestBeingJoinedIsNotJoining(t *testing.T) {
	const timeout = 2 * time.Second
	logs := &testsupport.Buffer{}
	list, _ := revocation.New(revocation.Config{})
	addr := freePort(t)
	a, err := New(Config{
		Bind: addr, Join: []string{freePort(t)}, Secret: secret, JoinTimeout: timeout,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}, list)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave(0)
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- a.Run(t.Context()) }()
	start(t, secret, addr) // joins a while a retries its own peer
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	if n := a.ml.NumMembers(); n != 2 {
		t.Fatalf("%d members: the fresh member did not join", n)
	}
	if strings.Contains(logs.String(), "cluster joined") || !strings.Contains(logs.String(), "no cluster peer reachable") {
		t.Errorf("being joined was reported as a join:\n%s", logs)
	}
	if took < timeout {
		t.Errorf("Run returned after %v, before JoinTimeout %v", took, timeout)
	}
}

// Leave reports a leave that was not confirmed in time (the others then
// learn of it only by failing to probe this member); given time, it
// succeeds and the others see the member go.
func TestLeaveReportsTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		wantErr bool
	}{
		{"too short to broadcast", time.Nanosecond, true},
		{"enough", 5 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, secret)
			b := start(t, secret, a.addr)
			eventually(t, "two members", func() bool { return len(a.c.Members()) == 2 })
			err := b.c.Leave(tt.timeout)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Leave(%v) = %v, want an error: %v", tt.timeout, err, tt.wantErr)
			}
			if err := b.c.Leave(tt.timeout); err != nil {
				t.Errorf("second Leave: %v", err)
			}
			if !tt.wantErr {
				eventually(t, "b gone", func() bool { return len(a.c.Members()) == 1 })
			}
		})
	}
}

// testDelegate is a delegate on list, without memberlist, whose drops,
// receipts and log are recorded.
type testDelegate struct {
	d        *delegate
	list     *revocation.List
	logs     *testsupport.Buffer
	drops    int
	received []int
}

func newTestDelegate(t *testing.T) *testDelegate {
	list, err := revocation.New(revocation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	td := &testDelegate{list: list, logs: &testsupport.Buffer{}}
	td.d = (*delegate)(&Cluster{
		cfg: Config{
			OnDrop:    func() { td.drops++ },
			OnReceive: func(n int) { td.received = append(td.received, n) },
		},
		list: list,
		log:  slog.New(slog.NewTextHandler(td.logs, nil)),
	})
	return td
}

// A message or a full state is dropped (counted, its reason logged) exactly
// when it does not decode; one that does is added and reported with the
// number of entries it added, and logs no error. The drop's reason tells an
// unknown message type from a known one whose entries are malformed.
func TestDelegateReceives(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	two := revocation.AppendEntries(nil, []revocation.Entry{
		{Kind: revocation.KindSession, Key: "s1", Expiry: exp},
		{Kind: revocation.KindOnce, Key: "u1", Expiry: exp},
	})
	msg := func(b []byte) []byte { return append([]byte{msgEntries}, b...) }
	tests := []struct {
		name      string
		state     bool // MergeRemoteState instead of NotifyMsg
		in        [][]byte
		drops     int
		why       string // in the log when dropped
		received  []int
		revokedS1 bool
	}{
		{"empty message", false, [][]byte{nil}, 1, "unknown message type", nil, false},
		{"unknown type", false, [][]byte{{9, 1, 2}}, 1, "unknown message type", nil, false},
		{"type byte alone", false, [][]byte{{msgEntries}}, 1, "why=\"message: revocation: malformed", nil, false},
		{"two entries", false, [][]byte{msg(two)}, 0, "", []int{2}, true},
		{"the same again", false, [][]byte{msg(two), msg(two)}, 0, "", []int{2, 0}, true},
		{"state", true, [][]byte{two}, 0, "", []int{2}, true},
		{"state again", true, [][]byte{two, two}, 0, "", []int{2, 0}, true},
		{"malformed state", true, [][]byte{{1, 5, 1}}, 1, "why=\"sync: revocation: malformed", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := newTestDelegate(t)
			for _, b := range tt.in {
				if tt.state {
					td.d.MergeRemoteState(b, false)
				} else {
					td.d.NotifyMsg(b)
				}
			}
			logs := td.logs.String()
			if td.drops != tt.drops || (tt.why != "" && !strings.Contains(logs, tt.why)) {
				t.Errorf("%d drops, want %d with %q in the log:\n%s", td.drops, tt.drops, tt.why, logs)
			}
			if fmt.Sprint(td.received) != fmt.Sprint(tt.received) {
				t.Errorf("OnReceive told %v, want %v", td.received, tt.received)
			}
			if strings.Contains(logs, "level=ERROR") {
				t.Errorf("an error was logged:\n%s", logs)
			}
			if got := td.list.Revoked("s1", "", "", time.Now()); got != tt.revokedS1 {
				t.Errorf("s1 revoked: %v, want %v", got, tt.revokedS1)
			}
		})
	}
}

// When the full state must be cut, every revocation is kept before any
// single-use value, even revocations that expire before every value, and
// the values kept are those that expire last.
func TestEncodeStateRevocationsFirst(t *testing.T) {
	now := time.Now()
	var entries []revocation.Entry
	for i := range 50 {
		entries = append(entries,
			revocation.Entry{Kind: revocation.KindOnce, Key: fmt.Sprintf("state:%040d", i), Expiry: now.Add(time.Hour + time.Duration(i)*time.Second)},
			revocation.Entry{Kind: revocation.KindSession, Key: fmt.Sprintf("%022d", i), Expiry: now.Add(time.Duration(1+i) * time.Second)})
	}
	onceSize := len(revocation.AppendEntries(nil, entries[:1])) - 2 // less the header
	limit := len(revocation.AppendEntries(nil, entries)) - 20*onceSize
	got, err := revocation.DecodeEntries(encodeState(entries, limit))
	if err != nil {
		t.Fatal(err)
	}
	sessions, once, earliest := 0, 0, time.Duration(1<<62)
	for _, e := range got {
		if e.Kind == revocation.KindOnce {
			once++
			earliest = min(earliest, e.Expiry.Sub(now))
		} else {
			sessions++
		}
	}
	if sessions != 50 {
		t.Errorf("%d revocations kept, want all 50", sessions)
	}
	if once < 20 || once > 30 {
		t.Errorf("%d single-use values kept, want 20 to 30", once)
	}
	if want := time.Hour + time.Duration(50-once)*time.Second; earliest.Round(time.Second) != want {
		t.Errorf("earliest value kept expires in %v, want %v (the latest first)", earliest, want)
	}
}

// The log limiter lets logBurst lines through in each second of the clock,
// no more, and starts again in the next second: a flood of memberlist
// warnings is cut, and later warnings are still seen.
func TestLineLimiter(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		at   []time.Duration // offsets from t0 of successive lines
		want []bool
	}{
		{"a burst, then the rest of the second", []time.Duration{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 999 * time.Millisecond},
			[]bool{true, true, true, true, true, true, true, true, true, true, false, false}},
		{"the next second starts afresh", []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, time.Second, time.Second + 1, 3 * time.Second},
			[]bool{true, true, true, true, true, true, true, true, true, true, false, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lineLimiter{}
			for i, d := range tt.at {
				if got := l.allow(t0.Add(d)); got != tt.want[i] {
					t.Errorf("line %d at +%v: allowed=%v, want %v", i, d, got, tt.want[i])
				}
			}
		})
	}
	if logBurst != 10 {
		t.Fatalf("the cases assume logBurst 10, not %d", logBurst)
	}
}

// A merge that added entries is logged (at debug level) with how many; one
// that added nothing, as most syncs, is not.
func TestReceivedLogged(t *testing.T) {
	td := newTestDelegate(t)
	td.d.log = slog.New(slog.NewTextHandler(td.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	state := revocation.AppendEntries(nil, []revocation.Entry{entry("s1"), entry("s2")})
	td.d.MergeRemoteState(state, false)
	td.d.MergeRemoteState(state, false)
	logs := td.logs.String()
	if n := strings.Count(logs, "entries merged"); n != 1 || !strings.Contains(logs, "added=2") {
		t.Errorf("want one merge logged, with added=2:\n%s", logs)
	}
}

// Revoke sends the entry directly to every other live member, not to
// itself: a direct send that fails is logged (at debug level) with the
// member's name. Here the other member has stopped without leaving, so it
// is still counted as live and the send fails.
func TestDirectSendToEveryOtherMember(t *testing.T) {
	logs := &testsupport.Buffer{}
	list, _ := revocation.New(revocation.Config{})
	a, err := New(Config{Bind: freePort(t), Secret: secret, Name: "a", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, list)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave(0)
	a.Run(t.Context())
	bList, _ := revocation.New(revocation.Config{})
	b, err := New(Config{Bind: freePort(t), Join: []string{a.ml.LocalNode().Address()}, Secret: secret, Name: "b", Logger: discard}, bList)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two members", func() bool { return len(a.Members()) == 2 })
	b.ml.Shutdown() // gone without a word
	if err := a.Revoke(entry("s1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed direct send to b logged", func() bool {
		return strings.Contains(logs.String(), `msg="direct send failed; gossip will carry it" member=b `)
	})
	if strings.Contains(logs.String(), `member=a `) {
		t.Errorf("a sent to itself:\n%s", logs)
	}
}

// Advertise, when set, is the address the others are told: a valid one is
// used, an invalid one refused (Bind is then not a fallback).
func TestAdvertise(t *testing.T) {
	list, _ := revocation.New(revocation.Config{})
	tests := []struct {
		advertise string
		ok        bool
	}{
		{"10.1.2.3:7999", true},
		{"10.1.2.3:0", false},
		{"10.1.2.3", false},
		{"0.0.0.0:7946", false},
		{"bff.internal:7946", false},
	}
	for _, tt := range tests {
		t.Run(tt.advertise, func(t *testing.T) {
			c, err := New(Config{Bind: freePort(t), Advertise: tt.advertise, Secret: secret, Logger: discard}, list)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				return
			}
			defer c.Leave(0)
			if m := c.Members(); len(m) != 1 || m[0].Addr != tt.advertise {
				t.Errorf("members %v, want this one at %s", m, tt.advertise)
			}
		})
	}
}
