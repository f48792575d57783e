package revocation

import "time"

// Use records key, a value that may be used once, until expiry (when the
// value could no longer be accepted anyway), and reports whether this is
// its first use: false when an unexpired entry for key is held, whether it
// was recorded here or replicated from another instance. Checking and
// recording are one atomic step: of concurrent calls with one key, exactly
// one is first.
//
// A value whose expiry has passed is never a first use. Single-use values
// are bounded by Config.MaxOnce apart from the revocations: when full, the
// value that expires first is evicted, never a revocation and never key.
//
// Like Add, Use returns once the entry is on disk. When err is not nil the
// caller must refuse the value; first then says whether key was recorded in
// memory (so that it is still refused here, and may still be replicated).
func (l *List) Use(key string, expiry time.Time) (first bool, err error) {
	e := Entry{Kind: KindOnce, Key: key, Expiry: expiry}
	if err := e.validate(); err != nil {
		return false, err
	}
	l.mu.Lock()
	now := l.now().UnixNano()
	exp := expiry.UnixNano()
	if held, ok := l.once[key]; exp <= now || ok && held > now {
		l.mu.Unlock()
		return false, nil
	}
	merged, _ := l.insertLocked(e, now, true, true)
	seq := l.logLocked([]Entry{merged})
	l.mu.Unlock()
	return true, l.commit(seq)
}

// OnceLen is the number of single-use values held, expired ones not yet
// swept included.
func (l *List) OnceLen() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.once)
}
