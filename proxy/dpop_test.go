package proxy_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// dpopKeys is a DPoP key set of new P-256 keys, one per kid; it also
// returns each key's thumbprint, in order.
func dpopKeys(t *testing.T, kids ...string) (*oauth.DPoPKeys, []string) {
	t.Helper()
	var set jose.JSONWebKeySet
	var jkts []string
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid})
		tp, _ := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
		jkts = append(jkts, base64.RawURLEncoding.EncodeToString(tp))
	}
	b, _ := json.Marshal(set)
	dk, err := oauth.ParseDPoPKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return dk, jkts
}

// proof is a verified DPoP proof's key thumbprint and claims.
type proof struct {
	jkt                       string
	JTI, HTM, HTU, ATH, Nonce string
}

// verifyProof checks what the upstream received as an RFC 9449 resource
// server would: one DPoP header, typ dpop+jwt, the signature by the public
// key in its header; and returns it.
func verifyProof(t *testing.T, s seen) proof {
	t.Helper()
	v := s.Header.Values("DPoP")
	if len(v) != 1 {
		t.Fatalf("upstream got %d DPoP headers, want 1", len(v))
	}
	tok, err := jwt.ParseSigned(v[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("DPoP proof: %v", err)
	}
	h := tok.Headers[0]
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("DPoP proof header: typ %v, jwk %v", h.ExtraHeaders["typ"], h.JSONWebKey)
	}
	var p proof
	var c struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		ATH   string `json:"ath"`
		Nonce string `json:"nonce"`
	}
	if err := tok.Claims(h.JSONWebKey.Key, &c); err != nil {
		t.Fatalf("DPoP proof signature: %v", err)
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	p.jkt = base64.RawURLEncoding.EncodeToString(tp)
	p.JTI, p.HTM, p.HTU, p.ATH, p.Nonce = c.JTI, c.HTM, c.HTU, c.ATH, c.Nonce
	return p
}

func ath(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestDPoPForward: a DPoP-bound session's token goes out as "Authorization:
// DPoP" with a fresh proof for this method and upstream URL (no query),
// hashing this token; a bearer session's as Bearer with no proof; a
// BearerOnly route sends even a bound token as Bearer. A DPoP header from
// the client never reaches the upstream.
func TestDPoPForward(t *testing.T) {
	keys, jkts := dpopKeys(t, "d1")
	h := newHarness(t, func(c *proxy.Config, up *upstream) {
		c.DPoP = keys
		c.Routes = append(c.Routes, proxy.Route{Path: "/legacy/", Upstream: up.url(t, ""), BearerOnly: true})
	})
	h.sess.sess.DPoPKey = jkts[0]
	jtis := map[string]bool{}
	for range 2 {
		r := httptest.NewRequest(http.MethodPatch, "/api/orders/7?expand=items", nil)
		r.Header.Set("DPoP", "a-proof-the-client-made")
		h.wantOK(h.serve(r))
		s := h.up.last(t)
		if got := bearer(t, s); got != "DPoP AT-old" {
			t.Fatalf("Authorization %q, want DPoP AT-old", got)
		}
		p := verifyProof(t, s)
		if p.jkt != jkts[0] || p.HTM != http.MethodPatch || p.HTU != h.up.URL+"/api/orders/7" || p.ATH != ath("AT-old") || p.Nonce != "" {
			t.Errorf("proof %+v, want by the bound key for PATCH %s/api/orders/7 with AT-old's hash", p, h.up.URL)
		}
		if jtis[p.JTI] {
			t.Error("a proof's jti repeats")
		}
		jtis[p.JTI] = true
	}

	r := httptest.NewRequest(http.MethodGet, "/legacy/x", nil)
	r.Header.Set("DPoP", "a-proof-the-client-made")
	h.wantOK(h.serve(r))
	if s := h.up.last(t); bearer(t, s) != "Bearer AT-old" || len(s.Header.Values("DPoP")) != 0 {
		t.Errorf("BearerOnly route: Authorization %q, DPoP %v; want Bearer and no proof", bearer(t, s), s.Header.Values("DPoP"))
	}

	h.sess.sess.DPoPKey = "" // a bearer token (signed in before DPoP was on)
	r = httptest.NewRequest(http.MethodGet, "/api/x", nil)
	r.Header.Set("DPoP", "a-proof-the-client-made")
	h.wantOK(h.serve(r))
	if s := h.up.last(t); bearer(t, s) != "Bearer AT-old" || len(s.Header.Values("DPoP")) != 0 {
		t.Errorf("bearer session: Authorization %q, DPoP %v; want Bearer and no proof", bearer(t, s), s.Header.Values("DPoP"))
	}
}

// nonceUpstream answers 401 use_dpop_nonce to every request whose proof
// lacks the current nonce, and may hand out a new nonce on a success.
type nonceUpstream struct {
	mu     sync.Mutex
	want   string // the nonce a proof must carry
	next   string // handed out on the next success, then required
	always bool   // challenge every request
	bodies []string
}

func (n *nonceUpstream) handler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n.mu.Lock()
		defer n.mu.Unlock()
		n.bodies = append(n.bodies, string(body))
		p := verifyProof(t, seen{Header: r.Header})
		if n.always || p.Nonce != n.want {
			w.Header().Set("DPoP-Nonce", n.want)
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if n.next != "" {
			w.Header().Set("DPoP-Nonce", n.next)
			n.want, n.next = n.next, ""
		}
		io.WriteString(w, "ok")
	}
}

