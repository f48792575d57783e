package revocation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func sampleEntries() []Entry {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 123, time.UTC)
	return []Entry{
		{Kind: KindSession, Key: "c2Vzc2lvbi1pZA", Expiry: t0.Add(time.Hour)},
		{Kind: KindIdPSession, Key: "sid-1", Expiry: t0.Add(2 * time.Hour)},
		{Kind: KindSubject, Key: "alice", Before: t0, Expiry: t0.Add(8 * time.Hour)},
		{Kind: KindOnce, Key: "state:q1b2c3d4e5f6g7h8i9j0k1l2", Expiry: t0.Add(10 * time.Minute)},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := sampleEntries()
	out, err := DecodeEntries(AppendEntries(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d entries, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Kind != in[i].Kind || out[i].Key != in[i].Key || !out[i].Before.Equal(in[i].Before) || !out[i].Expiry.Equal(in[i].Expiry) {
			t.Errorf("entry %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
	if empty, err := DecodeEntries(AppendEntries(nil, nil)); err != nil || len(empty) != 0 {
		t.Errorf("empty batch: %v %v", empty, err)
	}
}

func TestCodecMalformed(t *testing.T) {
	good := AppendEntries(nil, sampleEntries())
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"version only", []byte{codecVersion}},
		{"wrong version", append([]byte{2}, good[1:]...)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"huge count", []byte{codecVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"unknown kind", AppendEntries(nil, []Entry{{Kind: 9, Key: "x", Expiry: time.Now()}})},
		{"empty key", AppendEntries(nil, []Entry{{Kind: KindSession, Key: "", Expiry: time.Now()}})},
		{"subject without bound", AppendEntries(nil, []Entry{{Kind: KindSubject, Key: "a", Expiry: time.Now()}})},
		{"kind after once", AppendEntries(nil, []Entry{{Kind: KindOnce + 1, Key: "x", Expiry: time.Now()}})},
		{"kind zero", AppendEntries(nil, []Entry{{Kind: 0, Key: "x", Expiry: time.Now()}})},
		{"once with a start bound", AppendEntries(nil, []Entry{{Kind: KindOnce, Key: "x", Before: time.Now(), Expiry: time.Now()}})},
		{"once with an empty key", AppendEntries(nil, []Entry{{Kind: KindOnce, Expiry: time.Now()}})},
	}
	for i := 1; i < len(good); i++ {
		tests = append(tests, struct {
			name string
			b    []byte
		}{"truncated", good[:i]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEntries(tt.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestAppendEntriesLimit(t *testing.T) {
	entries := sampleEntries()
	full := len(AppendEntries(nil, entries))
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"everything fits", full + binary.MaxVarintLen64, len(entries)},
		{"nothing fits", 5, 0},
		{"one short of the last", full + binary.MaxVarintLen64 - 2, len(entries) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, n := AppendEntriesLimit(nil, entries, tt.limit)
			if n != tt.want {
				t.Errorf("n = %d, want %d", n, tt.want)
			}
			if len(b) > tt.limit && n > 0 {
				t.Errorf("%d bytes over the limit %d", len(b), tt.limit)
			}
			got, err := DecodeEntries(b)
			if err != nil || len(got) != n {
				t.Errorf("decode: %d entries, %v", len(got), err)
			}
		})
	}
}

func TestMergeConverges(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	a, _ := New(Config{Now: c.Now})
	b, _ := New(Config{Now: c.Now})
	entries := append(sampleEntries(), Entry{Kind: KindSubject, Key: "alice", Before: c.t.Add(time.Minute), Expiry: c.t.Add(time.Hour)})
	for _, e := range entries {
		e.Expiry = e.Expiry.Add(24 * time.Hour) // all live
		a.Add(e)
	}
	// b receives them in reverse order, twice.
	rev := a.Entries()
	for i := len(rev) - 1; i >= 0; i-- {
		b.Add(rev[i])
	}
	if n, err := b.Merge(a.Entries()); err != nil || n != 0 {
		t.Errorf("second merge changed %d entries (err %v), want 0", n, err)
	}
	if a.Len() != b.Len() {
		t.Fatalf("len %d vs %d", a.Len(), b.Len())
	}
	if a.OnceLen() != 1 || b.OnceLen() != 1 {
		t.Errorf("single-use values: %d vs %d, want 1", a.OnceLen(), b.OnceLen())
	}
	for _, probe := range []struct{ id, idp, sub string }{{"c2Vzc2lvbi1pZA", "", ""}, {"x", "sid-1", ""}, {"x", "", "alice"}} {
		start := c.t
		if a.Revoked(probe.id, probe.idp, probe.sub, start) != b.Revoked(probe.id, probe.idp, probe.sub, start) {
			t.Errorf("replicas disagree on %+v", probe)
		}
	}
	if _, err := b.Merge([]Entry{{Kind: 7, Key: "x", Expiry: c.t.Add(time.Hour)}}); err == nil {
		t.Error("an invalid entry must be refused")
	}
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(AppendEntries(nil, sampleEntries()))
	f.Add([]byte{codecVersion, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := DecodeEntries(b)
		if err != nil {
			return
		}
		again, err := DecodeEntries(AppendEntries(nil, entries))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("re-encoding a decoded batch failed: %v", err)
		}
	})
}
