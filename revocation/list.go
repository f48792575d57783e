package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrFull means the list holds MaxEntries live entries; the revocation was
// not recorded. Callers must treat it as a failure to log out.
var ErrFull = errors.New("revocation: list is full")

// DefaultMaxEntries bounds the list so that a full-state sync between
// instances stays well under memberlist's 20 MiB push/pull limit (about 34
// bytes an entry on the wire with 22-character ids: 400k entries are ~14 MB)
// and the list's memory under ~35 MB (~86 bytes an entry).
const DefaultMaxEntries = 400_000

// Config configures a List. The zero value is a valid in-memory list.
type Config struct {
	// SnapshotFile, when set, is loaded at start and rewritten (atomically,
	// through a temporary file and rename) after every change.
	SnapshotFile string
	// MaxEntries bounds the live entries; zero means DefaultMaxEntries.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// List is a set of revoked session ids and subjects. It is safe for
// concurrent use; Revoked takes only a read lock.
type List struct {
	cfg  Config
	now  func() time.Time
	mu   sync.RWMutex
	ids  map[string]time.Time    // session id -> entry expiry
	idps map[string]time.Time    // provider session id (sid) -> entry expiry
	subs map[string]subjectEntry // subject -> sessions started before
	save sync.Mutex              // serializes snapshot writes
}

type subjectEntry struct {
	Before time.Time `json:"before"`
	Expiry time.Time `json:"expiry"`
}

type snapshot struct {
	Version  int                     `json:"version"`
	Sessions map[string]time.Time    `json:"sessions"`
	IdP      map[string]time.Time    `json:"idp_sessions"`
	Subjects map[string]subjectEntry `json:"subjects"`
}

// New returns a List, loaded from cfg.SnapshotFile when that exists. A
// snapshot that exists but cannot be read is an error: starting with an empty
// list would bring revoked sessions back to life.
func New(cfg Config) (*List, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	l := &List{cfg: cfg, now: cfg.Now, ids: map[string]time.Time{}, idps: map[string]time.Time{}, subs: map[string]subjectEntry{}}
	if l.now == nil {
		l.now = time.Now
	}
	if cfg.SnapshotFile == "" {
		return l, nil
	}
	b, err := os.ReadFile(cfg.SnapshotFile)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revocation: read snapshot: %w", err)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return nil, fmt.Errorf("revocation: snapshot %s is not a version 1 snapshot", cfg.SnapshotFile)
	}
	now := l.now()
	for id, exp := range s.Sessions {
		if exp.After(now) {
			l.ids[id] = exp
		}
	}
	for sid, exp := range s.IdP {
		if exp.After(now) {
			l.idps[sid] = exp
		}
	}
	for sub, e := range s.Subjects {
		if e.Expiry.After(now) {
			l.subs[sub] = e
		}
	}
	return l, nil
}

// Kind says what an Entry revokes.
type Kind uint8

const (
	KindSession    Kind = 1 // one BFF session, by its id
	KindIdPSession Kind = 2 // every session the provider's session (sid) signed in
	KindSubject    Kind = 3 // every session of a subject that started before Before
)

// maxKey bounds an entry's key (session id, sid or subject).
const maxKey = 512

// Entry is one revocation, as recorded and as replicated between instances.
type Entry struct {
	Kind   Kind
	Key    string
	Before time.Time // KindSubject only
	Expiry time.Time // when no session the entry could match can still be alive
}

