package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/oauth"
)

// ticketOfLength seals an end-session ticket whose sealed form is exactly n
// bytes long, or returns "" when no hint length gives n (the compact JWE's
// base64 never has a length of 1 mod 4 in a part). The hint is deterministic
// and hard to compress, so the search is reproducible.
func ticketOfLength(t *testing.T, s *Server, n int) string {
	t.Helper()
	var hint strings.Builder
	seed := sha256.Sum256([]byte("end-session hint"))
	for hint.Len() < 2*n {
		seed = sha256.Sum256(seed[:])
		hint.WriteString(base64.RawURLEncoding.EncodeToString(seed[:]))
	}
	expiry := s.now().Add(endSessionTTL).Unix()
	seal := func(h int) string {
		plain, err := json.Marshal(endSessionTicket{Hint: hint.String()[:h], ID: "ticket-id", Expiry: expiry})
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := s.sealer.Seal(purposeEndSession, plain)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		return sealed
	}
	// Land a little short of n (the sealed length grows about one byte a
	// hint byte), then walk up one hint byte at a time.
	h := n
	h -= len(seal(h)) - n + 32
	for ; h < 2*n; h++ {
		switch sealed := seal(h); {
		case len(sealed) == n:
			return sealed
		case len(sealed) > n:
			return ""
		}
	}
	return ""
}

// TestEndSessionTicketLength: a sound ticket as long as the bound (16 KiB)
// still signs out with its hint; one past it is refused before it is
// opened. A ticket's length grows with the ID token it hides, so the bound
// is a real ID token size limit, not just a guard against junk.
func TestEndSessionTicketLength(t *testing.T) {
	now := time.Now()
	s, err := New(Config{
		PublicURL: "https://app.example.com",
		OIDC:      oauth.Config{Issuer: "http://127.0.0.1:1", ClientID: "bff-test", ClientSecret: "client-secret"},
		Secrets:   [][]byte{[]byte("0123456789abcdef0123456789ABCDEF-internal-test")},
		Logger:    slog.New(slog.DiscardHandler),
		Now:       func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	atBound := ticketOfLength(t, s, maxTicket)
	over := ""
	for n := maxTicket + 1; over == "" && n < maxTicket+4; n++ {
		over = ticketOfLength(t, s, n)
	}
	if atBound == "" || over == "" {
		t.Fatalf("no ticket of %d bytes (found %v) or just over it (found %v)", maxTicket, atBound != "", over != "")
	}
	for _, tc := range []struct {
		name   string
		ticket string
		status int
	}{
		{"exactly the bound", atBound, http.StatusFound},
		{"one ticket longer", over, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			// The provider's metadata is never loaded: a sound ticket
			// signs out through the post-logout URL ("/").
			s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/auth/end-session?t="+tc.ticket, nil))
			if w.Code != tc.status {
				t.Fatalf("ticket of %d bytes: status %d, want %d; body %s", len(tc.ticket), w.Code, tc.status, w.Body)
			}
			if tc.status == http.StatusFound && w.Header().Get("Location") != "/" {
				t.Errorf("Location %q, want /", w.Header().Get("Location"))
			}
		})
	}
}
