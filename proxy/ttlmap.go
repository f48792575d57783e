package proxy

import "time"

// ttlMap is a map whose entries expire ttl after they were put, holding at
// most max entries: put makes room by evicting the oldest entries, expired
// ones first (being the oldest), and never refuses or grows past max. Keys
// are queued in insertion order, which is expiry order since every entry
// lives equally long, so what to evict is always at the front: every
// operation is O(1) amortized, with no scan under a flood.
//
// It is not safe for concurrent use: its owner holds a lock.
type ttlMap[K comparable, V any] struct {
	ttl   time.Duration
	max   int
	m     map[K]ttlEntry[V]
	order queue[ttlRef[K]] // oldest first; a ref whose seq differs from its entry's is stale
	seq   uint64
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
	seq     uint64
}

type ttlRef[K comparable] struct {
	k   K
	seq uint64
}

func newTTLMap[K comparable, V any](ttl time.Duration, limit int) *ttlMap[K, V] {
	return &ttlMap[K, V]{ttl: ttl, max: limit, m: map[K]ttlEntry[V]{}}
}

// get returns the value of k unless it is absent or expired at now.
func (t *ttlMap[K, V]) get(k K, now time.Time) (V, bool) {
	e, ok := t.m[k]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put sets k to v, expiring ttl after now, evicting what must go first.
func (t *ttlMap[K, V]) put(k K, v V, now time.Time) {
	for t.order.len() > 0 {
		ref := t.order.front()
		e, ok := t.m[ref.k]
		live := ok && e.seq == ref.seq
		if live && now.Before(e.expires) && len(t.m) < t.max && t.order.len() < 2*t.max {
			break
		}
		t.order.pop()
		if live {
			delete(t.m, ref.k)
		}
	}
	t.seq++
	t.m[k] = ttlEntry[V]{v: v, expires: now.Add(t.ttl), seq: t.seq}
	t.order.push(ttlRef[K]{k: k, seq: t.seq})
}

func (t *ttlMap[K, V]) len() int { return len(t.m) }

// queue is a first-in, first-out queue on a ring buffer that grows by
// doubling: push and pop are O(1) amortized.
type queue[T any] struct {
	buf  []T
	head int // index of the front in buf
	n    int
}

func (q *queue[T]) len() int { return q.n }

func (q *queue[T]) push(v T) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}

// front returns the oldest element; the queue must not be empty.
func (q *queue[T]) front() T { return q.buf[q.head] }

// pop removes the oldest element; the queue must not be empty.
func (q *queue[T]) pop() {
	var zero T
	q.buf[q.head] = zero // drop what it references, for the collector
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

func (q *queue[T]) grow() {
	buf := make([]T, max(16, 2*len(q.buf)))
	k := copy(buf, q.buf[q.head:])
	copy(buf[k:], q.buf[:q.head])
	q.buf, q.head = buf, 0
}
