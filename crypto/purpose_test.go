package crypto

import (
	"bytes"
	"testing"
)

// TestPurposeBinding: a value opens only as the purpose it was sealed for
// (the JWE cty), so a login cookie never opens as a session, nor the
// reverse. The same-purpose rows are the control that the value itself is
// good and that ErrInvalid comes from the purpose check.
func TestPurposeBinding(t *testing.T) {
	s := newTestSealer(t, Config{Ring: newTestRing(t, newClock(t0), testSecret(1))})
	pt := []byte(`{"state":"s","verifier":"v","sid":"x"}`)
	tests := []struct {
		name       string
		seal, open Purpose
		ok         bool
	}{
		{"login opens as login", Login, Login, true},
		{"session opens as session", Session, Session, true},
		{"made-up opens as itself", "refresh-request", "refresh-request", true},
		{"login cookie as session", Login, Session, false},
		{"session cookie as login", Session, Login, false},
		{"login as a made-up purpose", Login, "refresh-request", false},
		{"made-up as session", "refresh-request", Session, false},
		{"session as an invalid purpose", Session, "Session", false},
		{"session as the empty purpose", Session, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(tt.seal, pt)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := s.Open(tt.open, sealed)
			if tt.ok {
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("Open(%q) of a %q value: %v, want the plaintext", tt.open, tt.seal, err)
				}
				return
			}
			if err != ErrInvalid || got != nil {
				t.Fatalf("Open(%q) of a %q value: %q, %v; want nil, ErrInvalid", tt.open, tt.seal, got, err)
			}
		})
	}
}
