package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/revocation"
)

// jtiTTL is how long a logout token's jti is remembered: longer than the
// oldest iat VerifyLogoutToken accepts, so a replay is refused as long as the
// token itself would pass.
const jtiTTL = 10 * time.Minute

var errReplay = fmt.Errorf("%w: replayed jti", oauth.ErrInvalidLogoutToken)

// backchannelLogout answers POST /auth/backchannel-logout (OpenID Connect
// Back-Channel Logout 1.0): the provider posts a logout token; every session
// of that provider session (sid), or else every session of that subject that
// started before now, is revoked. It is a server-to-server call: no cookie,
// no anti-forgery header.
func (s *Server) backchannelLogout(c *gin.Context) {
	r := c.Request
	r.Body = http.MaxBytesReader(c.Writer, r.Body, 32<<10)
	if err := r.ParseForm(); err != nil {
		s.abort(c, fmt.Errorf("%w: unreadable form: %w", oauth.ErrInvalidLogoutToken, err))
		return
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" || len(r.PostForm["logout_token"]) != 1 {
		s.abort(c, fmt.Errorf("%w: no logout_token", oauth.ErrInvalidLogoutToken))
		return
	}
	lt, err := s.idp.VerifyLogoutToken(r.Context(), raw)
	if err != nil {
		s.abort(c, err)
		return
	}
	now := s.now()
	first, err := s.useOnce(onceLogoutJTI, s.idp.Issuer()+"\x00"+lt.JTI, now.Add(jtiTTL))
	if err != nil {
		s.abort(c, err)
		return
	}
	if !first {
		s.abort(c, errReplay)
		return
	}
	if err := s.revoke(s.endSessionsEntry(lt.SessionID, lt.Subject, now)); err != nil {
		s.abort(c, err)
		return
	}
	s.metrics.revocation.WithLabelValues("backchannel").Inc()
	by := "sub"
	if lt.SessionID != "" {
		by = "sid"
	}
	s.log.Info("back-channel logout", "by", by, "sid_hash", oauth.ShortHash(lt.SessionID), "sub_hash", oauth.ShortHash(lt.Subject))
	c.Status(http.StatusOK)
}

// endSessionsEntry is the revocation that ends every session of the
// provider session sid, or when sid is empty every session of the subject
// sub that started before now; it lasts as long as such a session could.
func (s *Server) endSessionsEntry(sid, sub string, now time.Time) revocation.Entry {
	until := now.Add(s.cfg.Lifetime)
	if sid != "" {
		return revocation.Entry{Kind: revocation.KindIdPSession, Key: sid, Expiry: until}
	}
	return revocation.Entry{Kind: revocation.KindSubject, Key: sub, Before: now, Expiry: until}
}
