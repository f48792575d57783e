package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	bffcrypto "github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/session"
)

// TestInterop runs the BFF's whole lifecycle against every provider of the
// matrix (interopStarters), in parallel: readiness while the provider is
// down and after, sign-in through its real pages, /auth/user, a proxied call
// the provider accepts, two refreshes, the provider down during a refresh,
// a replayed pre-refresh cookie, logout, back-channel logout, a refused
// consent and a client registered for another authentication method. A
// step a provider cannot do is a skip that says why (opProvider.Lacks).
func TestInterop(t *testing.T) {
	for _, s := range interopStarters {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			runInterop(t, s)
		})
	}
}

// interopRun is one provider's lifecycle in progress.
type interopRun struct {
	op  *opProvider
	api *opAPI
	bff *BFF
	br  *Browser // the signed-in user
	rts []string // refresh tokens seen, for the log check
}

func runInterop(t *testing.T, s interopStarter) {
	port := freePort(t)
	op := s.start(t, newOpURLs(port))
	r := &interopRun{op: op, api: startOpAPI(t, op)}

	// The BFF starts while the provider is down (it belongs to the whole
	// run, so it is started here, not in the subtest).
	op.Gate.Down()
	r.bff = startInteropBFF(t, op, port, r.api, interopBFFOptions{})
	mustRun(t, stepReadiness, func(t *testing.T) {
		waitReadyz(t, r.bff, http.StatusServiceUnavailable, 5*time.Second)
		// Sign-in cannot start: an honest 503, not a redirect to nowhere.
		login := newBrowser(t).Get(t, r.bff.URL()+"/auth/login?returnTo=/", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
		if login.Status != http.StatusServiceUnavailable {
			t.Errorf("/auth/login with the provider down: %d, want 503", login.Status)
		}
		op.Gate.Up(t)
		waitReadyz(t, r.bff, http.StatusOK, 40*time.Second)
	})
	mustRun(t, "sign_in", func(t *testing.T) {
		r.br = newBrowser(t)
		resp := opSignIn(t, r.br, r.bff, op, false)
		loc, ok := resp.Location()
		if resp.Status != http.StatusFound && resp.Status != http.StatusSeeOther || !ok || loc.Query().Has("login_error") {
			t.Fatalf("callback: %d to %q: %.300s", resp.Status, resp.Header.Get("Location"), resp.Body)
		}
	})
	var sub string
	mustRun(t, "user", func(t *testing.T) {
		var user struct {
			Sub    string         `json:"sub"`
			Claims map[string]any `json:"claims"`
		}
		r.getJSON(t, "/auth/user", http.StatusOK, &user)
		sub = user.Sub
		if sub == "" {
			t.Fatal("/auth/user without sub")
		}
		for k, want := range op.Claims {
			if got := fmt.Sprint(user.Claims[k]); got != want {
				t.Errorf("/auth/user claim %s = %q, want %q (claims %v)", k, got, want, user.Claims)
			}
		}
		t.Run("userinfo_only_claims", func(t *testing.T) {
			if op.lacks(t, stepUserInfo) {
				return
			}
			// At least one claim /auth/user shows is not in the ID token:
			// it can only have come from userinfo (oidc.userinfo).
			idt := jwtClaims(t, r.session(t).IDToken)
			var only []string
			for k := range op.Claims {
				if _, inIDToken := idt[k]; !inIDToken {
					only = append(only, k)
				}
			}
			if len(only) == 0 {
				t.Fatalf("every expected claim is in the ID token: nothing proves userinfo was used")
			}
			t.Logf("claims from userinfo only: %v", only)
		})
	})
	mustRun(t, "api_call", func(t *testing.T) {
		var who struct{ Sub string }
		r.getJSON(t, "/api/whoami", http.StatusOK, &who)
		if who.Sub != sub {
			t.Errorf("the provider says the bearer is %q's, /auth/user says %q", who.Sub, sub)
		}
	})
	signedIn := r.br.Snapshot() // the cookie before any refresh
	mustRun(t, "refresh_twice", func(t *testing.T) {
		rts := []string{r.session(t).RefreshToken}
		for i := 1; i <= 2; i++ {
			r.waitRefreshDue(t)
			r.getJSON(t, "/api/whoami", http.StatusOK, nil)
			if n := len(r.api.Bearers()); n != i+1 {
				t.Fatalf("after refresh %d the API saw %d distinct tokens, want %d", i, n, i+1)
			}
			rts = append(rts, r.session(t).RefreshToken)
		}
		r.rts = append(r.rts, rts...)
		if op.lacks(t, stepRotation) {
			return
		}
		if rts[0] == rts[1] || rts[1] == rts[2] || rts[0] == rts[2] {
			t.Errorf("refresh tokens did not rotate (%d distinct of 3)", distinct(rts))
		}
	})
	// The provider goes down when a refresh is due.
	r.waitRefreshDue(t)
	op.Gate.Down()
	before := len(r.api.Bearers())
	mustRun(t, "provider_down_token_valid", func(t *testing.T) {
		// Due for refresh but still valid: forwarded as it is.
		r.getJSON(t, "/api/whoami", http.StatusOK, nil)
		if n := len(r.api.Bearers()); n != before {
			t.Errorf("the API saw a new token while the provider was down")
		}
	})
	t.Run("provider_down_token_expired", func(t *testing.T) {
		if op.lacks(t, stepExpiry) {
			return
		}
		time.Sleep(time.Until(r.session(t).AccessExpiryTime()) + 1500*time.Millisecond)
		resp := r.br.Get(t, r.bff.URL()+"/api/whoami", fetchHeaders(http.MethodGet, r.bff.URL()+"/api/whoami", nil))
		assertJSONError(t, resp, http.StatusServiceUnavailable)
		if clearsSession(resp) {
			t.Fatalf("the session was cleared while the provider was down")
		}
	})
	op.Gate.Up(t)
	mustRun(t, "provider_back", func(t *testing.T) {
		r.getJSON(t, "/api/whoami", http.StatusOK, nil)
		if n := len(r.api.Bearers()); n != before+1 {
			t.Errorf("provider back: the API saw %d new tokens, want 1", n-before)
		}
	})
	t.Run("replayed_pre_refresh_cookie", func(t *testing.T) {
		if op.lacks(t, stepRotation) {
			return
		}
		// The successor grace (1 s) is long over: the old refresh token is
		// dead at the provider, whatever error code it uses to say so.
		old := newBrowser(t)
		old.Restore(signedIn)
		resp := old.Get(t, r.bff.URL()+"/api/whoami", fetchHeaders(http.MethodGet, r.bff.URL()+"/api/whoami", nil))
		assertJSONError(t, resp, http.StatusUnauthorized)
		if !clearsSession(resp) {
			t.Error("the refused old cookie was not cleared")
		}
		// And it stays a clean 401 without another provider call.
		again := old.Get(t, r.bff.URL()+"/auth/user", nil)
		assertJSONError(t, again, http.StatusUnauthorized)
	})
	t.Run("logout", func(t *testing.T) { r.logout(t) })
	t.Run(stepBackchannel, func(t *testing.T) { r.backchannel(t) })
	t.Run(stepDenyConsent, func(t *testing.T) {
		if op.lacks(t, stepDenyConsent) {
			return
		}
		br := newBrowser(t)
		resp := opSignIn(t, br, r.bff, op, true)
		loc, ok := resp.Location()
		if !ok || loc.Query().Get("login_error") != "access_denied" {
			t.Fatalf("refused consent: %d to %q, want a redirect with login_error=access_denied", resp.Status, resp.Header.Get("Location"))
		}
		if u := br.Get(t, r.bff.URL()+"/auth/user", nil); u.Status != http.StatusUnauthorized {
			t.Errorf("/auth/user after a refused consent: %d, want 401", u.Status)
		}
	})
	t.Run(stepClientMethod, func(t *testing.T) { r.clientMethodMismatch(t, port) })
	assertNoSecretsLogged(t, r)
}

// getJSON makes a same-origin fetch as the signed-in user and decodes it.
func (r *interopRun) getJSON(t *testing.T, path string, want int, v any) {
	t.Helper()
	u := r.bff.URL() + path
	resp := r.br.Get(t, u, fetchHeaders(http.MethodGet, u, nil))
	if resp.Status != want {
		t.Fatalf("GET %s: %d, want %d: %.300s", path, resp.Status, want, resp.Body)
	}
	if v != nil {
		if err := json.Unmarshal(resp.Body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
}

// session opens the signed-in browser's session cookie with the BFF's key
// (the test knows the master secret): it shows the refresh token and the
// access token's expiry, which nothing else outside the BFF can.
func (r *interopRun) session(t *testing.T) *session.Session {
	t.Helper()
	return openSession(t, r.bff, r.br)
}

func openSession(t *testing.T, b *BFF, br *Browser) *session.Session {
	t.Helper()
	secret, err := keys.ParseSecret(b.opts.KeySecret)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.New(keys.Config{Secrets: [][]byte{secret}, Rotation: 24 * time.Hour, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := bffcrypto.NewSealer(bffcrypto.Config{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := bffcrypto.NewChunker(bffcrypto.ChunkConfig{Name: sessionPrefix, SameSite: http.SameSiteLaxMode})
	if err != nil {
		t.Fatal(err)
	}
	store, err := session.NewStore(session.Config{Sealer: sl, Chunker: ch, CacheEntries: -1})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, b.URL()+"/", nil)
	u, _ := url.Parse(b.URL())
	req.Header.Set("Cookie", br.jar.header(u))
	s, err := store.Load(req)
	if err != nil {
		t.Fatalf("open the session cookie: %v", err)
	}
	return s
}

// waitRefreshDue sleeps until the access token is inside the BFF's refresh
// margin (AccessTTL - 2 s by default: 2 s after it was issued).
func (r *interopRun) waitRefreshDue(t *testing.T) {
	t.Helper()
	s := r.session(t)
	due := s.AccessExpiryTime().Add(-(r.op.AccessTTL - 2*time.Second))
	time.Sleep(time.Until(due) + 300*time.Millisecond)
}

func distinct(xs []string) int {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return len(m)
}

// clearsSession reports whether resp deletes the session cookie.
func clearsSession(resp *Response) bool {
	for _, c := range resp.SetCookies {
		if strings.HasPrefix(c.Name, sessionPrefix+".") && (c.MaxAge < 0 || c.Value == "") {
			return true
		}
	}
	return false
}

// jwtClaims decodes a JWT's payload without verifying it (the BFF did).
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
