package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/cluster"
	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// internalRefreshPath is where an instance asks the owner of a session to
// refresh it. Requests and answers are sealed with a key derived from the
// cluster secret: a forged, altered or replayed request is refused.
const internalRefreshPath = "/_bff/refresh"

const (
	purposeRefreshRequest  crypto.Purpose = "refresh-request"
	purposeRefreshResponse crypto.Purpose = "refresh-response"
	// internalMaxAge bounds how old a forwarded request may be.
	internalMaxAge = 30 * time.Second
	// ownerTimeout bounds asking the owner; past it the caller refreshes
	// itself (and counts it).
	ownerTimeout = 5 * time.Second
)

var errForgedInternal = errors.New("server: internal request refused")

// refreshRequest is what a forwarding instance sends, sealed.
type refreshRequest struct {
	Audience     string `json:"aud"` // the member it is for: a copy sent elsewhere is refused
	SessionID    string `json:"sid"`
	RefreshToken string `json:"rt"`
	Subject      string `json:"sub"`
	IssuedAt     int64  `json:"iat"`
	JTI          string `json:"jti"`
}

// refreshResponse is the owner's answer, sealed and bound to the request's jti.
type refreshResponse struct {
	JTI    string        `json:"jti"`
	Error  string        `json:"err,omitempty"` // invalid_grant, invalid_client, provider, error
	Tokens *oauth.Tokens `json:"tokens,omitempty"`
}

// owner routes refreshes to the session's owner: the live member with the
// highest rendezvous score for the session id. It implements proxy.Owner.
type owner struct {
	s      *Server
	sealer *crypto.Sealer
	client *http.Client
}

var _ proxy.Owner = (*owner)(nil)

func newOwner(s *Server, clusterSecret []byte) (*owner, error) {
	master, err := hkdf.Key(sha256.New, clusterSecret, []byte("bff internal refresh v1"), "", 32)
	if err != nil {
		return nil, err
	}
	ring, err := keys.New(keys.Config{Secrets: [][]byte{master}, Rotation: time.Hour, Window: time.Hour, Now: s.now})
	if err != nil {
		return nil, err
	}
	sealer, err := crypto.NewSealer(crypto.Config{Ring: ring})
	if err != nil {
		return nil, err
	}
	return &owner{s: s, sealer: sealer, client: &http.Client{Timeout: ownerTimeout}}, nil
}

// rendezvous orders the members by a hash of (name, session id), highest
// first: every instance with the same member list gets the same order, the
// first is the session's owner, and a member leaving moves only its own
// sessions, each to the next in its order.
func rendezvous(members []cluster.Member, sessionID string) []cluster.Member {
	type ranked struct {
		m     cluster.Member
		score uint64
	}
	rs := make([]ranked, len(members))
	for i, m := range members {
		h := sha256.Sum256([]byte(m.Name + "\x00" + sessionID))
		rs[i] = ranked{m, binary.BigEndian.Uint64(h[:8])}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return cmp.Compare(b.score, a.score) })
	out := make([]cluster.Member, len(rs))
	for i, r := range rs {
		out[i] = r.m
	}
	return out
}

