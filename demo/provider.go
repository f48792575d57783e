package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Defaults of ProviderConfig.
const (
	DefaultProviderAddr   = "127.0.0.1:8081"
	DefaultAccessTokenTTL = 5 * time.Minute
	DefaultUsername       = "demo"
	DefaultPassword       = "demo"
)

// ErrInvalidConfig is returned by StartProvider and StartAPI for a config
// they cannot run with.
var ErrInvalidConfig = errors.New("demo: invalid config")

// ProviderConfig configures the development OpenID provider.
type ProviderConfig struct {
	// Addr is the listen address; empty means DefaultProviderAddr. Port 0
	// (a free port) is accepted only when Issuer is empty.
	Addr string
	// Issuer is the provider's public URL, e.g. "http://127.0.0.1:8081"
	// (plain http is allowed: this provider is for loopback development).
	// Empty means "http://" + the bound address.
	Issuer string
	// ClientID and ClientSecret identify the BFF, a confidential client. Both required.
	ClientID, ClientSecret string
	// RedirectURIs are the client's registered redirect URIs (at least one),
	// e.g. "http://localhost:8080/auth/callback".
	RedirectURIs []string
	// PostLogoutRedirectURIs are where end-session may send the browser back
	// to, e.g. "http://localhost:8080/".
	PostLogoutRedirectURIs []string
	// AccessTokenTTL is the access tokens' lifetime; zero means DefaultAccessTokenTTL.
	AccessTokenTTL time.Duration
	// Username and Password of the demo user; zero means DefaultUsername and DefaultPassword.
	Username, Password string
	// Logger receives sign-in events; nil means slog.Default(). The op
	// package itself logs through slog.Default().
	Logger *slog.Logger
}

func (c ProviderConfig) withDefaults() (ProviderConfig, error) {
	if c.Addr == "" {
		c.Addr = DefaultProviderAddr
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.ClientID == "":
		return c, fmt.Errorf("%w: provider ClientID is empty", ErrInvalidConfig)
	case c.ClientSecret == "":
		return c, fmt.Errorf("%w: provider ClientSecret is empty", ErrInvalidConfig)
	case len(c.RedirectURIs) == 0:
		return c, fmt.Errorf("%w: provider RedirectURIs is empty", ErrInvalidConfig)
	case c.AccessTokenTTL < 0:
		return c, fmt.Errorf("%w: provider AccessTokenTTL is negative", ErrInvalidConfig)
	}
	return c, nil
}

// Provider is a running development OpenID provider.
type Provider struct {
	issuer string
	srv    *httpServer
}

// StartProvider starts the provider and returns once it is listening. It
// stops when Close is called or ctx is done.
//
// Routes: /.well-known/openid-configuration, /keys, /authorize, /oauth/token,
// /revoke, /end_session, /userinfo, /oauth/introspect (from the op package),
// and /login, /logged-out (the demo's own pages).
func StartProvider(ctx context.Context, cfg ProviderConfig) (*Provider, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("demo: provider signing key: %w", err)
	}
	ln, err := listen(cfg.Addr, cfg.Issuer != "")
	if err != nil {
		return nil, fmt.Errorf("demo: provider listen on %s: %w", cfg.Addr, err)
	}
	issuer := cfg.Issuer
	if issuer == "" {
		issuer = "http://" + ln.Addr().String()
	}

	st := newStore(&client{
		id:                     cfg.ClientID,
		secret:                 cfg.ClientSecret,
		redirectURIs:           cfg.RedirectURIs,
		postLogoutRedirectURIs: cfg.PostLogoutRedirectURIs,
	}, user{
		id:         "demo-user-1",
		username:   cfg.Username,
		password:   cfg.Password,
		name:       "Demo User",
		givenName:  "Demo",
		familyName: "User",
		email:      cfg.Username + "@example.com",
	}, key, cfg.AccessTokenTTL)

	opConfig := &op.Config{
		CryptoKeyId:              "demo",
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
	}
	// Key for the op package's opaque values; random per start.
	_, _ = rand.Read(opConfig.CryptoKey[:])
	provider, err := op.NewProvider(opConfig, st, op.StaticIssuer(issuer),
		op.WithAllowInsecure(), // http issuer on loopback: development only
	)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("demo: provider: %w", err)
	}

	login := &loginForm{
		store: st,
		callback: func(ctx context.Context, id string) string {
			return op.AuthCallbackURL(provider)(op.ContextWithIssuer(ctx, issuer), id)
		},
		logger: cfg.Logger,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+loginPath, login.show)
	mux.HandleFunc("POST "+loginPath, login.submit)
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Signed out of the demo provider.\n"))
	})
	mux.Handle("/", provider)

	return &Provider{issuer: issuer, srv: serve(ctx, ln, mux, cfg.Logger, "provider")}, nil
}

// Issuer returns the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// Close stops the provider, waiting briefly for requests in flight. It is
// safe to call more than once.
func (p *Provider) Close() error { return p.srv.close() }
