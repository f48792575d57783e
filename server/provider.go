package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
)

// clientAuthHint is what an operator reads when the provider refuses the
// BFF's own credentials: the fix is in the configuration, never the user's.
const clientAuthHint = "the identity provider refused the BFF's client credentials (invalid_client): " +
	"check oidc.client_id, oidc.client_secret (or client_key_file) and oidc.auth_method against the client's registration"

// clientAuthFailed logs and counts a token-endpoint call that the provider
// refused with invalid_client. op is "code exchange" or "refresh".
func (s *Server) clientAuthFailed(ctx context.Context, op string, err error) {
	method := "unknown (discovery has not run)"
	if c, cerr := s.idp.Capabilities(); cerr == nil {
		method = c.TokenAuthMethod
	}
	s.metrics.clientAuth.WithLabelValues(op).Inc()
	s.log.ErrorContext(ctx, clientAuthHint, "op", op, "auth_method_used", method, "err", err)
}

// observeRefresh is the proxy's OnRefresh: metrics, and the configuration
// hint when the provider refused the client.
func (s *Server) observeRefresh(o proxy.Outcome, err error) {
	s.metrics.observeRefresh(o, err)
	if errors.Is(err, oauth.ErrClientAuth) {
		s.clientAuthFailed(context.Background(), "refresh", err)
	}
}

// ProviderReport runs discovery once and describes what the provider offers
// the BFF: the client authentication it will use, which logout and
// revocation endpoints exist and how the mix-up defense works with it.
// `bff check` prints it.
func (s *Server) ProviderReport(ctx context.Context) (string, error) {
	if err := s.idp.Discover(ctx); err != nil {
		return "", err
	}
	c, err := s.idp.Capabilities()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	yes := func(ok bool, offered, missing string) string {
		if ok {
			return offered
		}
		return missing
	}
	fmt.Fprintf(&b, "provider %s: discovery ok\n", s.idp.Issuer())
	fmt.Fprintf(&b, "  client authentication: %s\n", c.TokenAuthMethod)
	dpop := yes(c.DPoPOffered, "offered, not used (no oidc.dpop_key_file): tokens are bearer tokens",
		"not offered: tokens are bearer tokens")
	if c.DPoP {
		dpop = yes(c.DPoPOffered, "used: access tokens are bound to the BFF's key ("+s.cfg.OIDC.DPoP.Alg()+"), upstreams get a proof per request",
			"configured but not advertised: a provider without DPoP answers with bearer tokens")
	}
	fmt.Fprintf(&b, "  DPoP (RFC 9449): %s\n", dpop)
	if c := s.cfg.OIDC.ClientCert; c != nil {
		fmt.Fprintf(&b, "  client certificate: %s, valid until %s\n", c.Leaf().Subject, c.Leaf().NotAfter.UTC().Format(time.RFC3339))
	}
	if k := s.cfg.OIDC.ClientKeys; k != nil {
		kid, alg := k.Signing()
		fmt.Fprintf(&b, "  client assertions signed with kid %q (%s); public keys at %s%s/jwks.json\n", kid, alg, s.cfg.PublicURL, s.cfg.Prefix)
	}
	fmt.Fprintf(&b, "  RFC 9207 iss parameter: %s\n", yes(c.IssParameter,
		"advertised: a callback without iss, or with another issuer, is refused",
		"not advertised: the mix-up defense rests on the pinned issuer (one provider per client; codes go only to its token endpoint, ID tokens must name it)"))
	fmt.Fprintf(&b, "  userinfo: %s\n", yes(c.UserInfo, "offered", "not offered: oidc.userinfo can add no claims"))
	fmt.Fprintf(&b, "  logout at the provider (end_session_endpoint): %s\n", yes(c.EndSession,
		"offered", "not offered: /auth/logout ends the BFF session and returns to post_logout_redirect_url; the provider's own session stays"))
	fmt.Fprintf(&b, "  refresh-token revocation (RFC 7009): %s\n", yes(c.Revocation,
		"offered", "not offered: a logged-out refresh token lives at the provider until it expires (the BFF's revocation list still refuses the cookie)"))
	fmt.Fprintf(&b, "  back-channel logout: %s\n", yes(c.BackchannelLogout, "offered", "not advertised"))
	par := yes(c.PAROffered, "offered, not used (oidc.par: off): sign-in parameters travel in the browser's URL",
		"not offered: sign-in parameters travel in the browser's URL (PKCE and state still protect them)")
	if c.PAR {
		par = "used: sign-in pushes its parameters; the browser's URL carries only a request_uri"
	}
	fmt.Fprintf(&b, "  pushed authorization requests (RFC 9126): %s\n", par)
	return b.String(), nil
}

// clientJWKS serves the public half of the private_key_jwt keys (RFC 7517
// JWK set), for providers that fetch the client's keys from a jwks_uri. Every
// key of oidc.client_key_file is listed, so a key added after the signing one
// is known before it signs. Cacheable for a minute: rotation waits that long.
func (s *Server) clientJWKS(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=60")
	c.Header("Pragma", "")
	c.Data(http.StatusOK, "application/jwk-set+json", s.cfg.OIDC.ClientKeys.Public())
}

// ProviderKeys fetches the provider's JWKS once and says how many keys can
// verify an ID token (for `bff check -online`); an error when none can, or
// they cannot be fetched. Call after ProviderReport (discovery).
func (s *Server) ProviderKeys(ctx context.Context) (string, error) {
	n, algs, err := s.idp.SigningKeys(ctx)
	if err != nil {
		return "", err
	}
	named := "no algorithm named"
	if len(algs) > 0 {
		named = strings.Join(algs, ", ")
	}
	return fmt.Sprintf("  ID-token signing keys (jwks_uri): %d usable (%s)\n", n, named), nil
}
