package revocation

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestRevoked(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l, err := New(Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RevokeSession("s1", c.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.RevokeSubject("alice", c.t, c.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.RevokeIdPSession("idp-1", c.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		id    string
		idp   string
		sub   string
		start time.Time
		want  bool
	}{
		{"revoked provider session", "s5", "idp-1", "bob", c.t, true},
		{"other provider session", "s6", "idp-2", "bob", c.t, false},
		{"revoked id", "s1", "", "bob", c.t, true},
		{"other id", "s2", "", "bob", c.t, false},
		{"subject, started before", "s3", "", "alice", c.t.Add(-time.Minute), true},
		{"subject, started after", "s4", "", "alice", c.t.Add(time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Revoked(tt.id, tt.idp, tt.sub, tt.start); got != tt.want {
				t.Errorf("Revoked(%q, %q) = %v, want %v", tt.id, tt.sub, got, tt.want)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l, _ := New(Config{Now: c.Now})
	if changed, err := l.Add(Entry{Kind: KindSession, Key: "past", Expiry: c.t.Add(-time.Second)}); err != nil || changed || l.Len() != 0 {
		t.Fatalf("an already expired entry must be a no-op: changed=%v err=%v len=%d", changed, err, l.Len())
	}
	l.RevokeSession("a", c.t.Add(time.Minute))
	l.RevokeSession("b", c.t.Add(time.Hour))
	if changed, _ := l.Add(Entry{Kind: KindSession, Key: "a", Expiry: c.t.Add(30 * time.Second)}); changed {
		t.Error("an earlier expiry must not shorten an entry")
	}
	c.t = c.t.Add(3 * time.Minute) // "a" expired
	if err := l.Sweep(); err != nil {
		t.Fatal(err)
	}
	if l.Revoked("a", "", "", c.t) || l.Len() != 1 {
		t.Errorf("expired entry not swept: len = %d", l.Len())
	}
	if !l.Revoked("b", "", "", c.t) {
		t.Error("live entry swept")
	}
}

func TestInvalidEntries(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name string
		e    Entry
	}{
		{"unknown kind", Entry{Kind: 9, Key: "x", Expiry: exp}},
		{"empty key", Entry{Kind: KindSession, Expiry: exp}},
		{"long key", Entry{Kind: KindOnce, Key: strings.Repeat("k", maxKey+1), Expiry: exp}},
		{"subject without bound", Entry{Kind: KindSubject, Key: "a", Expiry: exp}},
		{"bound on a session", Entry{Kind: KindSession, Key: "a", Before: exp, Expiry: exp}},
		{"expiry out of range", Entry{Kind: KindSession, Key: "a", Expiry: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"zero expiry", Entry{Kind: KindSession, Key: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := New(Config{})
			if _, err := l.Add(tt.e); !errors.Is(err, ErrInvalid) {
				t.Errorf("Add: err = %v, want ErrInvalid", err)
			}
			if _, err := l.Merge([]Entry{{Kind: KindSession, Key: "good", Expiry: exp}, tt.e}); !errors.Is(err, ErrInvalid) {
				t.Errorf("Merge: err = %v, want ErrInvalid", err)
			}
			if l.Len()+l.OnceLen() != 0 {
				t.Error("a batch with an invalid entry was partly merged")
			}
			// Positive control: the valid entry alone is taken.
			if _, err := l.Merge([]Entry{{Kind: KindSession, Key: "good", Expiry: exp}}); err != nil || l.Len() != 1 {
				t.Errorf("valid entry: err = %v, len = %d", err, l.Len())
			}
		})
	}
}
