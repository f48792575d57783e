package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
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
	MaxAge   *int64 `json:"m,omitempty"` // max_age asked for, seconds; checked at the callback
}

func (s *Server) loginPrefix() string { return s.cfg.CookieName + "-login." }

// loginName is the login cookie of one flow: a short hash of its state, so
// parallel tabs each have their own and the callback finds its own.
func (s *Server) loginName(state string) string {
	h := sha256.Sum256([]byte(state))
	return s.loginPrefix() + hex.EncodeToString(h[:8])
}

// login starts a sign-in: GET /auth/login?returnTo=/path&prompt=...
func (s *Server) login(c *gin.Context) {
	q := c.Request.URL.Query()
	returnTo, err := validReturnTo(q.Get("returnTo"))
	if err != nil {
		s.abort(c, err)
		return
	}
	flow := oauth.NewFlow()
	if err := s.loginOptions(q, &flow); err != nil {
		s.abort(c, err)
		return
	}
	authURL, err := s.idp.AuthURL(c.Request.Context(), flow)
	if err != nil {
		if errors.Is(err, oauth.ErrClientAuth) { // at the PAR endpoint
			s.clientAuthFailed(c.Request.Context(), "pushed authorization request", err)
		}
		s.abort(c, err)
		return
	}
	st := loginState{
		State: flow.State, Nonce: flow.Nonce, Verifier: flow.Verifier,
		ReturnTo: returnTo, Created: s.now().Unix(),
	}
	if flow.MaxAge != nil {
		secs := int64(*flow.MaxAge / time.Second)
		st.MaxAge = &secs
	}
	plain, _ := json.Marshal(st)
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
	cutoff := s.now().Add(-loginTTL).Unix() // expired: Created+loginTTL <= now, as the callback and useOnce count it
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, s.loginPrefix()) {
			continue
		}
		st, err := s.openLogin(ck.Value)
		if err != nil || st.Created <= cutoff || slices.ContainsFunc(live, func(f flow) bool { return f.name == ck.Name }) {
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
	st, err := s.completeLogin(c)
	if err != nil {
		s.loginFailed(c, st, err)
		return
	}
	c.Redirect(http.StatusFound, st.ReturnTo)
}

// completeLogin checks the flow, exchanges the code, verifies the tokens and
// saves the session. It returns the flow's login state as soon as its cookie
// opened, with or without an error, so that a failure can go back to it.
func (s *Server) completeLogin(c *gin.Context) (*loginState, error) {
	r, w := c.Request, c.Writer
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return nil, oauth.ErrStateMismatch
	}
	name := s.loginName(state)
	ck, err := r.Cookie(name)
	if err != nil {
		return nil, errLoginExpired
	}
	// The flow is single use, whatever happens next.
	http.SetCookie(w, s.cookie(name, "", -1))
	st, err := s.openLogin(ck.Value)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLoginExpired, err)
	}
	if st.Created <= s.now().Add(-loginTTL).Unix() { // Created+loginTTL <= now: when useOnce refuses the state too
		return st, errLoginExpired
	}
	// A flow is single use on the server too: a replayed callback (with a
	// copy of the login cookie) must not reach the provider, which would
	// see the code reused and revoke the genuine sign-in's grant.
	first, err := s.useOnce(onceState, st.State, time.Unix(st.Created, 0).Add(loginTTL))
	if err != nil {
		return st, err
	}
	if !first {
		return st, fmt.Errorf("%w: state already used", errLoginExpired)
	}
	flow := oauth.Flow{State: st.State, Nonce: st.Nonce, Verifier: st.Verifier}
	if st.MaxAge != nil {
		d := time.Duration(*st.MaxAge) * time.Second
		flow.MaxAge = &d
	}
	tokens, err := s.idp.Callback(r.Context(), flow, q)
	if err != nil {
		if errors.Is(err, oauth.ErrClientAuth) {
			s.clientAuthFailed(r.Context(), "code exchange", err)
		}
		if !errors.Is(err, oauth.ErrProvider) && !errors.Is(err, oauth.ErrNotReady) {
			err = fmt.Errorf("%w: %w", errDuringLogin, err)
		}
		return st, err
	}
	info, err := s.idp.UserInfo(r.Context(), tokens)
	switch {
	case errors.Is(err, oauth.ErrUserInfo):
		// The sign-in is sound; the app gets the ID token's claims only.
		s.log.Warn("userinfo unavailable; signed in without its claims", "sub_hash", oauth.ShortHash(tokens.Subject), "err", err)
	case err != nil:
		return st, fmt.Errorf("%w: %w", errDuringLogin, err)
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
		DPoPKey:      tokens.DPoPKey,
	}
	if info != nil {
		for k, v := range info.Claims {
			if sess.UserInfo == nil {
				sess.UserInfo = make(map[string]any, len(info.Claims))
			}
			sess.UserInfo[k] = v
		}
		if info.Dropped > 0 {
			s.log.Warn("userinfo claims trimmed to fit the session cookie", "session", sess,
				"dropped", info.Dropped, "kept", len(info.Claims), "budget_bytes", oauth.UserInfoBudget)
		}
	}
	if err := s.sessions.Save(w.Header(), r, sess); err != nil {
		return st, err
	}
	s.log.Info("signed in", "session", sess)
	return st, nil
}

