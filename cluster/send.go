package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/bff-project/bff/revocation"
)

// msgEntries tags a user message carrying entries (revocations or
// single-use values).
const msgEntries byte = 1

// Revoke records e locally, then sends it at once to every live member over
// TCP and queues it for gossip, so a member that misses the direct send
// still hears of it (and the next push/pull heals what both miss). An entry
// recorded in memory is sent even if the local list could not write it to
// disk: the error is still returned, but the logout holds everywhere.
func (c *Cluster) Revoke(e revocation.Entry) error {
	_, err := c.list.Add(e)
	if errors.Is(err, revocation.ErrInvalid) {
		return err
	}
	c.send(e)
	return err
}

// Use records key, a value that may be used once, until expiry, and
// reports whether this is its first use in the cluster as far as this
// member knows: the first use is sent to every live member and gossiped as
// Revoke does, so that a replay sent to any other member is refused there.
// What "first" means, and the error contract, are revocation.List.Use's:
// when err is not nil the value must be refused.
//
// A replay that reaches another member before the first use does (within
// the direct send's delay, typically a millisecond on a LAN) is not caught;
// values that must be used once are also bound to the browser that started
// them (state to its cookie, jti to the provider's signature), which this
// only backs up.
func (c *Cluster) Use(key string, expiry time.Time) (first bool, err error) {
	first, err = c.list.Use(key, expiry)
	if first {
		c.send(revocation.Entry{Kind: revocation.KindOnce, Key: key, Expiry: expiry})
	}
	return first, err
}

// send queues e for gossip and sends it directly to every other live member.
func (c *Cluster) send(e revocation.Entry) {
	msg := append([]byte{msgEntries}, revocation.AppendEntries(nil, []revocation.Entry{e})...)
	c.queue.QueueBroadcast(broadcast(msg))
	self := c.ml.LocalNode().Name
	for _, m := range c.ml.Members() {
		if m.Name == self {
			continue
		}
		go func(n *memberlist.Node) {
			if err := c.ml.SendReliable(n, msg); err != nil {
				c.log.Debug("direct send failed; gossip will carry it", "member", n.Name, "err", err)
			}
		}(m)
	}
}

// broadcast is a queued gossip message; entries never invalidate each other
// (they merge), so none replaces another.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}