// TestDPoPNonce: an upstream's use_dpop_nonce challenge is answered with one
// retry carrying its nonce, a small body sent again whole; the nonce, and
// any newer one the upstream hands out, is echoed from then on. A body too
// large to keep, or a second challenge, gets the 401.
func TestDPoPNonce(t *testing.T) {
	keys, jkts := dpopKeys(t, "d1")
	h := newHarness(t, func(c *proxy.Config, up *upstream) { c.DPoP = keys })
	h.sess.sess.DPoPKey = jkts[0]
	nu := &nonceUpstream{want: "n-1"}
	h.up.handler = nu.handler(t)

	step := func(name string, r *http.Request, wantStatus, wantTrips int, wantNonces ...string) {
		t.Helper()
		before := len(h.up.requests())
		w := h.serve(r)
		reqs := h.up.requests()[before:]
		if w.Code != wantStatus || len(reqs) != wantTrips {
			t.Fatalf("%s: status %d after %d upstream requests, want %d after %d", name, w.Code, len(reqs), wantStatus, wantTrips)
		}
		for i, s := range reqs {
			if p := verifyProof(t, s); p.Nonce != wantNonces[i] {
				t.Errorf("%s: request %d carried nonce %q, want %q", name, i, p.Nonce, wantNonces[i])
			}
		}
	}
	step("first request: challenged, retried", httptest.NewRequest(http.MethodGet, "/api/a", nil), 200, 2, "", "n-1")
	nu.next = "n-2"
	step("the nonce is remembered", httptest.NewRequest(http.MethodGet, "/api/b", nil), 200, 1, "n-1")
	step("a newer nonce from a success", httptest.NewRequest(http.MethodGet, "/api/c", nil), 200, 1, "n-2")

	nu.mu.Lock()
	nu.want, nu.bodies = "n-3", nil
	nu.mu.Unlock()
	step("a small body is sent again", httptest.NewRequest(http.MethodPost, "/api/d", strings.NewReader(`{"qty":2}`)), 200, 2, "n-2", "n-3")
	if nu.bodies[0] != `{"qty":2}` || nu.bodies[1] != `{"qty":2}` {
		t.Errorf("bodies %q, want the whole body twice", nu.bodies)
	}

	nu.mu.Lock()
	nu.want = "n-4"
	nu.mu.Unlock()
	big := strings.Repeat("x", 64<<10+1)
	step("a large body is not kept", httptest.NewRequest(http.MethodPut, "/api/e", strings.NewReader(big)), 401, 1, "n-3")
	step("but its nonce is", httptest.NewRequest(http.MethodGet, "/api/f", nil), 200, 1, "n-4")

	nu.mu.Lock()
	nu.always = true
	nu.mu.Unlock()
	step("one retry only", httptest.NewRequest(http.MethodGet, "/api/g", nil), 401, 2, "n-4", "n-4")
	if h.ref.Calls() != 0 {
		t.Errorf("%d refreshes: a nonce challenge is not an invalid token", h.ref.Calls())
	}
}

