package revocation

import (
	"encoding/binary"
	"errors"
	"time"
)

// codecVersion is the first byte of every encoded batch.
const codecVersion = 1

// maxBatch bounds how many entries one decoded batch may hold.
const maxBatch = 1 << 21

// ErrMalformed means an encoded batch is not one this package wrote.
var ErrMalformed = errors.New("revocation: malformed entries")

// AppendEntries appends the binary encoding of entries to b: a version byte,
// a count, then per entry its kind, key, start bound and expiry (Unix
// nanoseconds, zig-zag varints). It is how instances replicate the list,
// and what the list's log holds.
func AppendEntries(b []byte, entries []Entry) []byte {
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = append(b, byte(e.Kind))
		b = binary.AppendUvarint(b, uint64(len(e.Key)))
		b = append(b, e.Key...)
		b = binary.AppendVarint(b, before(e))
		b = binary.AppendVarint(b, e.Expiry.UnixNano())
	}
	return b
}

// AppendEntriesLimit is AppendEntries of the longest prefix of entries
// whose encoding fits in limit bytes; it returns how many entries that is.
// It lets a sender stay under a transport's size limit, keeping the
// entries it put first.
func AppendEntriesLimit(b []byte, entries []Entry, limit int) ([]byte, int) {
	size, n := 1+binary.MaxVarintLen64, 0
	for _, e := range entries {
		s := 1 + uvarintLen(uint64(len(e.Key))) + len(e.Key) + varintLen(before(e)) + varintLen(e.Expiry.UnixNano())
		if size+s > limit {
			break
		}
		size += s
		n++
	}
	return AppendEntries(b, entries[:n]), n
}

func before(e Entry) int64 {
	if e.Before.IsZero() {
		return 0
	}
	return e.Before.UnixNano()
}

func uvarintLen(x uint64) int {
	return len(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), x))
}

func varintLen(x int64) int {
	return len(binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen64), x))
}

// DecodeEntries decodes what AppendEntries wrote, strictly: a wrong version,
// an invalid entry, a short read or trailing bytes is ErrMalformed.
func DecodeEntries(b []byte) ([]Entry, error) {
	if len(b) < 2 || b[0] != codecVersion {
		return nil, ErrMalformed
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxBatch || n > uint64(len(b)) {
		return nil, ErrMalformed
	}
	b = b[k:]
	out := make([]Entry, 0, n)
	for range n {
		if len(b) < 1 {
			return nil, ErrMalformed
		}
		e := Entry{Kind: Kind(b[0])}
		b = b[1:]
		klen, k := binary.Uvarint(b)
		if k <= 0 || klen > maxKey || klen > uint64(len(b)-k) {
			return nil, ErrMalformed
		}
		e.Key = string(b[k : k+int(klen)])
		b = b[k+int(klen):]
		before, k := binary.Varint(b)
		if k <= 0 {
			return nil, ErrMalformed
		}
		b = b[k:]
		exp, k := binary.Varint(b)
		if k <= 0 {
			return nil, ErrMalformed
		}
		b = b[k:]
		if before != 0 {
			e.Before = time.Unix(0, before)
		}
		e.Expiry = time.Unix(0, exp)
		if e.validate() != nil {
			return nil, ErrMalformed
		}
		out = append(out, e)
	}
	if len(b) != 0 {
		return nil, ErrMalformed
	}
	return out, nil
}
