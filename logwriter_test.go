package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder keeps each Write call separately.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestLineWriter(t *testing.T) {
	type step struct {
		urgent bool
		flush  bool
		line   string
	}
	tests := []struct {
		name  string
		limit int
		steps []step
		want  []string // the writes, in order
	}{
		{
			name:  "access lines wait",
			limit: 64,
			steps: []step{{line: "a1\n"}, {line: "a2\n"}},
			want:  nil,
		},
		{
			name:  "flush writes them in one write",
			limit: 64,
			steps: []step{{line: "a1\n"}, {line: "a2\n"}, {flush: true}},
			want:  []string{"a1\na2\n"},
		},
		{
			name:  "an urgent line goes out at once, after the waiting ones",
			limit: 64,
			steps: []step{{line: "a1\n"}, {urgent: true, line: "warn\n"}, {line: "a2\n"}},
			want:  []string{"a1\nwarn\n"},
		},
		{
			name:  "a full buffer is written before the line that would overflow it",
			limit: 8,
			steps: []step{{line: "aaa\n"}, {line: "bbb\n"}, {line: "ccc\n"}},
			want:  []string{"aaa\nbbb\n"},
		},
		{
			name:  "a line longer than the buffer is written alone, in order",
			limit: 8,
			steps: []step{{line: "aa\n"}, {line: "0123456789\n"}, {line: "bb\n"}, {flush: true}},
			want:  []string{"aa\n", "0123456789\n", "bb\n"},
		},
		{
			name:  "an urgent line longer than the buffer keeps the order",
			limit: 8,
			steps: []step{{line: "aa\n"}, {urgent: true, line: "0123456789\n"}},
			want:  []string{"aa\n", "0123456789\n"},
		},
		{
			name:  "flushing nothing writes nothing",
			limit: 8,
			steps: []step{{flush: true}, {urgent: true, line: "u\n"}, {flush: true}},
			want:  []string{"u\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			lw := newLineWriter(rec, tt.limit)
			for _, s := range tt.steps {
				switch {
				case s.flush:
					lw.Flush()
				case s.urgent:
					lw.Urgent().Write([]byte(s.line))
				default:
					lw.Write([]byte(s.line))
				}
			}
			if got := rec.get(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("writes %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLineWriterRunFlushesOnTickAndAtEnd(t *testing.T) {
	rec := &recorder{}
	lw := newLineWriter(rec, 1<<10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); lw.run(ctx, 20*time.Millisecond) }()

	lw.Write([]byte("first\n"))
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.get()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ticker never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	lw.Write([]byte("last\n"))
	cancel()
	<-done
	if got := strings.Join(rec.get(), ""); got != "first\nlast\n" {
		t.Errorf("written %q, want both lines after the stop", got)
	}
}

// Many goroutines logging at once: every line arrives whole and once.
func TestLineWriterConcurrentLinesStayWhole(t *testing.T) {
	var out bytes.Buffer
	lw := newLineWriter(&out, 256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				line := fmt.Sprintf("g%d-%03d %s\n", g, i, strings.Repeat("x", i%40))
				if i%17 == 0 {
					lw.Urgent().Write([]byte(line))
				} else {
					lw.Write([]byte(line))
				}
			}
		}()
	}
	wg.Wait()
	lw.Flush()
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		var rest string
		if n, _ := fmt.Sscanf(l, "g%d-%03d %s", &g, &i, &rest); n < 2 || (i%40 > 0 && rest != strings.Repeat("x", i%40)) {
			t.Fatalf("torn line %q", l)
		}
		if seen[l] {
			t.Fatalf("line %q twice", l)
		}
		seen[l] = true
	}
	if len(seen) != 8*200 {
		t.Errorf("%d lines, want %d", len(seen), 8*200)
	}
}
