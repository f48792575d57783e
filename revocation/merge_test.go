package revocation

import (
	"testing"
	"time"
)

// Merging two entries for one key must give the right answer, not merely
// the same answer on every replica: the later start bound and the later
// expiry win, each on its own, whatever the order and whichever way the
// entries arrive (a peer's message through Add, a peer's full state through
// Merge).
func TestMergeKeepsLatest(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	type probe struct {
		at    time.Duration // clock, from t0 (a Sweep runs first)
		start time.Duration // session start, from t0
		want  bool
	}
	sub := func(before, expiry time.Duration) Entry {
		return Entry{Kind: KindSubject, Key: "alice", Before: t0.Add(before), Expiry: t0.Add(expiry)}
	}
	sess := func(k Kind, expiry time.Duration) Entry {
		return Entry{Kind: k, Key: "k1", Expiry: t0.Add(expiry)}
	}
	tests := []struct {
		name     string
		old, new Entry
		want     Entry // the entry held after merging
		probes   []probe
	}{
		{
			name: "subject, later bound and later expiry",
			old:  sub(time.Minute, 2*time.Hour), new: sub(10*time.Minute, 3*time.Hour),
			want: sub(10*time.Minute, 3*time.Hour),
			probes: []probe{
				{0, 5 * time.Minute, true},                 // started between the bounds
				{0, 11 * time.Minute, false},               // positive control: after the newest bound
				{150 * time.Minute, 5 * time.Minute, true}, // past the old expiry
				{181 * time.Minute, 5 * time.Minute, false},
			},
		},
		{
			name: "subject, later bound with an earlier expiry",
			old:  sub(time.Minute, 3*time.Hour), new: sub(10*time.Minute, 2*time.Hour),
			want: sub(10*time.Minute, 3*time.Hour),
			probes: []probe{
				{0, 5 * time.Minute, true},
				{0, 11 * time.Minute, false},
				{150 * time.Minute, 5 * time.Minute, true}, // past the new entry's expiry
				{181 * time.Minute, 5 * time.Minute, false},
			},
		},
		{
			name: "session, later expiry",
			old:  sess(KindSession, time.Hour), new: sess(KindSession, 2*time.Hour),
			want: sess(KindSession, 2*time.Hour),
			probes: []probe{
				{0, 0, true},
				{90 * time.Minute, 0, true}, // past the old expiry
				{121 * time.Minute, 0, false},
			},
		},
		{
			name: "provider session, later expiry",
			old:  sess(KindIdPSession, time.Hour), new: sess(KindIdPSession, 2*time.Hour),
			want: sess(KindIdPSession, 2*time.Hour),
			probes: []probe{
				{0, 0, true},
				{90 * time.Minute, 0, true},
				{121 * time.Minute, 0, false},
			},
		},
	}
	// Each way delivers a first and a second entry to l.
	ways := []struct {
		name    string
		deliver func(t *testing.T, l *List, first, second Entry)
	}{
		{"Add, Add", func(t *testing.T, l *List, first, second Entry) {
			mustAdd(t, l, first)
			mustAdd(t, l, second)
		}},
		{"Add, Merge of a full state", func(t *testing.T, l *List, first, second Entry) {
			mustAdd(t, l, first)
			peer, _ := New(Config{Now: l.now})
			mustAdd(t, peer, second)
			mustAdd(t, peer, Entry{Kind: KindSession, Key: "other", Expiry: t0.Add(time.Hour)})
			if _, err := l.Merge(peer.Entries()); err != nil {
				t.Fatal(err)
			}
		}},
		{"Merge, Merge", func(t *testing.T, l *List, first, second Entry) {
			for _, e := range []Entry{first, second} {
				if _, err := l.Merge([]Entry{e}); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"one Merge batch", func(t *testing.T, l *List, first, second Entry) {
			if _, err := l.Merge([]Entry{first, second}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		for _, w := range ways {
			for _, order := range []string{"old first", "new first"} {
				t.Run(tt.name+"/"+w.name+"/"+order, func(t *testing.T) {
					c := &clock{t: t0}
					l, _ := New(Config{Now: c.Now})
					first, second := tt.old, tt.new
					if order == "new first" {
						first, second = second, first
					}
					w.deliver(t, l, first, second)
					if got, ok := held(l, tt.want.Kind, tt.want.Key); !ok ||
						!got.Before.Equal(tt.want.Before) || !got.Expiry.Equal(tt.want.Expiry) {
						t.Errorf("held %+v (found %v), want Before %v Expiry %v", got, ok, tt.want.Before, tt.want.Expiry)
					}
					for _, p := range tt.probes {
						c.t = t0.Add(p.at)
						if err := l.Sweep(); err != nil {
							t.Fatal(err)
						}
						id, sid, subject := "x", "", ""
						switch tt.want.Kind {
						case KindSession:
							id = tt.want.Key
						case KindIdPSession:
							sid = tt.want.Key
						case KindSubject:
							subject = tt.want.Key
						}
						if got := l.Revoked(id, sid, subject, t0.Add(p.start)); got != p.want {
							t.Errorf("at t0+%v, session started t0+%v: revoked = %v, want %v", p.at, p.start, got, p.want)
						}
					}
				})
			}
		}
	}
}

func mustAdd(t *testing.T, l *List, e Entry) {
	t.Helper()
	if _, err := l.Add(e); err != nil {
		t.Fatal(err)
	}
}

// held returns the live entry l holds for (k, key).
func held(l *List, k Kind, key string) (Entry, bool) {
	for _, e := range l.Entries() {
		if e.Kind == k && e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}