func (e Entry) validate() error {
	switch {
	case e.Kind != KindSession && e.Kind != KindIdPSession && e.Kind != KindSubject:
		return fmt.Errorf("revocation: unknown entry kind %d", e.Kind)
	case e.Key == "" || len(e.Key) > maxKey:
		return errors.New("revocation: entry key empty or too long")
	case e.Kind == KindSubject && e.Before.IsZero():
		return errors.New("revocation: subject entry without a start bound")
	}
	return nil
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
// up equal.
func (l *List) Add(e Entry) (bool, error) {
	n, err := l.Merge([]Entry{e})
	return n > 0, err
}

// Merge adds entries (from a peer's full state) and returns how many changed
// the list, writing the snapshot once. An invalid entry is an error and
// nothing is merged; when the list fills up, what fit is kept and ErrFull
// returned.
func (l *List) Merge(entries []Entry) (int, error) {
	for _, e := range entries {
		if err := e.validate(); err != nil {
			return 0, err
		}
	}
	l.mu.Lock()
	now := l.now()
	changed := 0
	var err error
	for _, e := range entries {
		if !e.Expiry.After(now) {
			continue
		}
		c, ok := l.addLocked(e, now)
		if !ok {
			err = ErrFull
			break
		}
		if c {
			changed++
		}
	}
	l.mu.Unlock()
	if changed > 0 {
		if perr := l.persist(); perr != nil {
			return changed, perr
		}
	}
	return changed, err
}

// addLocked adds e; ok is false when the list is full.
func (l *List) addLocked(e Entry, now time.Time) (changed, ok bool) {
	if e.Kind == KindSubject {
		old, had := l.subs[e.Key]
		if !had && l.fullLocked(now) {
			return false, false
		}
		merged := old
		if !had || e.Before.After(old.Before) {
			merged.Before = e.Before
		}
		if !had || e.Expiry.After(old.Expiry) {
			merged.Expiry = e.Expiry
		}
		if had && merged == old {
			return false, true
		}
		l.subs[e.Key] = merged
		return true, true
	}
	m := l.ids
	if e.Kind == KindIdPSession {
		m = l.idps
	}
	old, had := m[e.Key]
	if !had && l.fullLocked(now) {
		return false, false
	}
	if had && !e.Expiry.After(old) {
		return false, true
	}
	m[e.Key] = e.Expiry
	return true, true
}

// Entries returns the live entries (for a peer's full-state sync).
func (l *List) Entries() []Entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	now := l.now()
	out := make([]Entry, 0, len(l.ids)+len(l.idps)+len(l.subs))
	for k, exp := range l.ids {
		if exp.After(now) {
			out = append(out, Entry{Kind: KindSession, Key: k, Expiry: exp})
		}
	}
	for k, exp := range l.idps {
		if exp.After(now) {
			out = append(out, Entry{Kind: KindIdPSession, Key: k, Expiry: exp})
		}
	}
	for k, e := range l.subs {
		if e.Expiry.After(now) {
			out = append(out, Entry{Kind: KindSubject, Key: k, Before: e.Before, Expiry: e.Expiry})
		}
	}
	return out
}

// Revoked reports whether the session id, signed in by the provider's
// session idpSession (may be empty) for subject sub at start, is revoked.
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
	if e, ok := l.subs[sub]; ok && start.Before(e.Before) {
		return true
	}
	return false
}

// Len is the number of entries, expired ones not yet swept included.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.ids) + len(l.idps) + len(l.subs)
}

// fullLocked sweeps expired entries when the list looks full and reports
// whether it still is. Sweeping only when needed keeps writes O(1) amortized.
func (l *List) fullLocked(now time.Time) bool {
	if len(l.ids)+len(l.idps)+len(l.subs) < l.cfg.MaxEntries {
		return false
	}
	l.sweepLocked(now)
	return len(l.ids)+len(l.idps)+len(l.subs) >= l.cfg.MaxEntries
}

func (l *List) sweepLocked(now time.Time) {
	for _, m := range []map[string]time.Time{l.ids, l.idps} {
		for id, exp := range m {
			if !exp.After(now) {
				delete(m, id)
			}
		}
	}
	for sub, e := range l.subs {
		if !e.Expiry.After(now) {
			delete(l.subs, sub)
		}
	}
}

// Sweep drops expired entries (and rewrites the snapshot).
func (l *List) Sweep() error {
	l.mu.Lock()
	l.sweepLocked(l.now())
	l.mu.Unlock()
	return l.persist()
}

// persist writes the snapshot, if configured, through a temporary file and an
// atomic rename, so a crash leaves either the old or the new snapshot.
func (l *List) persist() error {
	if l.cfg.SnapshotFile == "" {
		return nil
	}
	l.save.Lock()
	defer l.save.Unlock()
	l.mu.RLock()
	s := snapshot{Version: 1, Sessions: maps.Clone(l.ids), IdP: maps.Clone(l.idps), Subjects: make(map[string]subjectEntry, len(l.subs))}
	for k, v := range l.subs {
		s.Subjects[k] = v
	}
	l.mu.RUnlock()
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("revocation: encode snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.cfg.SnapshotFile), ".revoked-*")
	if err != nil {
		return fmt.Errorf("revocation: write snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("revocation: write snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("revocation: write snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("revocation: write snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.cfg.SnapshotFile); err != nil {
		return fmt.Errorf("revocation: write snapshot: %w", err)
	}
	return nil
}
