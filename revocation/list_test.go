package revocation

import (
	"errors"
	"os"
	"path/filepath"
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

func TestExpiryAndBound(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l, _ := New(Config{Now: c.Now, MaxEntries: 2})
	if err := l.RevokeSession("past", c.t.Add(-time.Second)); err != nil || l.Len() != 0 {
		t.Fatalf("an already expired entry must be a no-op: err=%v len=%d", err, l.Len())
	}
	l.RevokeSession("a", c.t.Add(time.Minute))
	l.RevokeSession("b", c.t.Add(time.Hour))
	if err := l.RevokeSession("c", c.t.Add(time.Hour)); !errors.Is(err, ErrFull) {
		t.Fatalf("third entry: err = %v, want ErrFull", err)
	}
	if err := l.RevokeSession("a", c.t.Add(2*time.Minute)); err != nil {
		t.Fatalf("re-revoking an existing entry must work when full: %v", err)
	}
	c.t = c.t.Add(3 * time.Minute) // "a" expired: the next write sweeps it
	if err := l.RevokeSession("c", c.t.Add(time.Hour)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if l.Revoked("a", "", "", c.t) {
		t.Error("expired entry still revoked")
	}
	if !l.Revoked("b", "", "", c.t) || !l.Revoked("c", "", "", c.t) {
		t.Error("live entries lost")
	}
}

func TestSnapshot(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	file := filepath.Join(t.TempDir(), "revoked.json")
	l, err := New(Config{SnapshotFile: file, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	l.RevokeSession("s1", c.t.Add(time.Hour))
	l.RevokeSession("short", c.t.Add(time.Minute))
	l.RevokeSubject("alice", c.t, c.t.Add(time.Hour))
	l.RevokeIdPSession("idp-1", c.t.Add(time.Hour))

	c.t = c.t.Add(2 * time.Minute)
	l2, err := New(Config{SnapshotFile: file, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !l2.Revoked("s1", "", "", c.t) || !l2.Revoked("x", "", "alice", c.t.Add(-3*time.Minute)) {
		t.Error("restart lost a revocation")
	}
	if !l2.Revoked("y", "idp-1", "", c.t) {
		t.Error("restart lost a provider-session revocation")
	}
	if l2.Len() != 3 {
		t.Errorf("expired entry loaded: len = %d, want 3", l2.Len())
	}

	if err := os.WriteFile(file, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{SnapshotFile: file}); err == nil {
		t.Error("a corrupt snapshot must stop start-up, not silently empty the list")
	}
}
