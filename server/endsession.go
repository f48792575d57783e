package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/crypto"
)

// The provider's end-session URL carries the ID token as id_token_hint
// (providers need it to sign out without asking). Page script must never see
// it, so POST /auth/logout answers a URL of the BFF's own instead: it carries
// the hint sealed, bound to this purpose, short-lived and single use, and
// GET /auth/end-session turns it into the provider's URL with a server-side
// redirect, which page script cannot read.
const (
	purposeEndSession crypto.Purpose = "end-session"
	// endSessionTTL is how long the app has to navigate to the URL.
	endSessionTTL = 5 * time.Minute
	// maxTicket bounds the t parameter (a sealed ID token of a few KB).
	maxTicket = 16 << 10
)

var errBadTicket = errors.New("server: end-session ticket unreadable")

// endSessionTicket is sealed into the end-session URL.
type endSessionTicket struct {
	Hint   string `json:"h"`
	ID     string `json:"j"`
	Expiry int64  `json:"e"`
}

// logoutURL is where the app navigates after POST /auth/logout: the BFF's
// end-session URL when there is a hint to hide, else the provider's
// end-session URL (which then holds no token), else the post-logout URL.
func (s *Server) logoutURL(hint string) string {
	direct, err := s.idp.EndSessionURL("")
	if err != nil {
		return s.postLogoutURL()
	}
	if hint == "" {
		return direct
	}
	id := make([]byte, 16)
	rand.Read(id)
	plain, err := json.Marshal(endSessionTicket{
		Hint: hint, ID: base64.RawURLEncoding.EncodeToString(id), Expiry: s.now().Add(endSessionTTL).Unix(),
	})
	if err != nil {
		return direct
	}
	sealed, err := s.sealer.Seal(purposeEndSession, plain)
	if err != nil {
		s.log.Warn("end-session ticket not sealed; signing out at the provider without a hint", "err", err)
		return direct
	}
	return s.origin + s.cfg.Prefix + "/end-session?t=" + sealed
}

func (s *Server) postLogoutURL() string {
	if u := s.cfg.OIDC.PostLogoutRedirectURL; u != "" {
		return u
	}
	return "/"
}

// endSession answers GET /auth/end-session?t=...: a redirect to the
// provider's end-session endpoint with the sealed hint. A ticket that is
// expired or already used still signs out at the provider, without the hint
// (the provider may then ask the user to confirm); one that does not open is
// refused.
func (s *Server) endSession(c *gin.Context) {
	t := c.Query("t")
	if t == "" || len(t) > maxTicket {
		s.abort(c, errBadTicket)
		return
	}
	plain, _, err := s.sealer.Open(purposeEndSession, t)
	if err != nil {
		s.abort(c, errors.Join(errBadTicket, err))
		return
	}
	var tk endSessionTicket
	if json.Unmarshal(plain, &tk) != nil || tk.ID == "" || tk.Hint == "" {
		s.abort(c, errBadTicket)
		return
	}
	hint := tk.Hint
	expiry := time.Unix(tk.Expiry, 0)
	if !s.now().Before(expiry) {
		hint = ""
	} else if first, err := s.useOnce(onceEndSession, tk.ID, expiry); err != nil || !first {
		if err != nil {
			s.log.Warn("end-session ticket could not be recorded as used; signing out without the hint", "err", err)
		}
		hint = ""
	}
	u, err := s.idp.EndSessionURL(hint)
	if err != nil {
		u = s.postLogoutURL()
	}
	c.Redirect(http.StatusFound, u)
}
