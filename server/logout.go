package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/revocation"
	"github.com/bff-project/bff/session"
)

// logout answers POST /auth/logout (with the anti-forgery header): it revokes
// the session id locally, so a copied cookie dies, revokes the refresh token at
// the provider (RFC 7009), clears every session chunk, and answers
// {"logout_url": ...} for the app to navigate to (a fetch cannot follow a
// cross-origin redirect): a URL of the BFF's own that redirects to the
// provider's end-session endpoint, so that the ID token it passes as
// id_token_hint never reaches page script (see endsession.go).
func (s *Server) logout(c *gin.Context) {
	r, w := c.Request, c.Writer
	sess, err := s.sessions.Load(r)
	s.sessions.Clear(w.Header(), r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		// Already ended or invalid: nothing to revoke, but still leave.
		s.log.Info("logout without a valid session", "err", err)
	}
	hint := ""
	if sess != nil {
		hint = sess.IDToken
		if err := s.revoke(revocation.Entry{Kind: revocation.KindSession, Key: sess.ID, Expiry: sess.ExpiryTime()}); err != nil {
			// The cookies are cleared, but a copy would live on: say so.
			s.log.Error("logout: session could not be revoked", "session", sess, "err", err)
			s.abort(c, err)
			return
		}
		s.metrics.revocation.WithLabelValues("logout").Inc()
		if sess.RefreshToken != "" {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			err := s.idp.Revoke(ctx, sess.RefreshToken, "refresh_token")
			cancel()
			if err != nil {
				s.log.Warn("logout: refresh token not revoked at the provider", "session", sess, "err", err)
			}
		}
		s.log.Info("signed out", "session", sess)
	}
	c.JSON(http.StatusOK, gin.H{"logout_url": s.logoutURL(hint)})
}
