package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
)

const testAdminToken = "admin-token-0123456789abcdef0123456789"

func newAdminServer(t *testing.T, now time.Time) (*Server, http.Handler, *testsupport.Buffer) {
	t.Helper()
	logs := &testsupport.Buffer{}
	s := newTestServer(t, "http://127.0.0.1:1", func(c *Config) {
		c.Secrets = [][]byte{
			[]byte("0123456789abcdef0123456789ABCDEF-admin-one"),
			[]byte("0123456789abcdef0123456789ABCDEF-admin-two"),
		}
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.Now = func() time.Time { return now }
	})
	h, err := s.AdminHandler(testAdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return s, h, logs
}

func adminDo(h http.Handler, method, path, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestAdminRevoke: the admin API ends the sessions of a subject (those
// started before the call) or of one provider session, and refuses without
// its token, with a malformed body, or with both or neither of sub and sid,
// recording nothing. The sessions of another subject, and those started
// after the call, are the controls.
func TestAdminRevoke(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	before, after := now.Add(-time.Minute), now.Add(time.Second)
	bearer := "Bearer " + testAdminToken

	t.Run("by subject", func(t *testing.T) {
		s, h, logs := newAdminServer(t, now)
		w := adminDo(h, http.MethodPost, "/admin/v1/revoke", bearer, `{"sub":"alice"}`)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"revoked":"subject"`) {
			t.Fatalf("revoke: %d %s", w.Code, w.Body)
		}
		if !s.revoked.Revoked("sess-1", "", "alice", before) {
			t.Error("alice's session started before the call is not revoked")
		}
		if s.revoked.Revoked("sess-2", "", "alice", after) {
			t.Error("alice's session started after the call is revoked")
		}
		if s.revoked.Revoked("sess-3", "", "bob", before) {
			t.Error("bob's session is revoked")
		}
		if got := counterValue(t, s.metrics.revocation.WithLabelValues("admin")); got != 1 {
			t.Errorf(`bff_revocations_total{kind="admin"} = %v, want 1`, got)
		}
		if l := logs.String(); !strings.Contains(l, "admin revocation") || strings.Contains(l, "alice") || strings.Contains(l, testAdminToken) {
			t.Errorf("log %q: want the revocation logged, without the subject or the token", l)
		}
	})
	t.Run("by provider session, lower-case scheme", func(t *testing.T) {
		s, h, _ := newAdminServer(t, now)
		w := adminDo(h, http.MethodPost, "/admin/v1/revoke", "bearer "+testAdminToken, `{"sid":"op-session-1"}`)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"revoked":"provider_session"`) {
			t.Fatalf("revoke: %d %s", w.Code, w.Body)
		}
		if !s.revoked.Revoked("sess-1", "op-session-1", "alice", after) {
			t.Error("a session of the provider session is not revoked")
		}
		if s.revoked.Revoked("sess-2", "op-session-2", "alice", before) {
			t.Error("a session of another provider session is revoked")
		}
	})

	refused := []struct {
		name, method, path, auth, body string
		status                         int
	}{
		{"no token", "POST", "/admin/v1/revoke", "", `{"sub":"alice"}`, http.StatusUnauthorized},
		{"wrong token", "POST", "/admin/v1/revoke", "Bearer " + testAdminToken + "x", `{"sub":"alice"}`, http.StatusUnauthorized},
		{"token prefix", "POST", "/admin/v1/revoke", "Bearer " + testAdminToken[:31], `{"sub":"alice"}`, http.StatusUnauthorized},
		{"basic scheme", "POST", "/admin/v1/revoke", "Basic " + testAdminToken, `{"sub":"alice"}`, http.StatusUnauthorized},
		{"empty bearer", "POST", "/admin/v1/revoke", "Bearer ", `{"sub":"alice"}`, http.StatusUnauthorized},
		{"both", "POST", "/admin/v1/revoke", bearer, `{"sub":"alice","sid":"x"}`, http.StatusBadRequest},
		{"neither", "POST", "/admin/v1/revoke", bearer, `{}`, http.StatusBadRequest},
		{"unknown field", "POST", "/admin/v1/revoke", bearer, `{"subject":"alice"}`, http.StatusBadRequest},
		{"not JSON", "POST", "/admin/v1/revoke", bearer, `sub=alice`, http.StatusBadRequest},
		{"key too long", "POST", "/admin/v1/revoke", bearer, `{"sub":"` + strings.Repeat("a", 600) + `"}`, http.StatusBadRequest},
		{"GET revoke", "GET", "/admin/v1/revoke", bearer, ``, http.StatusMethodNotAllowed},
		{"unknown path", "GET", "/admin/v1/sessions", bearer, ``, http.StatusNotFound},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			s, h, logs := newAdminServer(t, now)
			w := adminDo(h, tt.method, tt.path, tt.auth, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if s.revoked.Len() != 0 || s.revoked.Revoked("sess-1", "", "alice", before) {
				t.Error("a refused request revoked something")
			}
			unauthorized := tt.status == http.StatusUnauthorized
			if unauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if got := counterValue(t, s.metrics.adminRefused); got != map[bool]float64{true: 1}[unauthorized] {
				t.Errorf("bff_admin_requests_refused_total = %v", got)
			}
			if strings.Contains(logs.String(), testAdminToken) {
				t.Error("the token reached the log")
			}
			if unauthorized {
				reason := "wrong token"
				if tt.auth == "" || tt.auth == "Bearer " || strings.HasPrefix(tt.auth, "Basic") {
					reason = "no bearer token"
				}
				if !strings.Contains(logs.String(), "reason=\""+reason+"\"") {
					t.Errorf("log %q, want reason %q", logs.String(), reason)
				}
			}
		})
	}
	if _, err := (&Server{}).AdminHandler(testAdminToken[:MinAdminToken-1]); err == nil {
		t.Errorf("a %d-byte admin token was accepted", MinAdminToken-1)
	}
	if _, err := (&Server{}).AdminHandler(testAdminToken[:MinAdminToken]); err != nil {
		t.Errorf("a %d-byte admin token was refused: %v", MinAdminToken, err)
	}
}

// TestAdminStatus: the status names the master secrets by id (the sealing
// one first) and counts the revocations.
func TestAdminStatus(t *testing.T) {
	s, h, _ := newAdminServer(t, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, sub := range []string{"alice", "bob"} {
		if w := adminDo(h, http.MethodPost, "/admin/v1/revoke", "Bearer "+testAdminToken, `{"sub":"`+sub+`"}`); w.Code != http.StatusOK {
			t.Fatalf("revoke %s: %d", sub, w.Code)
		}
	}
	w := adminDo(h, http.MethodGet, "/admin/v1/status", "Bearer "+testAdminToken, "")
	var st struct {
		Entries   int      `json:"revocation_entries"`
		IDs       []string `json:"master_secret_ids"`
		Sealing   string   `json:"sealing_key_id"`
		Ready     bool     `json:"provider_ready"`
		Members   []string `json:"cluster_members"`
		SingleUse *int     `json:"single_use_entries"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &st) != nil {
		t.Fatalf("status: %d %s", w.Code, w.Body)
	}
	if st.Entries != 2 || !slices.Equal(st.IDs, s.ring.MasterIDs()) || len(st.IDs) != 2 || !strings.HasPrefix(st.Sealing, st.IDs[0]+".") ||
		st.Ready || st.Members != nil || st.SingleUse == nil {
		t.Errorf("status %+v (%s)", st, w.Body)
	}
	if strings.Contains(w.Body.String(), "admin-one") {
		t.Error("the status shows a master secret")
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

// TestAdminNotPublic: the public listener's handler has no admin API, with
// the token or without.
func TestAdminNotPublic(t *testing.T) {
	s, _, _ := newAdminServer(t, time.Now())
	for _, p := range []string{"/admin/v1/status", "/admin/v1/revoke", "/auth/admin/v1/status"} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			w := adminDo(s.Handler(), m, p, "Bearer "+testAdminToken, `{"sub":"alice"}`)
			if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusForbidden {
				t.Errorf("%s %s on the public handler: %d, want a refusal", m, p, w.Code)
			}
			if strings.Contains(w.Body.String(), "revocation_entries") || s.revoked.Len() != 0 {
				t.Errorf("%s %s on the public handler reached the admin API", m, p)
			}
		}
	}
}
