package main

import (
	"context"
	"io"
	"sync"
	"time"
)

// lineWriter collects whole log lines and writes them out in batches, as
// nginx does with `access_log ... buffer= flush=`: under load one write(2)
// carries hundreds of access-log lines instead of one each. Buffered lines go
// out when the next would overflow the buffer, every flush interval, and
// before any urgent line (every line but the access log's), so that the order
// of lines is kept and no warning waits. A process killed with SIGKILL loses
// at most one interval of access lines; an orderly stop flushes. Write errors
// are dropped, as slog drops them: there is nowhere left to report them.
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	limit int
}

func newLineWriter(w io.Writer, limit int) *lineWriter {
	return &lineWriter{w: w, buf: make([]byte, 0, limit), limit: limit}
}

// Write buffers p, one log line (slog writes each record with one call).
func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.add(p)
	return len(p), nil
}

// add appends p, writing out first what would not fit; a line longer than
// the whole buffer is written on its own.
func (lw *lineWriter) add(p []byte) {
	if len(lw.buf)+len(p) > lw.limit {
		lw.flushLocked()
	}
	if len(p) > lw.limit {
		lw.w.Write(p)
		return
	}
	lw.buf = append(lw.buf, p...)
}

// Flush writes what is buffered.
func (lw *lineWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
}

func (lw *lineWriter) flushLocked() {
	if len(lw.buf) > 0 {
		lw.w.Write(lw.buf)
		lw.buf = lw.buf[:0]
	}
}

// run flushes every interval until ctx ends, then once more.
func (lw *lineWriter) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			lw.Flush()
		case <-ctx.Done():
			lw.Flush()
			return
		}
	}
}

// Urgent returns the writer for lines that must not wait: each goes out at
// once, after (and usually in the same write as) the buffered lines.
func (lw *lineWriter) Urgent() io.Writer { return urgentWriter{lw} }

type urgentWriter struct{ lw *lineWriter }

func (u urgentWriter) Write(p []byte) (int, error) {
	u.lw.mu.Lock()
	defer u.lw.mu.Unlock()
	u.lw.add(p)
	u.lw.flushLocked()
	return len(p), nil
}