// RefreshAt asks the session's owner to refresh. When the owner does not
// answer (it died, and the cluster has not noticed yet), the next member in
// the session's rendezvous order takes over, so that still exactly one
// instance redeems the refresh token. ok is false when this instance is the
// first reachable one in that order: it refreshes itself.
func (o *owner) RefreshAt(ctx context.Context, sessionID, refreshToken, sub string) (*oauth.Tokens, bool, error) {
	members := o.s.cluster.Members()
	if len(members) < 2 || sessionID == "" {
		return nil, false, nil
	}
	self := o.s.cluster.LocalName()
	for _, m := range rendezvous(members, sessionID) {
		if m.Name == self {
			return nil, false, nil
		}
		if len(m.Meta) == 0 {
			continue
		}
		t, err := o.ask(ctx, m, refreshRequest{SessionID: sessionID, RefreshToken: refreshToken, Subject: sub})
		if err == nil {
			o.s.metrics.ownerForwarded.Inc()
			return t, true, nil
		}
		var answer *ownerAnswer
		if errors.As(err, &answer) {
			o.s.metrics.ownerForwarded.Inc()
			return nil, true, answer.err
		}
		o.s.metrics.ownerUnreachable.Inc()
		o.s.log.Warn("refresh owner unreachable; trying the next in order", "owner", m.Name, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, false, nil
}

// ownerAnswer is an error the owner answered with (as opposed to not
// answering at all).
type ownerAnswer struct{ err error }

func (a *ownerAnswer) Error() string { return a.err.Error() }

func (o *owner) ask(ctx context.Context, m cluster.Member, req refreshRequest) (*oauth.Tokens, error) {
	base := string(m.Meta)
	req.Audience = m.Name
	jti := make([]byte, 16)
	rand.Read(jti)
	req.JTI = base64.RawURLEncoding.EncodeToString(jti)
	req.IssuedAt = o.s.now().Unix()
	plain, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	sealed, err := o.sealer.Seal(purposeRefreshRequest, plain)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ownerTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, base+internalRefreshPath, bytes.NewReader([]byte(sealed)))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/jose")
	resp, err := o.client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("owner answered %d", resp.StatusCode)
	}
	plain, _, err = o.sealer.Open(purposeRefreshResponse, string(body))
	if err != nil {
		return nil, fmt.Errorf("owner answer: %w", err)
	}
	var ans refreshResponse
	if err := json.Unmarshal(plain, &ans); err != nil || ans.JTI != req.JTI {
		return nil, errors.New("owner answer not bound to the request")
	}
	switch ans.Error {
	case "":
		if ans.Tokens == nil || ans.Tokens.AccessToken == "" {
			return nil, errors.New("owner answer without tokens")
		}
		return ans.Tokens, nil
	case "invalid_grant":
		return nil, &ownerAnswer{fmt.Errorf("%w: refused at the owner", oauth.ErrReauthRequired)}
	case "provider":
		return nil, &ownerAnswer{fmt.Errorf("%w: at the owner", oauth.ErrProvider)}
	case "invalid_client":
		return nil, &ownerAnswer{fmt.Errorf("%w: at the owner", oauth.ErrClientAuth)}
	default:
		return nil, &ownerAnswer{errors.New("server: the owner's refresh failed")}
	}
}

// internalRefresh answers POST /_bff/refresh: the owner side.
func (s *Server) internalRefresh(c *gin.Context) {
	if s.owner == nil {
		s.abort(c, errNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 64<<10))
	if err != nil {
		s.metrics.internalRefused.Inc()
		s.abort(c, fmt.Errorf("%w: %w", errForgedInternal, err))
		return
	}
	plain, _, err := s.owner.sealer.Open(purposeRefreshRequest, string(body))
	if err != nil {
		s.metrics.internalRefused.Inc()
		s.abort(c, fmt.Errorf("%w: %w", errForgedInternal, err))
		return
	}
	var req refreshRequest
	now := s.now()
	if json.Unmarshal(plain, &req) != nil || req.JTI == "" || req.RefreshToken == "" || req.Audience != s.cluster.LocalName() ||
		time.Unix(req.IssuedAt, 0).Before(now.Add(-internalMaxAge)) || time.Unix(req.IssuedAt, 0).After(now.Add(internalMaxAge)) {
		s.metrics.internalRefused.Inc()
		s.abort(c, fmt.Errorf("%w: stale, incomplete or for another member", errForgedInternal))
		return
	}
	if first, err := s.useOnce(onceInternal, req.JTI, time.Unix(req.IssuedAt, 0).Add(internalMaxAge)); err != nil || !first {
		s.metrics.internalRefused.Inc()
		s.abort(c, fmt.Errorf("%w: replayed", errForgedInternal))
		return
	}
	ans := refreshResponse{JTI: req.JTI}
	t, _, err := s.proxy.RefreshLocal(c.Request.Context(), req.RefreshToken, req.Subject)
	switch {
	case err == nil:
		ans.Tokens = t
	case errors.Is(err, oauth.ErrReauthRequired):
		ans.Error = "invalid_grant"
	case errors.Is(err, oauth.ErrProvider):
		ans.Error = "provider"
	case errors.Is(err, oauth.ErrClientAuth):
		ans.Error = "invalid_client"
	default:
		ans.Error = "error"
	}
	out, err := json.Marshal(ans)
	if err == nil {
		var sealed string
		if sealed, err = s.owner.sealer.Seal(purposeRefreshResponse, out); err == nil {
			c.Header("Cache-Control", "no-store")
			c.Data(http.StatusOK, "application/jose", []byte(sealed))
			return
		}
	}
	s.abort(c, err)
}
