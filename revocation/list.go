package revocation

import (
	"sync"
	"time"
)

// DefaultMaxEntries bounds the revocations (session, provider session and
// subject entries together) so that a full-state sync between instances
// stays under memberlist's 20 MiB push/pull limit (about 34 bytes an entry
// on the wire with 22-character ids: 400k entries are ~14 MB; the cluster
// fills what remains with the latest single-use values) and their memory
// under ~40 MB (~95 bytes an entry).
const DefaultMaxEntries = 400_000

// DefaultMaxOnce bounds the single-use values (KindOnce), apart from the
// revocations.
const DefaultMaxOnce = 200_000

// Config configures a List. The zero value is a valid in-memory list.
type Config struct {
	// SnapshotFile, when set, persists the list: an append-only log that
	// every change is appended to (and synced) before it is reported done,
	// compacted into a fresh snapshot (through a temporary file and rename)
	// when it has grown to twice the live entries. A version 1 JSON snapshot
	// found there is loaded and upgraded in place.
	SnapshotFile string
	// MaxEntries bounds the live revocations; zero means DefaultMaxEntries.
	MaxEntries int
	// MaxOnce bounds the live single-use values; zero means DefaultMaxOnce.
	MaxOnce int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// List is a set of revoked session ids and subjects, and of values used
// once. It is safe for concurrent use; Revoked takes only a read lock.
//
// Each of the two classes of entries (revocations, single-use values) is
// bounded on its own; a full class evicts its entries that expire first and
// never refuses a new one. So a flood of single-use values (anyone can start
// sign-ins) never evicts a revocation.
type List struct {
	cfg   Config
	now   func() time.Time
	mu    sync.RWMutex
	ids   map[string]int64        // session id -> entry expiry (Unix ns)
	idps  map[string]int64        // provider session id (sid) -> entry expiry
	subs  map[string]subjectEntry // subject -> sessions started before
	once  map[string]int64        // single-use key -> entry expiry
	revC  class                   // eviction order and bound of ids, idps, subs
	onceC class                   // eviction order and bound of once
	j     *journal                // nil without SnapshotFile
}

// subjectEntry holds Unix nanoseconds.
type subjectEntry struct {
	before, expiry int64
}

// New returns a List, loaded from cfg.SnapshotFile when that exists. A file
// that exists but cannot be read, or is damaged anywhere but in its last
// append (a write cut short by a crash, which is ignored), is an error:
// starting with an empty list would bring revoked sessions back to life.
func New(cfg Config) (*List, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxOnce <= 0 {
		cfg.MaxOnce = DefaultMaxOnce
	}
	l := &List{
		cfg: cfg, now: cfg.Now,
		ids: map[string]int64{}, idps: map[string]int64{}, subs: map[string]subjectEntry{}, once: map[string]int64{},
		revC: class{max: cfg.MaxEntries}, onceC: class{max: cfg.MaxOnce},
	}
	if l.now == nil {
		l.now = time.Now
	}
	if cfg.SnapshotFile != "" {
		if err := l.open(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// RevokeSession revokes session id until expiry (the session's own absolute
// expiry: after it, the cookie is refused anyway).
func (l *List) RevokeSession(id string, expiry time.Time) error {
	_, err := l.Add(Entry{Kind: KindSession, Key: id, Expiry: expiry})
	return err
}

// RevokeIdPSession revokes every session that the provider's session sid
// signed in (back-channel logout), until expiry (now plus the longest
// session lifetime).
func (l *List) RevokeIdPSession(sid string, expiry time.Time) error {
	_, err := l.Add(Entry{Kind: KindIdPSession, Key: sid, Expiry: expiry})
	return err
}

// RevokeSubject revokes every session of sub that started before before,
// keeping the entry until expiry (before plus the longest session lifetime).
func (l *List) RevokeSubject(sub string, before, expiry time.Time) error {
	_, err := l.Add(Entry{Kind: KindSubject, Key: sub, Before: before, Expiry: expiry})
	return err
}

// Add records e and reports whether the list changed (an entry that is
// already known, or already expired, changes nothing). Adding is idempotent
// and commutative: replicas that receive the same entries in any order end
// up equal. A full list makes room by evicting the entry of e's class that
// expires first; e itself is always kept. Add returns once the change is on
// disk; an error then means it is in memory (it counts) but may not survive
// a restart.
func (l *List) Add(e Entry) (bool, error) {
	if err := e.validate(); err != nil {
		return false, err
	}
	l.mu.Lock()
	now := l.now().UnixNano()
	var changed []Entry
	if e.Expiry.UnixNano() > now {
		if merged, ok := l.insertLocked(e, now, true, true); ok {
			changed = append(changed, merged)
		}
	}
	seq := l.logLocked(changed)
	l.mu.Unlock()
	return len(changed) > 0, l.commit(seq)
}

// Merge adds entries (from a peer's full state) and returns how many changed
// the list, appending them to the log once. An invalid entry is an error and
// nothing is merged. Where a class is full, an entry is taken only if it
// expires after the held entry that expires first, which it then evicts: so
// full replicas converge on the same latest-expiring entries.
func (l *List) Merge(entries []Entry) (int, error) {
	for _, e := range entries {
		if err := e.validate(); err != nil {
			return 0, err
		}
	}
	l.mu.Lock()
	now := l.now().UnixNano()
	var changed []Entry
	for _, e := range entries {
		if e.Expiry.UnixNano() <= now {
			continue
		}
		if merged, ok := l.insertLocked(e, now, false, true); ok {
			changed = append(changed, merged)
		}
	}
	seq := l.logLocked(changed)
	l.mu.Unlock()
	return len(changed), l.commit(seq)
}

// Entries returns the live entries, revocations first, then single-use
// values (for a peer's full-state sync).
func (l *List) Entries() []Entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entriesLocked(l.now().UnixNano())
}

func (l *List) entriesLocked(now int64) []Entry {
	out := make([]Entry, 0, len(l.ids)+len(l.idps)+len(l.subs)+len(l.once))
	for k, exp := range l.ids {
		if exp > now {
			out = append(out, Entry{Kind: KindSession, Key: k, Expiry: time.Unix(0, exp)})
		}
	}
	for k, exp := range l.idps {
		if exp > now {
			out = append(out, Entry{Kind: KindIdPSession, Key: k, Expiry: time.Unix(0, exp)})
		}
	}
	for k, e := range l.subs {
		if e.expiry > now {
			out = append(out, Entry{Kind: KindSubject, Key: k, Before: time.Unix(0, e.before), Expiry: time.Unix(0, e.expiry)})
		}
	}
	for k, exp := range l.once {
		if exp > now {
			out = append(out, Entry{Kind: KindOnce, Key: k, Expiry: time.Unix(0, exp)})
		}
	}
	return out
}

// Revoked reports whether the session id, signed in by the provider's
// session idpSession (may be empty) for subject sub at start, is revoked.
// Single-use values are never consulted.
func (l *List) Revoked(id, idpSession, sub string, start time.Time) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if _, ok := l.ids[id]; ok {
		return true
	}
	if idpSession != "" {
		if _, ok := l.idps[idpSession]; ok {
			return true
		}
	}
	if e, ok := l.subs[sub]; ok && start.Before(time.Unix(0, e.before)) {
		return true
	}
	return false
}

// Len is the number of revocations (single-use values not included),
// expired ones not yet swept included.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.ids) + len(l.idps) + len(l.subs)
}

// Evicted reports how many live entries were evicted to make room since
// New: revocations, and single-use values. A growing first count means
// logouts are being forgotten before they expire: raise MaxEntries.
func (l *List) Evicted() (revocations, once uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.revC.evicted, l.onceC.evicted
}

// Sweep drops expired entries, and compacts the log when it has grown to
// twice the live entries.
func (l *List) Sweep() error {
	l.mu.Lock()
	l.sweepLocked(l.now().UnixNano())
	l.mu.Unlock()
	return l.compactIfDue()
}