// loginFailed answers a sign-in that did not complete. The refusal is
// counted and logged as any other; a navigation (what a callback from the
// provider is) goes back to the app with ?login_error=CODE, the public code
// of classify, so that the app can say what happened; anything else gets the
// JSON error.
func (s *Server) loginFailed(c *gin.Context, st *loginState, err error) {
	if !wantsHTML(c.Request) {
		s.abort(c, err)
		return
	}
	pe := s.recordRefusal(c.Request, err)
	c.Redirect(http.StatusFound, s.loginErrorURL(st, pe.code))
	c.Abort()
}

// loginErrorURL is where a failed sign-in lands: Config.LoginErrorPath when
// set (checkLoginConfig validated it), else the flow's returnTo, else "/",
// with login_error=code.
func (s *Server) loginErrorURL(st *loginState, code string) string {
	target := "/"
	switch {
	case s.cfg.LoginErrorPath != "":
		target = s.cfg.LoginErrorPath
	case st != nil:
		target = st.ReturnTo
	}
	return withLoginError(target, code)
}

// withLoginError sets login_error=code in the query of target, a path that
// validReturnTo accepted, keeping its other parameters as they are written
// and its fragment.
func withLoginError(target, code string) string {
	rest, frag, hasFrag := strings.Cut(target, "#")
	path, query, _ := strings.Cut(rest, "?")
	var kept []string
	for p := range strings.SplitSeq(query, "&") {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); p == "" || k == "login_error" || (err == nil && uk == "login_error") {
			continue
		}
		kept = append(kept, p)
	}
	kept = append(kept, "login_error="+url.QueryEscape(code))
	out := path + "?" + strings.Join(kept, "&")
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// DefaultLoginParams are the sign-in options /auth/login passes on to the
// provider when Config.LoginParams is nil.
var DefaultLoginParams = []string{"prompt", "max_age", "login_hint", "acr_values"}

var (
	// errLoginOption means /auth/login got a parameter that is not an
	// allowed sign-in option.
	errLoginOption = errors.New("server: sign-in option not allowed")
	// errLoginOptionValue means a sign-in option is repeated or its value
	// is invalid.
	errLoginOptionValue = errors.New("server: sign-in option has an invalid value")
)

const (
	// maxLoginOption bounds the value of a sign-in option.
	maxLoginOption = 256
	// maxMaxAge is the largest max_age accepted: ten years of seconds.
	maxMaxAge = 10 * 365 * 24 * 60 * 60
)

// checkLoginConfig validates Config.LoginParams and Config.LoginErrorPath;
// New calls it. A sign-in option may not be returnTo nor a parameter the
// protocol sets (state, nonce, code_challenge, redirect_uri, ...: see
// oauth.ProtocolParam).
func checkLoginConfig(params []string, errorPath string) error {
	for _, name := range params {
		if len(name) == 0 || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.')
		}) {
			return fmt.Errorf("server: login_params: %q is not a parameter name", name)
		}
		if name == "returnTo" || oauth.ProtocolParam(name) {
			return fmt.Errorf("server: login_params: %s is set by the BFF, not passed on from the app", name)
		}
	}
	if errorPath != "" {
		if _, err := validReturnTo(errorPath); err != nil {
			return errors.New("server: login_error_path must be a same-origin path such as /signed-out")
		}
	}
	return nil
}

// loginOptions puts the sign-in options of a /auth/login query into f: each
// parameter but returnTo must be allowed (Config.LoginParams), given once,
// with a valid value. Errors never quote a value, nor a name that is not
// allowed.
func (s *Server) loginOptions(q url.Values, f *oauth.Flow) error {
	allowed := s.cfg.LoginParams
	if allowed == nil {
		allowed = DefaultLoginParams
	}
	for name, vs := range q {
		if name == "returnTo" {
			continue
		}
		if !slices.Contains(allowed, name) {
			return errLoginOption
		}
		if len(vs) != 1 {
			return fmt.Errorf("%w: %s given %d times", errLoginOptionValue, name, len(vs))
		}
		v := vs[0]
		if !validLoginOption(name, v) {
			return fmt.Errorf("%w: %s", errLoginOptionValue, name)
		}
		if name == "max_age" {
			n, _ := strconv.ParseInt(v, 10, 64) // validLoginOption parsed it
			d := time.Duration(n) * time.Second
			f.MaxAge = &d
			continue
		}
		if f.Params == nil {
			f.Params = map[string]string{}
		}
		f.Params[name] = v
	}
	return nil
}

// validLoginOption checks the value of the sign-in option name.
func validLoginOption(name, v string) bool {
	if v == "" || len(v) > maxLoginOption {
		return false
	}
	switch name {
	case "prompt":
		// OpenID Connect Core 3.1.2.1: a space-delimited list; none alone.
		seen := map[string]bool{}
		for p := range strings.SplitSeq(v, " ") {
			switch p {
			case "login", "consent", "select_account":
			case "none":
				if v != "none" {
					return false
				}
			default:
				return false
			}
			if seen[p] {
				return false
			}
			seen[p] = true
		}
		return true
	case "max_age":
		if strings.ContainsFunc(v, func(r rune) bool { return r < '0' || r > '9' }) {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && n <= maxMaxAge
	case "acr_values":
		// Space-separated tokens of visible characters but " and \
		// (the scope-token grammar of RFC 6749 section 3.3).
		for tok := range strings.SplitSeq(v, " ") {
			if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) {
				return false
			}
		}
		return true
	default: // login_hint and any other configured name
		return !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e })
	}
}
