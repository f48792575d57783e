package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/internal/testsupport"
	"github.com/bff-project/bff/oauth"
)

// newClusteredServer is a Server with a one-member cluster on loopback
// (cluster.New binds its ports; nothing joins, Run is never called, so the
// provider's metadata is never loaded) and a fixed clock.
func newClusteredServer(t *testing.T, now time.Time, logs *testsupport.Buffer) *Server {
	t.Helper()
	s, err := New(Config{
		PublicURL: "https://app.example.com",
		OIDC:      oauth.Config{Issuer: "http://127.0.0.1:1", ClientID: "bff-test", ClientSecret: "client-secret"},
		Secrets:   [][]byte{[]byte("0123456789abcdef0123456789ABCDEF-internal-test")},
		Cluster: &cluster.Config{
			Bind:   freeGossipPort(t),
			Name:   "member-a",
			Secret: []byte("0123456789abcdef0123456789abcdef"),
		},
		InternalURL: "http://127.0.0.1:1",
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if s.owner == nil || s.cluster == nil {
		t.Fatal("clustered server without owner or cluster")
	}
	if got := s.cluster.LocalName(); got != "member-a" {
		t.Fatalf("LocalName %q, want member-a", got)
	}
	return s
}

// sealRefreshRequest seals req with the owner's sealer, as owner.ask does.
func sealRefreshRequest(t *testing.T, s *Server, req refreshRequest) string {
	t.Helper()
	plain, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.owner.sealer.Seal(purposeRefreshRequest, plain)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func newJTI(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func postInternal(s *Server, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, internalRefreshPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/jose")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

// TestInternalRefresh: the owner side of a forwarded refresh answers a
// fresh, well-formed request for this member with a sealed answer bound to
// its jti, and refuses a stale, future, misaddressed, replayed or garbage
// one as a path that does not exist (404 JSON, not 403), counted in
// bff_internal_requests_refused_total. The accepted request is the control
// that each refusal is caused by the one field changed.
func TestInternalRefresh(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	logs := &testsupport.Buffer{}
	s := newClusteredServer(t, now, logs)
	good := func() refreshRequest {
		return refreshRequest{
			Audience: "member-a", SessionID: "sid-1", RefreshToken: "RT-internal", Subject: "alice",
			IssuedAt: now.Unix(), JTI: newJTI(t),
		}
	}
	replayed := sealRefreshRequest(t, s, good())

	// Positive control: accepted, 200 sealed answer bound to the jti.
	t.Run("fresh request for this member", func(t *testing.T) {
		req := good()
		before := counterValue(t, s.metrics.internalRefused)
		w := postInternal(s, sealRefreshRequest(t, s, req))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d, want 200 (body %.200s)", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/jose" {
			t.Errorf("Content-Type %q, want application/jose", ct)
		}
		plain, _, err := s.owner.sealer.Open(purposeRefreshResponse, w.Body.String())
		if err != nil {
			t.Fatalf("answer does not open as a refresh response: %v", err)
		}
		var ans refreshResponse
		if err := json.Unmarshal(plain, &ans); err != nil {
			t.Fatal(err)
		}
		if ans.JTI != req.JTI {
			t.Errorf("answer jti %q, want the request's %q", ans.JTI, req.JTI)
		}
		// The provider's metadata is never loaded here: the refresh itself
		// fails (ErrNotReady), which the owner reports inside its answer.
		if ans.Error != "error" || ans.Tokens != nil {
			t.Errorf("answer %+v, want err \"error\" and no tokens", ans)
		}
		if d := counterValue(t, s.metrics.internalRefused) - before; d != 0 {
			t.Errorf("refused counter moved by %v for an accepted request", d)
		}
		// First use of the request that is replayed below: accepted.
		if w := postInternal(s, replayed); w.Code != http.StatusOK {
			t.Fatalf("first use of the replayed request: status %d, want 200", w.Code)
		}
	})

	// The freshness window is 30 s each way (clocks of members differ a
	// little): requests just inside it are accepted, the controls of the
	// 31 s refusals below.
	for _, skew := range []time.Duration{-29 * time.Second, 29 * time.Second} {
		t.Run(fmt.Sprintf("issued %s from now", skew), func(t *testing.T) {
			r := good()
			r.IssuedAt = now.Add(skew).Unix()
			if w := postInternal(s, sealRefreshRequest(t, s, r)); w.Code != http.StatusOK {
				t.Errorf("status %d, want 200 (body %.200s)", w.Code, w.Body)
			}
		})
	}

	// logErr is part of the refusal's logged error. A request older than
	// internalMaxAge is also refused by the single-use check (its jti
	// would expire at iat+30s, already past), so only the log tells the
	// freshness check's refusal ("stale") from the replay check's.
	const stale, replay, forged = "stale, incomplete or for another member", "replayed", "internal request refused"
	tests := []struct {
		name   string
		logErr string
		body   func(t *testing.T) string
	}{
		{"issued 31s ago", stale, func(t *testing.T) string {
			r := good()
			r.IssuedAt = now.Add(-31 * time.Second).Unix()
			return sealRefreshRequest(t, s, r)
		}},
		{"issued 31s in the future", stale, func(t *testing.T) string {
			r := good()
			r.IssuedAt = now.Add(31 * time.Second).Unix()
			return sealRefreshRequest(t, s, r)
		}},
		{"for another member", stale, func(t *testing.T) string {
			r := good()
			r.Audience = "member-b"
			return sealRefreshRequest(t, s, r)
		}},
		{"replayed jti", replay, func(t *testing.T) string { return replayed }},
		{"empty jti", stale, func(t *testing.T) string {
			r := good()
			r.JTI = ""
			return sealRefreshRequest(t, s, r)
		}},
		{"empty body", forged, func(t *testing.T) string { return "" }},
		{"garbage body", forged, func(t *testing.T) string { return "eyJhbGciOiJkaXIifQ..x.y.z" }},
		{"sealed as a response", forged, func(t *testing.T) string {
			plain, _ := json.Marshal(good())
			sealed, err := s.owner.sealer.Seal(purposeRefreshResponse, plain)
			if err != nil {
				t.Fatal(err)
			}
			return sealed
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body(t)
			before := counterValue(t, s.metrics.internalRefused)
			off := len(logs.String())
			w := postInternal(s, body)
			if got := logs.String()[off:]; !strings.Contains(got, "request refused") || !strings.Contains(got, tt.logErr) {
				t.Errorf("refusal log %q, want \"request refused\" with err %q", got, tt.logErr)
			}
			if w.Code != http.StatusNotFound {
				t.Errorf("status %d, want 404 (body %.200s)", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var e map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] != "not_found" {
				t.Errorf("body %.200s, want {\"error\":\"not_found\",...}", w.Body)
			}
			if d := counterValue(t, s.metrics.internalRefused) - before; d != 1 {
				t.Errorf("bff_internal_requests_refused_total moved by %v, want 1", d)
			}
		})
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// freeGossipPort is a loopback host:port free for both TCP and UDP
// (memberlist binds both on the same port and refuses port 0).
func freeGossipPort(t *testing.T) string { return testsupport.FreeGossipAddr(t) }
