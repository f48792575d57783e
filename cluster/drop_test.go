package cluster

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/bff-project/bff/revocation"
)

func TestMalformedMessagesDropped(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	eventually(t, "two members", func() bool { return len(a.c.Members()) == 2 })
	target := a.c.ml.LocalNode()
	malformed := [][]byte{
		{9, 1, 2, 3},
		{msgEntries},
		{msgEntries, 1, 5, 1},
		append([]byte{msgEntries}, bytes.Repeat([]byte{0xff}, 100)...),
		append([]byte{msgEntries}, revocation.AppendEntries(nil, []revocation.Entry{{Kind: revocation.KindOnce + 1, Key: "x", Expiry: time.Now().Add(time.Hour)}})...),
	}
	// Five messages are sent, each one counted as one drop.
	for i, msg := range malformed {
		before := a.drops.Load()
		if err := b.c.ml.SendReliable(target, msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		eventually(t, fmt.Sprintf("the drop of message %d", i), func() bool { return a.drops.Load() > before })
	}
	if n := a.drops.Load(); n != int32(len(malformed)) {
		t.Errorf("%d drops counted for %d malformed messages", n, len(malformed))
	}
	if a.list.Len() != 0 || a.list.OnceLen() != 0 {
		t.Errorf("malformed messages changed the list: %d, %d entries", a.list.Len(), a.list.OnceLen())
	}
	// Positive control: a well-formed message from the same member applies.
	if err := b.c.Revoke(entry("genuine")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the genuine revocation", func() bool { return revoked(a, "genuine") })
}

// memberlist drops traffic it cannot decrypt and says so only in its log:
// each such packet or stream must still be counted through OnDrop, and
// change nothing.
func TestUndecryptableTrafficCounted(t *testing.T) {
	a := start(t, secret)
	b := start(t, secret, a.addr)
	eventually(t, "two members", func() bool { return len(a.c.Members()) == 2 })
	host, p, _ := net.SplitHostPort(a.addr)
	port, _ := strconv.Atoi(p)
	target := &memberlist.Node{Name: a.c.LocalName(), Addr: net.ParseIP(host), Port: uint16(port)}
	forged := func(key string) []byte {
		return append([]byte{msgEntries}, revocation.AppendEntries(nil, []revocation.Entry{entry(key)})...)
	}
	wrongKey := sender(t, bytes.Repeat([]byte{7}, 32))
	noKey := sender(t, nil)
	raw := func(network string, b []byte) error {
		conn, err := net.Dial(network, a.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write(b)
		return err
	}
	// Garbage that starts like an HTTP request: not a label header, not an
	// encrypted message.
	garbage := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x8f\x13\xa2\x00\x01\xfe")
	tests := []struct {
		name string
		key  string // what the traffic would revoke if it were accepted
		send func(key string) error
	}{
		{"garbage over UDP", "", func(string) error { return raw("udp", garbage) }},
		{"garbage over TCP", "", func(string) error { return raw("tcp", garbage) }},
		{"wrong key over UDP", "forged-udp", func(k string) error { return wrongKey.SendBestEffort(target, forged(k)) }},
		{"wrong key over TCP", "forged-tcp", func(k string) error { return wrongKey.SendReliable(target, forged(k)) }},
		{"unencrypted over UDP", "plain-udp", func(k string) error { return noKey.SendBestEffort(target, forged(k)) }},
		{"unencrypted over TCP", "plain-tcp", func(k string) error { return noKey.SendReliable(target, forged(k)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.drops.Load()
			if err := tt.send(tt.key); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a counted drop", func() bool { return a.drops.Load() > before })
			if tt.key != "" && revoked(a, tt.key) {
				t.Errorf("%s was applied", tt.key)
			}
		})
	}
	// Positive controls: the same message, sent by a member holding the
	// key, applies; and genuine traffic is not counted as dropped.
	before := a.drops.Load()
	if err := b.c.ml.SendReliable(target, forged("genuine")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the genuine message", func() bool { return revoked(a, "genuine") })
	time.Sleep(200 * time.Millisecond) // gossip and probes run meanwhile
	if n := a.drops.Load(); n != before {
		t.Errorf("genuine traffic counted as %d drops", n-before)
	}
}

// sender is a bare memberlist, not joined to anyone, that sends with key
// (nil: unencrypted).
func sender(t *testing.T, key []byte) *memberlist.Memberlist {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	host, p, _ := net.SplitHostPort(freePort(t))
	mc.Name = "sender-" + p
	mc.BindAddr, mc.AdvertiseAddr = host, host
	mc.BindPort, _ = strconv.Atoi(p)
	mc.AdvertisePort = mc.BindPort
	mc.SecretKey = key
	mc.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Shutdown() })
	return ml
}

// The phrases counted are memberlist's: a line of each kind is counted,
// other warnings are not.
func TestRefusedLines(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:5", true},
		{"[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=127.0.0.1:5", true},
		{"[ERR] memberlist: discarding packet with unacceptable label \"x\": from=127.0.0.1:5", true},
		{"[ERR] memberlist: msg type (99) not supported from=127.0.0.1:5", true},
		{"[WARN] memberlist: handler queue full, dropping message (8) from=127.0.0.1:5", true},
		{"[ERR] memberlist: Push/Pull with b failed: dial tcp: connection refused", false},
		{"[WARN] memberlist: Refuting a suspect message (from: b)", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			n := 0
			w := logWriter{log: discard, limiter: &lineLimiter{}, onDrop: func() { n++ }}
			w.Write([]byte(tt.line + "\n"))
			if got := n == 1; got != tt.want {
				t.Errorf("counted = %v, want %v", got, tt.want)
			}
		})
	}
	// Counting comes before the rate limit: a flood is counted in full.
	n := 0
	w := logWriter{log: discard, limiter: &lineLimiter{}, onDrop: func() { n++ }}
	for range 3 * logBurst {
		w.Write([]byte(tests[0].line))
	}
	if n != 3*logBurst {
		t.Errorf("%d of %d drops counted past the log rate limit", n, 3*logBurst)
	}
}
