package demo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes of what the provider keeps in memory.
const (
	authRequestTTL  = 10 * time.Minute // a login started and not finished
	codeTTL         = time.Minute      // an authorization code not yet redeemed
	refreshTokenTTL = 24 * time.Hour   // absolute: rotation keeps the first expiry
	idTokenTTL      = time.Hour
)

var (
	// errLoginExpired means the login form refers to an unknown or stale auth request.
	errLoginExpired = errors.New("demo: login request unknown or expired")
	// errBadCredentials means the username or password is wrong.
	errBadCredentials = errors.New("demo: wrong username or password")
)

var (
	_ op.Storage                   = (*store)(nil)
	_ op.CanSetUserinfoFromRequest = (*store)(nil)
)

// user is the demo's only account.
type user struct {
	id, username, password      string
	name, givenName, familyName string
	email                       string
}

// accessToken records a JWT access token by its jti, for userinfo,
// introspection and revocation. The JWT itself stays valid until it expires.
type accessToken struct {
	id, subject, clientID string
	audience, scopes      []string
	refreshToken          string
	expiresAt             time.Time
}

// refreshToken is an opaque refresh token; its value is also its id.
type refreshToken struct {
	token, subject, clientID string
	audience, scopes, amr    []string
	authTime, expiresAt      time.Time
}

type codeEntry struct {
	requestID string
	expiresAt time.Time
}

// store is the provider's in-memory op.Storage for one client and one user.
// It is safe for concurrent use; it hands out copies, never its own records.
type store struct {
	client    *client
	user      user
	key       *signingKey
	accessTTL time.Duration
	now       func() time.Time

	mu            sync.Mutex
	authRequests  map[string]*authRequest
	codes         map[string]codeEntry
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
}

func newStore(c *client, u user, key *signingKey, accessTTL time.Duration) *store {
	return &store{
		client:        c,
		user:          u,
		key:           key,
		accessTTL:     accessTTL,
		now:           time.Now,
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]codeEntry),
		accessTokens:  make(map[string]*accessToken),
		refreshTokens: make(map[string]*refreshToken),
	}
}

// sweep drops everything that has expired. Callers hold s.mu.
func (s *store) sweep(now time.Time) {
	for id, r := range s.authRequests {
		if now.Sub(r.createdAt) > authRequestTTL {
			delete(s.authRequests, id)
		}
	}
	for c, e := range s.codes {
		if now.After(e.expiresAt) {
			delete(s.codes, c)
		}
	}
	for id, t := range s.accessTokens {
		if now.After(t.expiresAt) {
			delete(s.accessTokens, id)
		}
	}
	for id, t := range s.refreshTokens {
		if now.After(t.expiresAt) {
			delete(s.refreshTokens, id)
		}
	}
}

// CreateAuthRequest stores a validated authorization request. PKCE with S256
// is required, and offline_access is always added so the BFF gets a refresh token.
func (s *store) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required")
	}
	scopes := slices.Clone([]string(req.Scopes))
	if !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	now := s.now()
	ar := &authRequest{
		id:           rand.Text(),
		createdAt:    now,
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       scopes,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		challenge:    &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	s.authRequests[ar.id] = ar
	return ar.clone(), nil
}

// authRequestLocked returns the live request with id. Callers hold s.mu.
func (s *store) authRequestLocked(id string) (*authRequest, bool) {
	ar, ok := s.authRequests[id]
	if !ok || s.now().Sub(ar.createdAt) > authRequestTTL {
		return nil, false
	}
	return ar, true
}

func (s *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequestLocked(id)
	if !ok {
		return nil, errLoginExpired
	}
	return ar.clone(), nil
}

// AuthRequestByCode redeems code: it works once, even if the exchange then fails.
func (s *store) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.codes[code]
	delete(s.codes, code)
	if !ok || s.now().After(e.expiresAt) {
		return nil, errors.New("demo: code unknown or expired")
	}
	ar, ok := s.authRequestLocked(e.requestID)
	if !ok {
		return nil, errLoginExpired
	}
	return ar.clone(), nil
}

func (s *store) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = codeEntry{requestID: id, expiresAt: s.now().Add(codeTTL)}
	return nil
}

func (s *store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for c, e := range s.codes {
		if e.requestID == id {
			delete(s.codes, c)
		}
	}
	return nil
}

// checkLogin completes the auth request id when username and password match.
func (s *store) checkLogin(id, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authRequestLocked(id)
	if !ok {
		return errLoginExpired
	}
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(s.user.username))
	passOK := subtle.ConstantTimeCompare([]byte(password), []byte(s.user.password))
	if userOK&passOK != 1 {
		return errBadCredentials
	}
	ar.subject = s.user.id
	ar.authTime = s.now()
	ar.done = true
	return nil
}

