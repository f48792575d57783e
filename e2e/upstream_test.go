package e2e

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Upstream is an existing API behind the BFF: it knows nothing about
// cookies and only accepts bearer JWTs issued by the provider for its
// audience.
type Upstream struct {
	srv      *httptest.Server
	verifier *oidc.IDTokenVerifier
	legacy   bool // ignores cnf: takes a DPoP-bound token as a bearer token

	mu         sync.Mutex
	requests   []UpstreamRequest
	tokens     []string        // raw bearer tokens that verified, oldest first; never logged
	jtis       map[string]bool // DPoP proof ids seen (RFC 9449 section 11.1 replay check)
	nonce      string          // when set, every DPoP proof must carry it
	challenges int             // use_dpop_nonce answers given
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
	AuthOK           bool     // it was "Bearer <jwt>" and the JWT verified (sig, iss, aud, exp); or, for a DPoP-bound token, "DPoP <jwt>" with a proof that verified
	DPoP             bool     // the token was DPoP-bound and its proof verified (key = cnf.jkt, htm, htu, ath, iat, unique jti, nonce)
	JKT              string   // the token's cnf.jkt, "" for a bearer token
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
	Cnf      struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
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
	u := &Upstream{verifier: provider.Verifier(&oidc.Config{ClientID: aud}), jtis: map[string]bool{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// startLegacyUpstream is an upstream that knows nothing of DPoP: it takes
// any valid token as a bearer token, bound or not.
func startLegacyUpstream(t testing.TB, issuer, aud string) *Upstream {
	u := startUpstream(t, issuer, aud)
	u.legacy = true
	return u
}

// RequireNonce makes every DPoP proof carry nonce from now on; a proof
// without it is answered 401 use_dpop_nonce with the nonce.
func (u *Upstream) RequireNonce(nonce string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.nonce = nonce
}

// Challenges is how many use_dpop_nonce answers the upstream gave.
func (u *Upstream) Challenges() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.challenges
}

// errNonce is a proof without the required nonce.
var errNonce = errors.New("DPoP proof without the required nonce")

// checkProof verifies the request's DPoP proof as RFC 9449 section 4.3 asks
// of a resource server, for token bound to jkt.
func (u *Upstream) checkProof(r *http.Request, token, jkt string) error {
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return fmt.Errorf("%d DPoP headers", len(proofs))
	}
	tok, err := jwt.ParseSigned(proofs[0], []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.PS256, jose.RS256})
	if err != nil {
		return fmt.Errorf("DPoP proof: %w", err)
	}
	h := tok.Headers[0]
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return errors.New("DPoP proof header: typ or jwk")
	}
	var c struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath"`
		Nonce string `json:"nonce"`
	}
	if err := tok.Claims(h.JSONWebKey.Key, &c); err != nil {
		return fmt.Errorf("DPoP proof signature: %w", err)
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	sum := sha256.Sum256([]byte(token))
	switch {
	case base64.RawURLEncoding.EncodeToString(tp) != jkt:
		return errors.New("DPoP proof by another key than the token's cnf.jkt")
	case c.HTM != r.Method:
		return fmt.Errorf("DPoP proof htm %q for a %s", c.HTM, r.Method)
	case c.HTU != u.srv.URL+r.URL.Path:
		return fmt.Errorf("DPoP proof htu %q for %s", c.HTU, u.srv.URL+r.URL.Path)
	case c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]):
		return errors.New("DPoP proof ath is not this token's")
	case time.Since(time.Unix(c.IAT, 0)).Abs() > time.Minute:
		return errors.New("DPoP proof iat out of window")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.jtis[c.JTI] || c.JTI == "" {
		return errors.New("DPoP proof replayed (jti seen)")
	}
	u.jtis[c.JTI] = true
	if u.nonce != "" && c.Nonce != u.nonce {
		u.challenges++
		return errNonce
	}
	return nil
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
	var proofErr error
	if len(authz) == 1 {
		scheme, raw, _ := strings.Cut(authz[0], " ")
		if scheme != "Bearer" && scheme != "DPoP" {
			rec.AuthError = "not a bearer or DPoP token"
		} else if tok, err := u.verifier.Verify(r.Context(), raw); err != nil {
			rec.AuthError = err.Error()
		} else if err := tok.Claims(&claims); err != nil {
			rec.AuthError = err.Error()
		} else if rec.JKT = claims.Cnf.JKT; u.legacy {
			if scheme == "Bearer" {
				rec.AuthOK, rec.Sub = true, claims.Sub
				u.rememberToken(raw)
			} else {
				rec.AuthError = "a legacy upstream takes bearer tokens only"
			}
		} else if rec.JKT == "" && scheme == "DPoP" {
			rec.AuthError = "DPoP scheme for a token that is not DPoP-bound"
		} else if rec.JKT != "" && scheme != "DPoP" {
			rec.AuthError = "a DPoP-bound token sent as a bearer token (RFC 9449 section 7.2)"
		} else if rec.JKT != "" {
			if proofErr = u.checkProof(r, raw, rec.JKT); proofErr != nil {
				rec.AuthError = proofErr.Error()
			} else {
				rec.AuthOK, rec.DPoP, rec.Sub = true, true, claims.Sub
				u.rememberToken(raw)
			}
		} else {
			rec.AuthOK, rec.Sub = true, claims.Sub
			u.rememberToken(raw)
		}
	} else if len(authz) > 1 {
		rec.AuthError = "several Authorization headers"
	}
	u.mu.Lock()
	u.requests = append(u.requests, rec)
	u.mu.Unlock()

	w.Header().Set("Cache-Control", "no-store")
	if errors.Is(proofErr, errNonce) {
		u.mu.Lock()
		w.Header().Set("DPoP-Nonce", u.nonce)
		u.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "use_dpop_nonce"})
		return
	}
	if (r.URL.Path == "/api/whoami" || rec.HasAuthorization) && !rec.AuthOK {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		if rec.JKT != "" {
			w.Header().Set("WWW-Authenticate", `DPoP algs="ES256 EdDSA", error="invalid_token"`)
		}
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
