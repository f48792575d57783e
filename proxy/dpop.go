package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

// DPoP at the upstreams (RFC 9449 section 7): a session whose access token
// is DPoP-bound (session.Session.DPoPKey) sends it as "Authorization: DPoP"
// with a fresh proof of the BFF's key for this method and upstream URL, on a
// route that does not opt out (Route.BearerOnly). An upstream's DPoP-Nonce is
// remembered per upstream origin and echoed; its use_dpop_nonce challenge is
// answered with one retry when the request can be sent again.

// maxReplayBody is the largest request body kept to answer a nonce
// challenge; a request with a larger or unsized body gets the upstream's
// 401 (the nonce is remembered, so the app's own retry passes).
const maxReplayBody = 64 << 10

// nonces are the upstreams' last DPoP-Nonce values by origin. Bounded by the
// configured routes' origins.
type nonces struct{ m sync.Map }

func (n *nonces) get(origin string) string {
	v, _ := n.m.Load(origin)
	s, _ := v.(string)
	return s
}

func (n *nonces) set(origin, nonce string) { n.m.Store(origin, nonce) }

func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// grant is the access token an upstream request presents: the session's,
// or a derived one; the zero grant is none. Held by value in forward: no
// allocation per request.
type grant struct {
	token   string
	dpopKey string   // the DPoP key it is bound to, "" for a bearer token
	bearer  []string // {"Bearer " + token}, shared and never modified
}

func sessionGrant(s *session.Session) grant {
	return grant{token: s.AccessToken, dpopKey: s.DPoPKey, bearer: s.BearerHeader()}
}

func tokensGrant(t *oauth.Tokens) grant {
	return grant{token: t.AccessToken, dpopKey: t.DPoPKey, bearer: []string{"Bearer " + t.AccessToken}}
}

// grantFor is what rt's upstream gets for s: its own token, or one derived
// for rt.
func (p *Proxy) grantFor(ctx context.Context, rt *route, s *session.Session) (grant, error) {
	if !rt.derives() {
		return sessionGrant(s), nil
	}
	t, err := p.derivedFor(ctx, rt, s, false)
	if err != nil {
		return grant{}, err
	}
	return tokensGrant(t), nil
}

// authorize sets the Authorization header of an outbound request with g on
// rt: DPoP with a proof when the token is bound and the route takes DPoP,
// else Bearer. It reports false, with no Authorization, when the token is
// bound to a key the BFF no longer holds (a refresh could not replace it).
func (p *Proxy) authorize(h http.Header, rt *route, g grant, method string, u *url.URL) bool {
	if g.dpopKey == "" || rt.BearerOnly {
		h["Authorization"] = g.bearer
		return true
	}
	if p.cfg.DPoP == nil {
		return false
	}
	proof, err := p.cfg.DPoP.Proof(g.dpopKey, method, u, g.token, p.nonces.get(origin(u)), p.now())
	if err != nil {
		p.log.Warn("no DPoP proof for the access token; forwarding without it", "route", rt.Path, "err", err)
		return false
	}
	h["Authorization"] = []string{"DPoP " + g.token}
	h["Dpop"] = []string{proof}
	return true
}

// replayable buffers req's body when it is small enough to send again and
// returns a function that rewinds it; nil when the request cannot be sent
// twice.
func replayable(req *http.Request) func() {
	if req.Body == nil || req.Body == http.NoBody {
		return func() {}
	}
	if req.ContentLength <= 0 || req.ContentLength > maxReplayBody {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	req.Body.Close()
	if err != nil || int64(len(b)) != req.ContentLength {
		// Let the transport report the short body as it would have.
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{err}))
		return nil
	}
	rewind := func() { req.Body = io.NopCloser(bytes.NewReader(b)) }
	rewind()
	return rewind
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.ErrUnexpectedEOF
	}
	return 0, e.err
}