// TestDPoPKeyRotatedOut: a token bound to a key still in the set keeps
// being used with it; one bound to a key rotated out is refreshed before
// the request even if it is not expiring, and the new token (bound to the
// current key) goes out with the current key's proof.
func TestDPoPKeyRotatedOut(t *testing.T) {
	both, jkts := dpopKeys(t, "new", "old")
	h := newHarness(t, func(c *proxy.Config, up *upstream) { c.DPoP = both })
	h.sess.sess.DPoPKey = jkts[1]
	h.ref.tokens.DPoPKey = jkts[0]
	h.wantOK(h.get("/api/x"))
	if p := verifyProof(t, h.up.last(t)); p.jkt != jkts[1] || h.ref.Calls() != 0 {
		t.Fatalf("old key still held: proof by %s after %d refreshes, want the old key and none", p.jkt, h.ref.Calls())
	}

	newOnly, _ := dpopKeys(t, "other")
	both.Replace(newOnly)
	h.ref.tokens.DPoPKey = both.Binding()
	h.wantOK(h.get("/api/x"))
	s := h.up.last(t)
	if h.ref.Calls() != 1 || bearer(t, s) != "DPoP AT-new" {
		t.Fatalf("old key gone: %d refreshes, Authorization %q; want one refresh and the new token", h.ref.Calls(), bearer(t, s))
	}
	if p := verifyProof(t, s); p.jkt != both.Binding() || p.ATH != ath("AT-new") {
		t.Errorf("proof by %s for %s, want the current key for AT-new", p.jkt, p.ATH)
	}
	if saved := h.sess.lastSaved(t); saved.DPoPKey != both.Binding() {
		t.Errorf("the saved session is bound to %q, want the current key", saved.DPoPKey)
	}
}

// TestDPoPInvalidTokenRetry: an upstream's DPoP invalid_token challenge
// forces a refresh and one retry with the new token and a proof for it.
func TestDPoPInvalidTokenRetry(t *testing.T) {
	keys, jkts := dpopKeys(t, "d1")
	h := newHarness(t, func(c *proxy.Config, up *upstream) { c.DPoP = keys })
	h.sess.sess.DPoPKey = jkts[0]
	h.ref.tokens.DPoPKey = jkts[0]
	h.up.handler = refuseTokens(`DPoP error="invalid_token"`, func(auth string) bool { return auth == "DPoP AT-old" })
	h.wantOK(h.get("/api/x"))
	reqs := h.up.requests()
	if len(reqs) != 2 || h.ref.Calls() != 1 {
		t.Fatalf("%d upstream requests, %d refreshes; want 2 and 1", len(reqs), h.ref.Calls())
	}
	first, second := verifyProof(t, reqs[0]), verifyProof(t, reqs[1])
	if bearer(t, reqs[1]) != "DPoP AT-new" || second.ATH != ath("AT-new") || second.JTI == first.JTI {
		t.Errorf("retry: Authorization %q, ath %q, same jti %v; want AT-new with a new proof for it", bearer(t, reqs[1]), second.ATH, second.JTI == first.JTI)
	}
}

// TestDPoPInvalidTokenRetryToBearer: when the forced refresh brings a
// bearer token (the provider stopped binding), the retry carries it as
// Bearer and the first try's proof is gone.
func TestDPoPInvalidTokenRetryToBearer(t *testing.T) {
	keys, jkts := dpopKeys(t, "d1")
	h := newHarness(t, func(c *proxy.Config, up *upstream) { c.DPoP = keys })
	h.sess.sess.DPoPKey = jkts[0]
	h.up.handler = refuseTokens(`DPoP error="invalid_token"`, func(auth string) bool { return auth == "DPoP AT-old" })
	h.wantOK(h.get("/api/x"))
	reqs := h.up.requests()
	if len(reqs) != 2 || bearer(t, reqs[1]) != "Bearer AT-new" || len(reqs[1].Header.Values("DPoP")) != 0 {
		t.Fatalf("retry: %d requests, Authorization %q, DPoP %d; want Bearer AT-new without a proof", len(reqs), bearer(t, reqs[len(reqs)-1]), len(reqs[len(reqs)-1].Header.Values("DPoP")))
	}
}

// refuseTokens is an upstream handler answering 401 with the challenge to
// every request whose Authorization refused names, and "ok" to the others.
func refuseTokens(challenge string, refused func(auth string) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if refused(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}
}
