package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/session"
)

const (
	// loginTTL is how long a started sign-in may take.
	loginTTL = 10 * time.Minute
	// maxLogins is how many sign-ins one browser may have in flight (tabs);
	// starting another drops the oldest.
	maxLogins = 4
)

// loginState is sealed into the per-flow login cookie.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Created  int64  `json:"c"`
}

func (s *Server) loginPrefix() string { return s.cfg.CookieName + "-login." }

// loginName is the login cookie of one flow: a short hash of its state, so
// parallel tabs each have their own and the callback finds its own.
func (s *Server) loginName(state string) string {
	h := sha256.Sum256([]byte(state))
	return s.loginPrefix() + hex.EncodeToString(h[:8])
}

// login starts a sign-in: GET /auth/login?returnTo=/path.
func (s *Server) login(c *gin.Context) {
	returnTo, err := validReturnTo(c.Query("returnTo"))
	if err != nil {
		s.abort(c, err)
		return
	}
	flow := oauth.NewFlow()
	authURL, err := s.idp.AuthURL(flow)
	if err != nil {
		s.abort(c, err)
		return
	}
	plain, _ := json.Marshal(loginState{
		State: flow.State, Nonce: flow.Nonce, Verifier: flow.Verifier,
		ReturnTo: returnTo, Created: s.now().Unix(),
	})
	sealed, err := s.sealer.Seal(crypto.Login, plain)
	if err != nil {
		s.abort(c, err)
		return
	}
	w := c.Writer
	s.pruneLogins(w.Header(), c.Request)
	http.SetCookie(w, s.cookie(s.loginName(flow.State), sealed, int(loginTTL/time.Second)))
	c.Redirect(http.StatusFound, authURL)
}

// pruneLogins deletes login cookies that are unreadable or expired, and the
// oldest ones past maxLogins-1, to make room for one more.
func (s *Server) pruneLogins(h http.Header, r *http.Request) {
	type flow struct {
		name    string
		created int64
	}
	var live []flow
	cutoff := s.now().Add(-loginTTL).Unix()
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, s.loginPrefix()) {
			continue
		}
		st, err := s.openLogin(ck.Value)
		if err != nil || st.Created < cutoff || slices.ContainsFunc(live, func(f flow) bool { return f.name == ck.Name }) {
			h.Add("Set-Cookie", s.cookie(ck.Name, "", -1).String())
			continue
		}
		live = append(live, flow{ck.Name, st.Created})
	}
	slices.SortFunc(live, func(a, b flow) int { return int(a.created - b.created) })
	for len(live) >= maxLogins {
		h.Add("Set-Cookie", s.cookie(live[0].name, "", -1).String())
		live = live[1:]
	}
}

func (s *Server) openLogin(sealed string) (*loginState, error) {
	plain, _, err := s.sealer.Open(crypto.Login, sealed)
	if err != nil {
		return nil, err
	}
	st := new(loginState)
	if err := json.Unmarshal(plain, st); err != nil || st.State == "" || st.Verifier == "" || st.Nonce == "" {
		return nil, crypto.ErrInvalid
	}
	return st, nil
}

// cookie builds a host-only, Secure, HttpOnly cookie on Path=/.
// Login cookies are always SameSite=Lax: the callback is a cross-site
// navigation from the provider.
func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// callback completes a sign-in: GET /auth/callback?code=...&state=...
func (s *Server) callback(c *gin.Context) {
	r, w := c.Request, c.Writer
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		s.abort(c, oauth.ErrStateMismatch)
		return
	}
	name := s.loginName(state)
	ck, err := r.Cookie(name)
	if err != nil {
		s.abort(c, errLoginExpired)
		return
	}
	// The flow is single use, whatever happens next.
	http.SetCookie(w, s.cookie(name, "", -1))
	st, err := s.openLogin(ck.Value)
	if err != nil {
		s.abort(c, fmt.Errorf("%w: %w", errLoginExpired, err))
		return
	}
	if st.Created < s.now().Add(-loginTTL).Unix() {
		s.abort(c, errLoginExpired)
		return
	}
	// A flow is single use on the server too: a replayed callback (with a
	// copy of the login cookie) must not reach the provider, which would
	// see the code reused and revoke the genuine sign-in's grant.
	first, err := s.useOnce(onceState, st.State, time.Unix(st.Created, 0).Add(loginTTL))
	if err != nil {
		s.abort(c, err)
		return
	}
	if !first {
		s.abort(c, fmt.Errorf("%w: state already used", errLoginExpired))
		return
	}
	tokens, err := s.idp.Callback(r.Context(), oauth.Flow{State: st.State, Nonce: st.Nonce, Verifier: st.Verifier}, q)
	if err != nil {
		if !errors.Is(err, oauth.ErrProvider) && !errors.Is(err, oauth.ErrNotReady) {
			err = fmt.Errorf("%w: %w", errDuringLogin, err)
		}
		s.abort(c, err)
		return
	}
	now := s.now()
	sess := &session.Session{
		ID:           session.NewID(),
		Subject:      tokens.Subject,
		Issuer:       s.idp.Issuer(),
		IdPSession:   tokens.SessionID,
		Start:        now.Unix(),
		Expiry:       now.Add(s.cfg.Lifetime).Unix(),
		AccessToken:  tokens.AccessToken,
		AccessExpiry: tokens.Expiry.Unix(),
		RefreshToken: tokens.RefreshToken,
		IDToken:      tokens.IDToken,
		Scope:        tokens.Scope,
	}
	if err := s.sessions.Save(w.Header(), r, sess); err != nil {
		s.abort(c, err)
		return
	}
	s.log.Info("signed in", "session", sess)
	c.Redirect(http.StatusFound, st.ReturnTo)
}
