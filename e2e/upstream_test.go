package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Upstream is an existing API behind the BFF: it knows nothing about
// cookies and only accepts bearer JWTs issued by the provider for its
// audience.
type Upstream struct {
	srv      *httptest.Server
	verifier *oidc.IDTokenVerifier

	mu       sync.Mutex
	requests []UpstreamRequest
	tokens   []string // raw bearer tokens that verified, oldest first; never logged
}

// UpstreamRequest is what the upstream saw of one request. It holds names
// only, never header or cookie values.
type UpstreamRequest struct {
	Method           string
	Path             string
	HeaderNames      []string // canonical names, sorted
	CookieNames      []string // sorted
	AuthHeaders      int      // number of Authorization header values received
	HasAuthorization bool     // an Authorization header was present
	AuthOK           bool     // it was "Bearer <jwt>" and the JWT verified (sig, iss, aud, exp)
	Sub              string   // the verified token's subject
	AuthError        string   // why verification failed, for test messages
}

// upstreamClaims are the access-token claims the upstream reads.
type upstreamClaims struct {
	Sub      string   `json:"sub"`
	Aud      audience `json:"aud"`
	Exp      int64    `json:"exp"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
}

// audience accepts "aud" as a string or an array.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// startUpstream starts the upstream API. Tokens are verified against the
// provider's JWKS found by discovery: signature, iss == issuer, aud contains
// aud, exp in the future.
//
// Routes: GET /api/whoami -> {"sub","aud","exp"} (401 without a valid
// token); any other path (e.g. /api/echo) -> {"headers":[names],
// "cookies":[names],"has_authorization":bool,"auth_ok":bool} and 401 only
// when an Authorization header is present but invalid.
func startUpstream(t testing.TB, issuer, aud string) *Upstream {
	t.Helper()
	// The key set keeps using the context given to NewProvider for later
	// JWKS fetches, so it must live as long as the test: no deadline here.
	provider, err := oidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatalf("e2e: upstream discovery: %v", err)
	}
	u := &Upstream{verifier: provider.Verifier(&oidc.Config{ClientID: aud})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// URL is the upstream's base URL, http://127.0.0.1:PORT.
func (u *Upstream) URL() string { return u.srv.URL }

// Requests returns a copy of every request seen so far, oldest first.
func (u *Upstream) Requests() []UpstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.requests)
}

// Last returns the most recent request, or false when there was none.
func (u *Upstream) Last() (UpstreamRequest, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.requests) == 0 {
		return UpstreamRequest{}, false
	}
	return u.requests[len(u.requests)-1], true
}

// SeenTokens returns every distinct raw bearer token that verified, oldest
// first. They are real access tokens: compare with them, never log them.
func (u *Upstream) SeenTokens() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.tokens)
}

func (u *Upstream) rememberToken(raw string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !slices.Contains(u.tokens, raw) {
		u.tokens = append(u.tokens, raw)
	}
}

// Verify checks a bearer access token the way the upstream does and returns
// its claims.
func (u *Upstream) Verify(ctx context.Context, raw string) (sub string, aud []string, exp time.Time, err error) {
	tok, err := u.verifier.Verify(ctx, raw)
	if err != nil {
		return "", nil, time.Time{}, err
	}
	var c upstreamClaims
	if err := tok.Claims(&c); err != nil {
		return "", nil, time.Time{}, err
	}
	return c.Sub, c.Aud, time.Unix(c.Exp, 0), nil
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	rec := UpstreamRequest{Method: r.Method, Path: r.URL.Path}
	for name := range r.Header {
		rec.HeaderNames = append(rec.HeaderNames, name)
	}
	slices.Sort(rec.HeaderNames)
	for _, c := range r.Cookies() {
		rec.CookieNames = append(rec.CookieNames, c.Name)
	}
	slices.Sort(rec.CookieNames)
	authz := r.Header.Values("Authorization")
	rec.AuthHeaders = len(authz)
	rec.HasAuthorization = len(authz) > 0

	var claims upstreamClaims
	if len(authz) == 1 {
		raw, ok := strings.CutPrefix(authz[0], "Bearer ")
		if !ok {
			rec.AuthError = "not a bearer token"
		} else if tok, err := u.verifier.Verify(r.Context(), raw); err != nil {
			rec.AuthError = err.Error()
		} else if err := tok.Claims(&claims); err != nil {
			rec.AuthError = err.Error()
		} else {
			rec.AuthOK = true
			rec.Sub = claims.Sub
			u.rememberToken(raw)
		}
	} else if len(authz) > 1 {
		rec.AuthError = "several Authorization headers"
	}
	u.mu.Lock()
	u.requests = append(u.requests, rec)
	u.mu.Unlock()

	w.Header().Set("Cache-Control", "no-store")
	if (r.URL.Path == "/api/whoami" || rec.HasAuthorization) && !rec.AuthOK {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	switch r.URL.Path {
	case "/api/whoami":
		writeJSON(w, http.StatusOK, map[string]any{"sub": claims.Sub, "aud": claims.Aud, "exp": claims.Exp})
	default:
		writeJSON(w, http.StatusOK, map[string]any{
			"method":            r.Method,
			"path":              r.URL.Path,
			"headers":           rec.HeaderNames,
			"cookies":           rec.CookieNames,
			"has_authorization": rec.HasAuthorization,
			"auth_ok":           rec.AuthOK,
		})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
