package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/oauth"
)

// scriptedProvider is a provider's discovery document and a token endpoint
// whose answer each test sets: enough for a refresh, which needs neither a
// sign-in nor an ID token. It records the refresh tokens it is sent.
type scriptedProvider struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   string
	sent   []string
}

func newScriptedProvider(t *testing.T) *scriptedProvider {
	t.Helper()
	p := &scriptedProvider{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeDiscovery(w, p.URL, map[string]any{
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.sent = append(p.sent, r.PostFormValue("refresh_token"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(p.status)
		fmt.Fprint(w, p.body)
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *scriptedProvider) answer(status int, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body, p.sent = status, body, nil
}

func (p *scriptedProvider) refreshes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// forwardMember is a clustered Server whose internal listener is an
// httptest server; handler, when set, answers there instead of the
// member's own Handler (a scripted owner, or one that does not answer).
type forwardMember struct {
	*Server
	mu      sync.Mutex
	handler http.HandlerFunc
	hits    int
}

func (m *forwardMember) script(h http.HandlerFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handler, m.hits = h, 0
}

func (m *forwardMember) requests() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits
}

func (m *forwardMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	h := m.handler
	m.hits++
	m.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	m.Handler().ServeHTTP(w, r)
}

// newForwardMember starts a member named name against the provider at
// issuer, joining join, with its metadata loaded. internal false gives it
// no internal URL (no metadata in the cluster: it is never asked).
func newForwardMember(t *testing.T, name, issuer string, internal bool, join ...string) (*forwardMember, string) {
	t.Helper()
	m := &forwardMember{}
	var internalURL string
	if internal {
		ts := httptest.NewServer(m)
		t.Cleanup(ts.Close)
		internalURL = ts.URL
	}
	bind := freeGossipPort(t)
	s := newTestServer(t, issuer, func(c *Config) {
		c.Cluster = &cluster.Config{Bind: bind, Join: join, Name: name, Secret: []byte("0123456789abcdef0123456789abcdef")}
		c.InternalURL = internalURL
	})
	m.Server = s
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the Close newTestServer registered
	if err := s.cluster.Run(ctx); err != nil {
		t.Fatalf("%s: cluster.Run: %v", name, err)
	}
	if err := s.idp.Discover(ctx); err != nil {
		t.Fatalf("%s: discovery: %v", name, err)
	}
	return m, bind
}

// sessionOwnedBy finds a session id whose rendezvous order starts with
// names, in that order.
func sessionOwnedBy(t *testing.T, members []cluster.Member, names ...string) string {
	t.Helper()
	for i := range 100000 {
		sid := fmt.Sprintf("sid-%d", i)
		order := rendezvous(members, sid)
		ok := true
		for j, n := range names {
			ok = ok && order[j].Name == n
		}
		if ok {
			return sid
		}
	}
	t.Fatalf("no session id ordered %v", names)
	return ""
}

// sealedAnswer is a scripted owner: it opens the request with the cluster
// key and answers with what edit makes of a response bound to it.
func sealedAnswer(t *testing.T, owner *forwardMember, purpose string, edit func(*refreshResponse)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body [64 << 10]byte
		n, _ := r.Body.Read(body[:])
		plain, _, err := owner.owner.sealer.Open(purposeRefreshRequest, string(body[:n]))
		var req refreshRequest
		if err != nil || json.Unmarshal(plain, &req) != nil {
			t.Errorf("scripted owner: request does not open: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ans := refreshResponse{JTI: req.JTI, Tokens: &oauth.Tokens{AccessToken: "AT-scripted", Expiry: time.Now().Add(time.Hour)}}
		edit(&ans)
		out, _ := json.Marshal(ans)
		p := purposeRefreshResponse
		if purpose == "request" {
			p = purposeRefreshRequest
		}
		sealed, err := owner.owner.sealer.Seal(p, out)
		if err != nil {
			t.Error(err)
		}
		w.Write([]byte(sealed))
	}
}

// TestRefreshForwardedToOwner: a member asks the owner of a session (the
// first in its rendezvous order) to refresh it, over the internal endpoint,
// and passes on the owner's outcome: its tokens, or that the grant is dead,
// the provider down, or the client refused. The owner redeems the refresh
// token exactly once. A member that does not answer, or answers with
// anything not sealed and bound to the request, is skipped for the next in
// order; when this member comes first, it refreshes itself (ok false) and
// nobody is asked. Every case is a control for the others' counters.
func TestRefreshForwardedToOwner(t *testing.T) {
	idp := newScriptedProvider(t)
	a, addr := newForwardMember(t, "member-a", idp.URL, true)
	b, _ := newForwardMember(t, "member-b", idp.URL, true, addr)
	// Two members are a cluster: the owner is asked.
	for deadline := time.Now().Add(5 * time.Second); len(a.cluster.Members()) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("member-a sees %d members, want 2", len(a.cluster.Members()))
		}
	}
	idp.answer(200, `{"access_token":"AT-two","token_type":"Bearer","expires_in":300}`)
	if tok, ok, err := a.owner.RefreshAt(context.Background(), sessionOwnedBy(t, a.cluster.Members(), "member-b"), "RT-two", "alice"); err != nil || !ok || tok == nil || b.requests() != 1 {
		t.Fatalf("two members: RefreshAt = %v, %v, %v after %d requests to member-b; want member-b's tokens", tok, ok, err, b.requests())
	}
	c, _ := newForwardMember(t, "member-c", idp.URL, true, addr)
	d, _ := newForwardMember(t, "member-d", idp.URL, false, addr) // no internal URL
	for deadline := time.Now().Add(5 * time.Second); len(a.cluster.Members()) < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("member-a sees %d members, want 4", len(a.cluster.Members()))
		}
	}
	members := a.cluster.Members()
	ownedByB := sessionOwnedBy(t, members, "member-b")
	bThenC := sessionOwnedBy(t, members, "member-b", "member-c")
	bThenA := sessionOwnedBy(t, members, "member-b", "member-a")
	ownedByA := sessionOwnedBy(t, members, "member-a")
	dThenA := sessionOwnedBy(t, members, "member-d", "member-a")

	// silent does not answer: the connection is dropped.
	silent := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	notForwarded := func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
		t.Helper()
		if tok != nil || ok || err != nil {
			t.Errorf("RefreshAt = %v, %v, %v; want nil, false, nil (refresh here)", tok, ok, err)
		}
	}
	const tokens = `{"access_token":"AT-2","token_type":"Bearer","expires_in":300,"refresh_token":"RT-2"}`
	tests := []struct {
		name      string
		sid       string
		status    int    // the provider's answer
		body      string //
		b         http.HandlerFunc
		cancelled bool
		check     func(t *testing.T, tok *oauth.Tokens, ok bool, err error)
		sent      int // refreshes the provider sees
		forwarded float64
		lost      float64 // owners that did not answer
		bHits     int
		cHits     int
	}{
		{name: "owner refreshes", sid: ownedByB, status: 200, body: tokens, sent: 1, forwarded: 1, bHits: 1,
			check: func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
				if err != nil || !ok || tok == nil || tok.AccessToken != "AT-2" || tok.RefreshToken != "RT-2" {
					t.Errorf("RefreshAt = %+v, %v, %v; want the owner's AT-2 and RT-2", tok, ok, err)
				}
			}},
		{name: "grant dead at the owner", sid: ownedByB, status: 400, body: `{"error":"invalid_grant"}`, sent: 1, forwarded: 1, bHits: 1,
			check: wantOwnerErr(oauth.ErrReauthRequired)},
		{name: "provider failing at the owner", sid: ownedByB, status: 500, body: `{"error":"server_error"}`, sent: 1, forwarded: 1, bHits: 1,
			check: wantOwnerErr(oauth.ErrProvider)},
		{name: "client refused at the owner", sid: ownedByB, status: 401, body: `{"error":"invalid_client"}`, sent: 1, forwarded: 1, bHits: 1,
			check: wantOwnerErr(oauth.ErrClientAuth)},
		{name: "owner's refresh failed otherwise", sid: ownedByB, forwarded: 1, bHits: 1,
			b: sealedAnswer(t, b, "response", func(r *refreshResponse) { r.Error, r.Tokens = "error", nil }),
			check: func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
				if tok != nil || !ok || err == nil || errors.Is(err, oauth.ErrReauthRequired) || errors.Is(err, oauth.ErrProvider) || errors.Is(err, oauth.ErrClientAuth) {
					t.Errorf("RefreshAt = %v, %v, %v; want ok and a plain error", tok, ok, err)
				}
			}},
		{name: "scripted owner's tokens", sid: ownedByB, forwarded: 1, bHits: 1,
			b: sealedAnswer(t, b, "response", func(*refreshResponse) {}),
			check: func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
				if err != nil || !ok || tok == nil || tok.AccessToken != "AT-scripted" {
					t.Errorf("RefreshAt = %+v, %v, %v; want the scripted owner's tokens", tok, ok, err)
				}
			}},
		{name: "answer for another request", sid: bThenA, lost: 1, bHits: 1, check: notForwarded,
			b: sealedAnswer(t, b, "response", func(r *refreshResponse) { r.JTI = "other" })},
		{name: "answer without tokens", sid: bThenA, lost: 1, bHits: 1, check: notForwarded,
			b: sealedAnswer(t, b, "response", func(r *refreshResponse) { r.Tokens = nil })},
		{name: "answer without an access token", sid: bThenA, lost: 1, bHits: 1, check: notForwarded,
			b: sealedAnswer(t, b, "response", func(r *refreshResponse) { r.Tokens.AccessToken = "" })},
		{name: "answer sealed as a request", sid: bThenA, lost: 1, bHits: 1, check: notForwarded,
			b: sealedAnswer(t, b, "request", func(*refreshResponse) {})},
		{name: "answer not sealed", sid: bThenA, lost: 1, bHits: 1, check: notForwarded,
			b: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tokens)) }},
		{name: "answer not 200", sid: bThenA, lost: 1, bHits: 1, check: notForwarded,
			b: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }},
		{name: "owner silent, next in order refreshes", sid: bThenC, status: 200, body: tokens, sent: 1, forwarded: 1, lost: 1, bHits: 1, cHits: 1,
			b: silent,
			check: func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
				if err != nil || !ok || tok == nil || tok.AccessToken != "AT-2" {
					t.Errorf("RefreshAt = %+v, %v, %v; want member-c's AT-2", tok, ok, err)
				}
			}},
		{name: "owner silent, this member next", sid: bThenA, lost: 1, bHits: 1, b: silent, check: notForwarded},
		{name: "request cancelled: nobody else asked", sid: bThenC, lost: 1, cancelled: true, check: notForwarded},
		{name: "this member owns the session", sid: ownedByA, check: notForwarded},
		{name: "owner without internal URL is skipped", sid: dThenA, check: notForwarded},
		{name: "no session id", sid: "", check: notForwarded},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One refresh token per case: the owner remembers a refresh it
			// did for a while (the successor grace) and answers it again.
			rt := fmt.Sprintf("RT-%d", i)
			idp.answer(tt.status, tt.body)
			b.script(tt.b)
			c.script(nil)
			d.script(nil)
			fwd, lost := counterValue(t, a.metrics.ownerForwarded), counterValue(t, a.metrics.ownerUnreachable)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancelled {
				cancel()
			}
			tok, ok, err := a.owner.RefreshAt(ctx, tt.sid, rt, "alice")
			cancel()
			tt.check(t, tok, ok, err)
			if got := idp.refreshes(); len(got) != tt.sent || (tt.sent > 0 && got[0] != rt) {
				t.Errorf("the provider saw refresh tokens %q, want %s %d time(s)", got, rt, tt.sent)
			}
			if got := counterValue(t, a.metrics.ownerForwarded) - fwd; got != tt.forwarded {
				t.Errorf("bff_refresh_forwarded_total moved by %v, want %v", got, tt.forwarded)
			}
			if got := counterValue(t, a.metrics.ownerUnreachable) - lost; got != tt.lost {
				t.Errorf("owner unreachable counter moved by %v, want %v", got, tt.lost)
			}
			if got := b.requests(); got != tt.bHits {
				t.Errorf("member-b was asked %d times, want %d", got, tt.bHits)
			}
			if got := c.requests(); got != tt.cHits {
				t.Errorf("member-c was asked %d times, want %d", got, tt.cHits)
			}
		})
	}

	// What the owner is sent: addressed to it, fresh, one id per request,
	// sealed, at the internal path.
	t.Run("request as sent", func(t *testing.T) {
		var seen []refreshRequest
		b.script(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != internalRefreshPath || r.Header.Get("Content-Type") != "application/jose" {
				t.Errorf("owner asked with %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			}
			var body [64 << 10]byte
			n, _ := r.Body.Read(body[:])
			plain, _, err := b.owner.sealer.Open(purposeRefreshRequest, string(body[:n]))
			var req refreshRequest
			if err != nil || json.Unmarshal(plain, &req) != nil {
				t.Fatalf("request does not open: %v", err)
			}
			seen = append(seen, req)
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		for range 2 {
			a.owner.RefreshAt(context.Background(), bThenA, "RT-1", "alice")
		}
		if len(seen) != 2 {
			t.Fatalf("owner asked %d times, want 2", len(seen))
		}
		now := time.Now().Unix()
		for _, req := range seen {
			if req.Audience != "member-b" || req.SessionID != bThenA || req.RefreshToken != "RT-1" || req.Subject != "alice" ||
				req.IssuedAt < now-5 || req.IssuedAt > now+1 || len(req.JTI) < 20 {
				t.Errorf("request %+v, want for member-b, this session, RT-1, alice, issued now, with an id", req)
			}
		}
		if seen[0].JTI == seen[1].JTI {
			t.Error("two requests share an id")
		}
	})
}

func wantOwnerErr(want error) func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
	return func(t *testing.T, tok *oauth.Tokens, ok bool, err error) {
		t.Helper()
		if tok != nil || !ok || !errors.Is(err, want) {
			t.Errorf("RefreshAt = %v, %v, %v; want ok and %v", tok, ok, err, want)
		}
	}
}
