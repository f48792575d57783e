package cluster

import (
	"cmp"
	"slices"

	"github.com/bff-project/bff/revocation"
)

// maxState bounds the full state a member sends in a push/pull: memberlist
// refuses a user state over 20 MiB, and the node list rides in the same
// message.
const maxState = 18 << 20

// delegate is the memberlist side of Cluster.
type delegate Cluster

func (d *delegate) NodeMeta(limit int) []byte { return d.cfg.Meta }

// NotifyMsg receives an entry sent directly or gossiped. Each is a fresh
// record from a peer's Revoke or Use, added as a local one is: kept even by
// a full list, which evicts what expires first instead.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 1 || b[0] != msgEntries {
		d.drop("unknown message type")
		return
	}
	entries, err := revocation.DecodeEntries(b[1:])
	if err != nil {
		d.drop("message: " + err.Error())
		return
	}
	added := 0
	for _, e := range entries {
		changed, err := d.list.Add(e)
		if err != nil {
			d.log.Error("cluster: entry not fully recorded", "via", "message", "err", err)
		}
		if changed {
			added++
		}
	}
	d.received(added, "message")
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState is this member's full list, for a push/pull.
func (d *delegate) LocalState(join bool) []byte {
	return encodeState(d.list.Entries(), maxState)
}

// encodeState encodes entries in at most limit bytes. Over the limit it
// keeps every revocation it can, then the single-use values that expire
// last: those are replicated when used, the full state only heals a member
// that missed them.
func encodeState(entries []revocation.Entry, limit int) []byte {
	if b := revocation.AppendEntries(nil, entries); len(b) <= limit {
		return b
	}
	slices.SortFunc(entries, func(a, b revocation.Entry) int {
		if ao, bo := a.Kind == revocation.KindOnce, b.Kind == revocation.KindOnce; ao != bo {
			if ao {
				return 1
			}
			return -1
		}
		return cmp.Compare(b.Expiry.UnixNano(), a.Expiry.UnixNano())
	})
	b, _ := revocation.AppendEntriesLimit(nil, entries, limit)
	return b
}

// MergeRemoteState merges a peer's full list.
func (d *delegate) MergeRemoteState(b []byte, join bool) {
	entries, err := revocation.DecodeEntries(b)
	if err != nil {
		d.drop("sync: " + err.Error())
		return
	}
	n, err := d.list.Merge(entries)
	if err != nil {
		d.log.Error("cluster: entries not fully merged", "via", "sync", "err", err)
	}
	d.received(n, "sync")
}

func (d *delegate) received(n int, via string) {
	if n > 0 {
		d.log.Debug("cluster: entries merged", "via", via, "added", n)
	}
	if d.cfg.OnReceive != nil {
		d.cfg.OnReceive(n)
	}
}

func (d *delegate) drop(why string) {
	d.log.Warn("cluster: dropped a malformed message", "why", why)
	if d.cfg.OnDrop != nil {
		d.cfg.OnDrop()
	}
}
