package revocation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
)

// The list's file is an append-only log, so that a change costs one small
// append and one sync, whatever the size of the list:
//
//	magic   8 bytes, logMagic
//	record  [0:4]  payload length, little-endian uint32
//	        [4:8]  CRC-32C of bytes [0:4]
//	        [8:12] CRC-32C of the payload
//	        [12:]  payload: a batch of entries in the replication codec
//	record  ...
//
// Loading replays the records in order, exactly as the changes were made.
// A crash can only cut short the last append: a damaged record that no
// intact record follows is that torn tail, and is ignored; a damaged record
// followed by an intact one is corruption, and an error. When the log holds
// more than twice as many entries as the list (updates, evictions,
// expiries), it is compacted: a fresh snapshot of the live entries is
// written to a temporary file that replaces the log by rename. That costs
// O(n), after at least n appends.
var logMagic = []byte("BFFREV\x00\x02")

const (
	recordHeader     = 12
	maxRecordEntries = 4096    // entries per record
	maxRecordLen     = 8 << 20 // > maxRecordEntries entries of the longest key
	compactMin       = 8192    // entries in the log below which it is never compacted
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errClosed = errors.New("revocation: list closed")

// journal is a List's log file. Changes are queued under the List's lock,
// in the order they were made, then written by whichever caller takes the
// writer lock first, together with every change queued by then (group
// commit): concurrent changes share one append and one sync.
type journal struct {
	path string

	mu      sync.Mutex // guards pending and queued; taken under List.mu
	pending []Entry    // changes not yet written
	queued  uint64     // sequence number of the last queued change

	wmu     sync.Mutex // one writer at a time; guards the fields below
	f       *os.File   // the log, open for appending
	size    int64      // bytes of intact log in f
	done    uint64     // every change queued up to done is on disk
	logged  int        // entries in the log
	retryAt int        // no compaction before logged reaches this (after a failed one)
	broken  bool       // an append failed: f may end in a partial record
	closed  bool
}

// logLocked queues changed (called with l.mu held, so in the order of the
// changes) and returns the sequence number commit must see written.
func (l *List) logLocked(changed []Entry) uint64 {
	if l.j == nil {
		return 0
	}
	j := l.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(changed) > 0 {
		j.pending = append(j.pending, changed...)
		j.queued++
	}
	return j.queued
}

// commit returns once every change queued up to seq is on disk, writing it
// (and whatever else is queued) if no one else has.
func (l *List) commit(seq uint64) error {
	j := l.j
	if j == nil {
		return nil
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	switch {
	case j.closed:
		return errClosed
	case j.done >= seq:
		return nil
	case j.broken:
		// Cut the partial record a failed append may have left, so the next
		// record does not follow garbage (which would read as corruption).
		if err := j.f.Truncate(j.size); err != nil {
			return fmt.Errorf("revocation: repair %s: %w", j.path, err)
		}
		j.broken = false
	}
	j.mu.Lock()
	batch, upto := j.pending, j.queued
	j.pending = nil
	j.mu.Unlock()
	buf := appendRecords(nil, batch)
	if _, err := j.f.Write(buf); err != nil {
		return j.failed(batch, err)
	}
	if err := syncFile(j.f); err != nil {
		return j.failed(batch, err)
	}
	j.size += int64(len(buf))
	j.logged += len(batch)
	j.done = upto
	if l.compactDue() {
		// The changes are on disk: a failed compaction is retried later
		// (and reported by Sweep), not reported to this caller.
		_ = l.compactLocked()
	}
	return nil
}

// failed puts batch back in front of the queue, to be written again after
// the file is repaired, and reports err.
func (j *journal) failed(batch []Entry, err error) error {
	j.broken = true
	j.mu.Lock()
	j.pending = append(batch, j.pending...)
	j.mu.Unlock()
	return fmt.Errorf("revocation: append to %s: %w", j.path, err)
}

// compactDue reports whether the log holds more than twice the live
// entries. Called with j.wmu held.
func (l *List) compactDue() bool {
	j := l.j
	l.mu.RLock()
	live := len(l.ids) + len(l.idps) + len(l.subs) + len(l.once)
	l.mu.RUnlock()
	return j.logged > 2*live && j.logged > compactMin && j.logged >= j.retryAt
}

// compactIfDue compacts the log if it is due.
func (l *List) compactIfDue() error {
	j := l.j
	if j == nil {
		return nil
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.closed || !l.compactDue() && !j.broken {
		return nil
	}
	return l.compactLocked()
}

// compactLocked replaces the log with a snapshot of the live entries.
// Called with j.wmu held.
func (l *List) compactLocked() error {
	j := l.j
	l.mu.RLock()
	entries := l.entriesLocked(l.now().UnixNano())
	j.mu.Lock()
	covered, upto := len(j.pending), j.queued // queued so far: in entries
	j.mu.Unlock()
	l.mu.RUnlock()

	f, size, err := writeSnapshot(j.path, entries)
	if err != nil {
		j.retryAt = j.logged + max(len(entries), compactMin)
		return err
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size, j.logged, j.done, j.broken, j.retryAt = f, size, len(entries), upto, false, 0
	j.mu.Lock()
	j.pending = append([]Entry(nil), j.pending[covered:]...)
	j.mu.Unlock()
	return nil
}

// writeSnapshot writes entries as a fresh log through a temporary file and
// an atomic rename, so a crash leaves either the old log or the new one,
// and returns the new log open for appending.
func writeSnapshot(path string, entries []Entry) (*os.File, int64, error) {
	buf := appendRecords(bytes.Clone(logMagic), entries)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".revoked-*")
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: write snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(buf)
	if err == nil {
		err = syncFile(tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: write snapshot: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: open %s: %w", path, err)
	}
	return f, int64(len(buf)), nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncFile(d)
}

// appendRecords appends entries to b as records of at most
// maxRecordEntries entries each.
func appendRecords(b []byte, entries []Entry) []byte {
	for len(entries) > 0 {
		n := min(len(entries), maxRecordEntries)
		start := len(b)
		b = append(b, make([]byte, recordHeader)...)
		b = AppendEntries(b, entries[:n])
		h, p := b[start:start+recordHeader], b[start+recordHeader:]
		binary.LittleEndian.PutUint32(h[0:4], uint32(len(p)))
		binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(h[0:4], castagnoli))
		binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(p, castagnoli))
		entries = entries[n:]
	}
	return b
}

// recordAt returns the length and payload of the intact record at b[off:],
// or 0 when there is none.
func recordAt(b []byte, off int) (int, []byte) {
	if len(b)-off < recordHeader {
		return 0, nil
	}
	h := b[off : off+recordHeader]
	if crc32.Checksum(h[0:4], castagnoli) != binary.LittleEndian.Uint32(h[4:8]) {
		return 0, nil
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > maxRecordLen || int(n) > len(b)-off-recordHeader {
		return 0, nil
	}
	p := b[off+recordHeader : off+recordHeader+int(n)]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[8:12]) {
		return 0, nil
	}
	return recordHeader + int(n), p
}

// replay calls apply with each record's entries, ignoring a torn tail.
func replay(b []byte, apply func([]Entry)) error {
	for off := len(logMagic); off < len(b); {
		n, p := recordAt(b, off)
		if n == 0 {
			for q := off + 1; q+recordHeader <= len(b); q++ {
				if m, _ := recordAt(b, q); m > 0 {
					return fmt.Errorf("revocation: damaged record at offset %d before intact ones", off)
				}
			}
			return nil // the last append, cut short by a crash
		}
		entries, err := DecodeEntries(p)
		if err != nil {
			return fmt.Errorf("revocation: record at offset %d: %w", off, err)
		}
		apply(entries)
		off += n
	}
	return nil
}

// open loads the file, then rewrites it as a fresh snapshot: that drops
// expired entries and a torn tail, upgrades a version 1 snapshot, and
// creates the file if there was none (so a missing directory or a
// read-only file stops start-up, not the first logout).
func (l *List) open() error {
	path := l.cfg.SnapshotFile
	now := l.now().UnixNano()
	apply := func(entries []Entry) {
		for _, e := range entries {
			if e.Expiry.UnixNano() > now {
				l.insertLocked(e, now, true, false)
			}
		}
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("revocation: read %s: %w", path, err)
	case bytes.HasPrefix(b, logMagic):
		if err := replay(b, apply); err != nil {
			return fmt.Errorf("%w (in %s)", err, path)
		}
	default:
		entries, err := decodeV1(b)
		if err != nil {
			return fmt.Errorf("revocation: %s is neither a revocation log nor a version 1 snapshot: %w", path, err)
		}
		apply(entries)
	}
	l.j = &journal{path: path}
	l.j.wmu.Lock()
	defer l.j.wmu.Unlock()
	return l.compactLocked()
}

// Close closes the list's file. Later changes still apply in memory, and
// report an error. Close of an in-memory list does nothing.
func (l *List) Close() error {
	j := l.j
	if j == nil {
		return nil
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	return j.f.Close()
}

// syncFile is (*os.File).Sync, which makes a file's content, or a
// directory's entries, durable. A test replaces it to see what is synced and
// in what order, and to make a sync fail: no other test can tell a missing
// sync, whose cost is only felt in a crash.
var syncFile = (*os.File).Sync