// newAccessLocked records a new access token for req. Callers hold s.mu.
func (s *store) newAccessLocked(req op.TokenRequest, refresh string) *accessToken {
	at := &accessToken{
		id:           rand.Text(),
		subject:      req.GetSubject(),
		clientID:     clientIDOf(req),
		audience:     slices.Clone(req.GetAudience()),
		scopes:       slices.Clone(req.GetScopes()),
		refreshToken: refresh,
		expiresAt:    s.now().Add(s.accessTTL),
	}
	s.accessTokens[at.id] = at
	return at
}

func (s *store) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newAccessLocked(req, "")
	return at.id, at.expiresAt, nil
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token. On
// a refresh (current is set) it rotates: current stops working, and a
// replayed or concurrent use of it gets invalid_grant.
func (s *store) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	var rt *refreshToken
	if current == "" {
		rt = &refreshToken{
			subject:   req.GetSubject(),
			clientID:  clientIDOf(req),
			audience:  slices.Clone(req.GetAudience()),
			expiresAt: now.Add(refreshTokenTTL),
		}
		if r, ok := req.(interface{ GetAuthTime() time.Time }); ok {
			rt.authTime = r.GetAuthTime()
		}
		if r, ok := req.(interface{ GetAMR() []string }); ok {
			rt.amr = slices.Clone(r.GetAMR())
		}
	} else {
		old, ok := s.refreshTokens[current]
		if !ok {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token unknown, used or revoked")
		}
		delete(s.refreshTokens, current)
		next := *old
		rt = &next
	}
	rt.token = rand.Text() + rand.Text()
	rt.scopes = slices.Clone(req.GetScopes())
	s.refreshTokens[rt.token] = rt
	at := s.newAccessLocked(req, rt.token)
	return at.id, rt.token, at.expiresAt, nil
}

func (s *store) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || s.now().After(rt.expiresAt) {
		return nil, errors.New("demo: refresh token unknown, used, revoked or expired")
	}
	cp := *rt
	cp.scopes = slices.Clone(rt.scopes)
	return &refreshRequest{cp}, nil
}

// TerminateSession ends the user's session at the client (end-session
// endpoint): every refresh token of that user and client stops working.
func (s *store) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.refreshTokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.refreshTokens, id)
		}
	}
	for id, t := range s.accessTokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.accessTokens, id)
		}
	}
	return nil
}

func (s *store) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

// RevokeToken implements RFC 7009: revoking a refresh token also forgets the
// access tokens issued with it. Unknown tokens are not an error.
func (s *store) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	rt, ok := s.refreshTokens[tokenOrID]
	if !ok {
		return nil
	}
	if rt.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	delete(s.refreshTokens, tokenOrID)
	for id, at := range s.accessTokens {
		if at.refreshToken == tokenOrID {
			delete(s.accessTokens, id)
		}
	}
	return nil
}

func (s *store) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.key.SignatureAlgorithm()}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, errors.New("demo: unknown client")
	}
	return s.client, nil
}

func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.client.id))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.client.secret))
	if idOK&secretOK != 1 {
		return errors.New("demo: wrong client credentials")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *store) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(ui, req.GetSubject(), scopes)
}

func (s *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	at, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || s.now().After(at.expiresAt) {
		return errors.New("demo: access token unknown, revoked or expired")
	}
	return s.setUserinfo(ui, at.subject, at.scopes)
}

func (s *store) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	s.mu.Lock()
	at, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || s.now().After(at.expiresAt) || !slices.Contains(at.audience, clientID) {
		return errors.New("demo: access token not active for this client")
	}
	ui := new(oidc.UserInfo)
	if err := s.setUserinfo(ui, at.subject, at.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(ui)
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.Expiration = oidc.FromTime(at.expiresAt)
	return nil
}

// setUserinfo sets the claims the scopes grant: profile gives the names,
// email the address.
func (s *store) setUserinfo(ui *oidc.UserInfo, subject string, scopes []string) error {
	if subject != s.user.id {
		return errors.New("demo: unknown user")
	}
	ui.Subject = s.user.id
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			ui.Name = s.user.name
			ui.GivenName = s.user.givenName
			ui.FamilyName = s.user.familyName
			ui.PreferredUsername = s.user.username
		case oidc.ScopeEmail:
			ui.Email = s.user.email
			ui.EmailVerified = true
		}
	}
	return nil
}

func (s *store) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("demo: JWT client authentication is not supported")
}

func (s *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("demo: JWT profile grant is not supported")
}

func (s *store) Health(context.Context) error { return nil }

// clientIDOf returns the client a token request belongs to.
func clientIDOf(req op.TokenRequest) string {
	if r, ok := req.(interface{ GetClientID() string }); ok {
		return r.GetClientID()
	}
	return ""
}

// signingKey is the provider's RSA key, generated at start.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: rand.Text(), key: k}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the JWKS view of a signingKey.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }
