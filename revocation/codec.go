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
// nanoseconds, zig-zag varints). It is how instances replicate the list.
func AppendEntries(b []byte, entries []Entry) []byte {
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = append(b, byte(e.Kind))
		b = binary.AppendUvarint(b, uint64(len(e.Key)))
		b = append(b, e.Key...)
		var before int64
		if !e.Before.IsZero() {
			before = e.Before.UnixNano()
		}
		b = binary.AppendVarint(b, before)
		b = binary.AppendVarint(b, e.Expiry.UnixNano())
	}
	return b
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
