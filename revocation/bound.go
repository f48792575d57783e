package revocation

import "time"

// A bounded list must never refuse a new entry when full: that would let
// anyone who can create entries in a loop (sign-in states, logouts of their
// own sessions) stop every logout or sign-in. When a class of entries is
// full, the list evicts the entry of that class that expires first: it is
// the least harmful to lose, being closest to dying anyway.
//
// Finding that entry is O(log n): each class keeps a min-heap of (expiry,
// key) with lazy deletion. An entry is in its heap once with its current
// expiry; when its expiry grows a new item is pushed and the old one goes
// stale, recognized (its expiry no longer matches the map) and dropped when
// it reaches the top. Stale items are bounded: the heap is rebuilt when they
// outnumber the live entries, O(n) after at least n updates.

// class is one separately bounded group of entries: the revocations
// (session, provider session and subject entries together) or the
// single-use values. A flood of one never evicts the other.
type class struct {
	q       expiryHeap
	max     int
	evicted uint64 // live entries evicted to make room, since New
}

// item is an entry's place in its class's eviction order.
type item struct {
	exp  int64 // Unix nanoseconds
	key  string
	kind Kind
}

// expiryHeap is a min-heap of items by expiry.
type expiryHeap []item

func (h *expiryHeap) push(it item) {
	*h = append(*h, it)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].exp <= q[i].exp {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *expiryHeap) pop() {
	q := *h
	n := len(q) - 1
	q[0] = q[n]
	q[n] = item{} // release the key
	*h = q[:n]
	h.down(0)
}

func (h expiryHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].exp < h[l].exp {
			m = r
		}
		if h[i].exp <= h[m].exp {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// classOf returns the class that bounds entries of kind k and how many
// entries it holds.
func (l *List) classOf(k Kind) (*class, int) {
	if k == KindOnce {
		return &l.onceC, len(l.once)
	}
	return &l.revC, len(l.ids) + len(l.idps) + len(l.subs)
}

// expiryOf returns the held expiry of (k, key).
func (l *List) expiryOf(k Kind, key string) (int64, bool) {
	switch k {
	case KindSession:
		exp, ok := l.ids[key]
		return exp, ok
	case KindIdPSession:
		exp, ok := l.idps[key]
		return exp, ok
	case KindSubject:
		s, ok := l.subs[key]
		return s.expiry, ok
	default:
		exp, ok := l.once[key]
		return exp, ok
	}
}

func (l *List) deleteLocked(k Kind, key string) {
	switch k {
	case KindSession:
		delete(l.ids, key)
	case KindIdPSession:
		delete(l.idps, key)
	case KindSubject:
		delete(l.subs, key)
	default:
		delete(l.once, key)
	}
}

// topLocked drops stale items and expired entries from the top of c's heap
// and returns the live entry that expires first, if any.
func (l *List) topLocked(c *class, now int64) (item, bool) {
	for len(c.q) > 0 {
		top := c.q[0]
		exp, ok := l.expiryOf(top.kind, top.key)
		switch {
		case !ok || exp != top.exp: // stale
		case top.exp <= now:
			l.deleteLocked(top.kind, top.key)
		default:
			return top, true
		}
		c.q.pop()
	}
	return item{}, false
}

// insertLocked records e, which is valid and live at now, and returns the
// entry as now held (a subject entry merges with the one held) and whether
// the list changed. When e's class is full, keepNew (a local Add or Use, or
// a replayed change) makes room by evicting the held entry that expires
// first; otherwise (a peer's full state) e is taken only if it expires
// after that entry, so that replicas keep the same, latest-expiring entries
// and a sync does not churn. count says whether evictions are counted (not
// when replaying the log at start).
func (l *List) insertLocked(e Entry, now int64, keepNew, count bool) (Entry, bool) {
	exp := e.Expiry.UnixNano()
	c, size := l.classOf(e.Kind)
	held, had := l.expiryOf(e.Kind, e.Key)
	if had && held > now {
		return l.updateLocked(c, e, exp, held)
	}
	if !had && size >= c.max {
		top, ok := l.topLocked(c, now) // drops expired entries first
		if _, size = l.classOf(e.Kind); ok && size >= c.max {
			if !keepNew && exp <= top.exp {
				return Entry{}, false
			}
			l.deleteLocked(top.kind, top.key)
			c.q.pop()
			if count {
				c.evicted++
			}
		}
	}
	switch e.Kind {
	case KindSession:
		l.ids[e.Key] = exp
	case KindIdPSession:
		l.idps[e.Key] = exp
	case KindSubject:
		l.subs[e.Key] = subjectEntry{before: e.Before.UnixNano(), expiry: exp}
	default:
		l.once[e.Key] = exp
	}
	l.pushLocked(c, item{exp: exp, key: e.Key, kind: e.Kind})
	return e, true
}

// updateLocked merges e into the live entry held for its key, which expires
// at held: the later expiry wins, and for a subject the later start bound.
func (l *List) updateLocked(c *class, e Entry, exp, held int64) (Entry, bool) {
	if e.Kind == KindSubject {
		old := l.subs[e.Key]
		merged := subjectEntry{before: max(old.before, e.Before.UnixNano()), expiry: max(old.expiry, exp)}
		if merged == old {
			return Entry{}, false
		}
		l.subs[e.Key] = merged
		if merged.expiry != old.expiry {
			l.pushLocked(c, item{exp: merged.expiry, key: e.Key, kind: e.Kind})
		}
		return Entry{Kind: KindSubject, Key: e.Key, Before: time.Unix(0, merged.before), Expiry: time.Unix(0, merged.expiry)}, true
	}
	if exp <= held {
		return Entry{}, false
	}
	switch e.Kind {
	case KindSession:
		l.ids[e.Key] = exp
	case KindIdPSession:
		l.idps[e.Key] = exp
	default:
		l.once[e.Key] = exp
	}
	l.pushLocked(c, item{exp: exp, key: e.Key, kind: e.Kind})
	return e, true
}

// pushLocked adds it to c's heap, rebuilding the heap when stale items
// outnumber the live entries.
func (l *List) pushLocked(c *class, it item) {
	c.q.push(it)
	if _, size := l.classOf(it.kind); len(c.q) > 2*size+1024 {
		l.rebuildLocked(c, it.kind)
	}
}

// rebuildLocked rebuilds c's heap (the class of kind k) from the maps: one
// item per entry, O(n).
func (l *List) rebuildLocked(c *class, k Kind) {
	_, size := l.classOf(k)
	q := make(expiryHeap, 0, size)
	if k == KindOnce {
		for key, exp := range l.once {
			q = append(q, item{exp: exp, key: key, kind: KindOnce})
		}
	} else {
		for key, exp := range l.ids {
			q = append(q, item{exp: exp, key: key, kind: KindSession})
		}
		for key, exp := range l.idps {
			q = append(q, item{exp: exp, key: key, kind: KindIdPSession})
		}
		for key, s := range l.subs {
			q = append(q, item{exp: s.expiry, key: key, kind: KindSubject})
		}
	}
	for i := len(q)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
	c.q = q
}

// sweepLocked drops every expired entry: they are all at the top of their
// heaps, so this costs O(log n) per entry dropped.
func (l *List) sweepLocked(now int64) {
	l.topLocked(&l.revC, now)
	l.topLocked(&l.onceC, now)
}
