package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/session"
)

// protocolClaims are ID-token claims about the token, not the user; /auth/user
// leaves them out.
var protocolClaims = map[string]bool{
	"iss": true, "aud": true, "exp": true, "iat": true, "nbf": true, "nonce": true,
	"at_hash": true, "c_hash": true, "s_hash": true, "azp": true, "jti": true, "sid": true, "auth_time": true,
}

// user answers GET /auth/user with the signed-in user's claims and the session
// expiry, never a token; 401 when signed out. It re-seals a session that is
// Stale (older key, or due to slide its idle timeout) unless asked
// ?slide=false: an app's status poll must not keep an unused session alive.
func (s *Server) user(c *gin.Context) {
	sess, ok := s.loadSession(c)
	if !ok {
		return
	}
	if sess.Stale() && c.Query("slide") != "false" {
		if err := s.sessions.Save(c.Writer.Header(), c.Request, sess); err != nil {
			s.log.Warn("re-seal failed", "session", sess, "err", err)
		}
	}
	c.JSON(http.StatusOK, userBody(sess))
}

// loadSession opens the session or answers the error (clearing the cookies of
// an invalid, expired or revoked session).
func (s *Server) loadSession(c *gin.Context) (*session.Session, bool) {
	sess, err := s.sessions.Load(c.Request)
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			s.sessions.Clear(c.Writer.Header(), c.Request)
		}
		s.abort(c, err)
		return nil, false
	}
	return sess, true
}

// userBody is the answer of /auth/user: sub, the user's claims (the ID
// token's, then the userinfo claims, which win), the session expiry, and at
// the top level the ID token's acr, auth_time and amr when it has them.
func userBody(sess *session.Session) gin.H {
	claims := idTokenClaims(sess.IDToken)
	body := gin.H{
		"sub":        sess.Subject,
		"expires_at": sess.ExpiryTime().UTC().Format(time.RFC3339),
	}
	if v, ok := claims["acr"].(string); ok {
		body["acr"] = v
	}
	if v, ok := claims["auth_time"].(json.Number); ok {
		body["auth_time"] = v
	}
	if v, ok := claims["amr"].([]any); ok {
		body["amr"] = v
	}
	for k := range claims {
		if protocolClaims[k] {
			delete(claims, k)
		}
	}
	for k, v := range sess.UserInfo {
		if !protocolClaims[k] && k != "sub" {
			claims[k] = v
		}
	}
	body["claims"] = claims
	return body
}

// idTokenClaims decodes the ID token's payload, numbers kept exact. The
// token was verified when it was received and has been sealed since, so it
// is not verified again.
func idTokenClaims(idToken string) map[string]any {
	claims := map[string]any{}
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return claims
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if d.Decode(&claims) != nil {
		return map[string]any{}
	}
	return claims
}
