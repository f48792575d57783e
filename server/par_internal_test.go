package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestLoginPushesAuthorizationRequest: with a provider that offers PAR,
// /auth/login pushes the parameters and redirects with client_id and
// request_uri only; the push's failures answer like the provider's other
// failures and start no flow (no login cookie).
func TestLoginPushesAuthorizationRequest(t *testing.T) {
	var mu sync.Mutex
	var pushed []url.Values
	var answer func(w http.ResponseWriter)
	var op *httptest.Server
	op = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			writeDiscovery(w, op.URL, map[string]any{"pushed_authorization_request_endpoint": "/par"})
		case "/par":
			r.ParseForm()
			mu.Lock()
			pushed = append(pushed, r.PostForm)
			a := answer
			mu.Unlock()
			a(w)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(op.Close)
	s := newTestServer(t, op.URL, nil)
	if err := s.idp.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	reply := func(status int, body string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		status int
		code   string // JSON error code when not a redirect
	}{
		{"pushed", reply(http.StatusCreated, `{"request_uri":"urn:ietf:params:oauth:request_uri:xyz","expires_in":60}`), http.StatusFound, ""},
		{"client refused", reply(http.StatusUnauthorized, `{"error":"invalid_client"}`), http.StatusInternalServerError, "misconfigured"},
		{"provider failing", reply(http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"parameter refused", reply(http.StatusBadRequest, `{"error":"invalid_request"}`), http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			answer, pushed = tt.answer, nil
			mu.Unlock()
			s.metrics.clientAuth.Reset()
			r := httptest.NewRequest(http.MethodGet, "/auth/login?returnTo=/app&login_hint=alice", nil)
			r.Header.Set("Sec-Fetch-Mode", "navigate")
			r.Header.Set("Sec-Fetch-Dest", "document")
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (body %.200s)", w.Code, tt.status, w.Body)
			}
			if len(pushed) != 1 || pushed[0].Get("login_hint") != "alice" || pushed[0].Get("state") == "" || pushed[0].Get("code_challenge") == "" {
				t.Fatalf("pushed %v, want one push with the state, challenge and login_hint", pushed)
			}
			loginCookie := strings.Contains(strings.Join(w.Header().Values("Set-Cookie"), "\n"), s.loginPrefix())
			if tt.status != http.StatusFound {
				var e map[string]string
				if json.Unmarshal(w.Body.Bytes(), &e) != nil || e["error"] != tt.code {
					t.Errorf("body %.200s, want error %q", w.Body, tt.code)
				}
				if loginCookie {
					t.Error("a failed push started a flow (login cookie set)")
				}
				want := 0.0
				if tt.code == "misconfigured" {
					want = 1
				}
				if got := counterValue(t, s.metrics.clientAuth.WithLabelValues("pushed authorization request")); got != want {
					t.Errorf("bff_client_auth_failures_total for the push = %v, want %v", got, want)
				}
				return
			}
			loc, _ := url.Parse(w.Header().Get("Location"))
			want := url.Values{"client_id": {"bff-test"}, "request_uri": {"urn:ietf:params:oauth:request_uri:xyz"}}
			if loc.Path != "/authorize" || loc.Query().Encode() != want.Encode() {
				t.Errorf("redirect to %s, want /authorize with %s only", loc, want.Encode())
			}
			if !loginCookie {
				t.Error("no login cookie for the pushed flow")
			}
		})
	}
}
