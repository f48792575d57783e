package crypto

import (
	"bytes"
	"compress/flate"
	"io"
	"sync"
)

// Format bytes prefixed to every plaintext before sealing.
const (
	formatRaw     byte = 0
	formatDeflate byte = 1
)

// minCompress is the shortest plaintext worth trying to compress.
const minCompress = 64

var (
	flateWriters = sync.Pool{New: func() any {
		w, err := flate.NewWriter(nil, flate.DefaultCompression)
		if err != nil {
			panic(err) // only for an invalid level
		}
		return w
	}}
	flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
)

// encode returns the format byte followed by the plaintext, DEFLATE-compressed
// when compress is set and compression makes it shorter.
func encode(plaintext []byte, compress bool) []byte {
	if compress && len(plaintext) >= minCompress {
		var buf bytes.Buffer
		buf.Grow(len(plaintext)/2 + 16)
		buf.WriteByte(formatDeflate)
		w := flateWriters.Get().(*flate.Writer)
		w.Reset(&buf)
		_, werr := w.Write(plaintext)
		cerr := w.Close()
		w.Reset(io.Discard) // drop the reference to buf
		flateWriters.Put(w)
		if werr == nil && cerr == nil && buf.Len() < 1+len(plaintext) {
			return buf.Bytes()
		}
	}
	out := make([]byte, 1+len(plaintext))
	out[0] = formatRaw
	copy(out[1:], plaintext)
	return out
}

// decode reverses encode. It fails on an unknown format byte, a corrupt
// DEFLATE stream, or output longer than limit.
func decode(body []byte, limit int) ([]byte, bool) {
	if len(body) == 0 {
		return nil, false
	}
	payload := body[1:]
	switch body[0] {
	case formatRaw:
		if len(payload) > limit {
			return nil, false
		}
		return payload, true
	case formatDeflate:
		r := flateReaders.Get().(io.ReadCloser)
		defer flateReaders.Put(r)
		if err := r.(flate.Resetter).Reset(bytes.NewReader(payload), nil); err != nil {
			return nil, false
		}
		var out bytes.Buffer
		out.Grow(min(4*len(payload), limit+1))
		n, err := out.ReadFrom(io.LimitReader(r, int64(limit)+1))
		if err != nil || n > int64(limit) {
			return nil, false
		}
		return out.Bytes(), true
	default:
		return nil, false
	}
}
