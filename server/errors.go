package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/proxy"
	"github.com/bff-project/bff/session"
)

var (
	errForbidden    = errors.New("server: cross-site or unmarked request")
	errLoginExpired = errors.New("server: sign-in expired or started elsewhere")
	errNotFound     = errors.New("server: not found")
	errMethod       = errors.New("server: method not allowed")
	errPanic        = errors.New("server: internal panic")
	errBodyTimeout  = errors.New("server: request body too slow")
)

// publicError is what a client is told: a status, an OAuth-style error code
// and a fixed description. err.Error() never reaches a client.
type publicError struct {
	status int
	code   string
	desc   string
}

// classify is the one place that maps errors to public errors.
func classify(err error) publicError {
	var authErr *oauth.AuthorizationError
	switch {
	// First: a body that never fully arrived is the answer, whatever the
	// handler then made of the truncated request.
	case errors.Is(err, proxy.ErrBodyTimeout), errors.Is(err, errBodyTimeout):
		return publicError{http.StatusRequestTimeout, "request_timeout", "request body too slow"}
	case errors.Is(err, session.ErrNoSession):
		return publicError{http.StatusUnauthorized, "unauthenticated", "sign-in required"}
	case errors.Is(err, proxy.ErrDerived):
		// A route's derived token: a refused subject token is the
		// session's end; anything else the provider refuses for the
		// route (invalid_target, invalid_scope, unauthorized_client, a
		// scope the session lacks) never improves by signing in again.
		var te *oauth.TokenError
		switch {
		case errors.Is(err, oauth.ErrProvider), errors.Is(err, oauth.ErrNotReady):
			return publicError{http.StatusServiceUnavailable, "temporarily_unavailable", "identity provider unavailable; try again"}
		case errors.As(err, &te) && te.Code == "invalid_grant":
			return publicError{http.StatusUnauthorized, "unauthenticated", "session ended; sign in again"}
		default:
			return publicError{http.StatusInternalServerError, "misconfigured", "the identity provider would not issue a token for this API; the operator must fix the route's resource, audience or scopes"}
		}
	case errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrRevoked),
		errors.Is(err, oauth.ErrReauthRequired) && !errors.Is(err, errDuringLogin):
		return publicError{http.StatusUnauthorized, "unauthenticated", "session ended; sign in again"}
	case errors.Is(err, errForgedInternal):
		// As for a path that does not exist: a forged request learns
		// nothing, not even that the instance is clustered.
		return publicError{http.StatusNotFound, "not_found", "no such endpoint"}
	case errors.Is(err, errForbidden):
		return publicError{http.StatusForbidden, "forbidden", "cross-site request or missing anti-forgery header"}
	case errors.Is(err, errBadTicket):
		return publicError{http.StatusBadRequest, "invalid_request", "sign-out link invalid; sign out again"}
	case errors.Is(err, errBadReturnTo):
		return publicError{http.StatusBadRequest, "invalid_request", "returnTo must be a same-origin relative path"}
	case errors.Is(err, errLoginOption):
		return publicError{http.StatusBadRequest, "invalid_request", "sign-in option not allowed"}
	case errors.Is(err, errLoginOptionValue):
		return publicError{http.StatusBadRequest, "invalid_request", "sign-in option repeated or with an invalid value"}
	case errors.As(err, &authErr):
		return publicError{http.StatusBadRequest, authorizationCode(authErr.Code), "the identity provider did not sign you in"}
	case errors.Is(err, oauth.ErrStateMismatch), errors.Is(err, errLoginExpired):
		return publicError{http.StatusBadRequest, "invalid_state", "sign-in expired or was started elsewhere; start again"}
	case errors.Is(err, oauth.ErrInvalidLogoutToken):
		return publicError{http.StatusBadRequest, "invalid_request", "invalid logout token"}
	case errors.Is(err, oauth.ErrNotReady):
		return publicError{http.StatusServiceUnavailable, "temporarily_unavailable", "identity provider not reachable yet"}
	case errors.Is(err, oauth.ErrProvider):
		return publicError{http.StatusServiceUnavailable, "temporarily_unavailable", "identity provider unavailable; try again"}
	case errors.Is(err, oauth.ErrClientAuth):
		// Not the user's doing and not transient: no "try again".
		return publicError{http.StatusInternalServerError, "misconfigured", "the identity provider refused this service's client credentials; the operator must fix its configuration"}
	case errors.Is(err, errDuringLogin):
		return publicError{http.StatusBadRequest, "login_failed", "sign-in could not be completed; start again"}
	case errors.Is(err, proxy.ErrNoRoute), errors.Is(err, errNotFound):
		return publicError{http.StatusNotFound, "not_found", "no such endpoint"}
	case errors.Is(err, errMethod), errors.Is(err, proxy.ErrMethod):
		return publicError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"}
	case errors.Is(err, proxy.ErrUpgrade):
		return publicError{http.StatusBadRequest, "invalid_request", "only WebSocket upgrades are forwarded"}
	case errors.Is(err, proxy.ErrBadPath):
		return publicError{http.StatusBadRequest, "invalid_request", "path with dot segments"}
	case errors.Is(err, proxy.ErrUpstream):
		return publicError{http.StatusBadGateway, "bad_gateway", "upstream API unavailable"}
	case errors.Is(err, crypto.ErrTooLarge):
		return publicError{http.StatusInternalServerError, "session_too_large", "the session does not fit in cookies"}
	default:
		return publicError{http.StatusInternalServerError, "server_error", "internal error"}
	}
}

// authorizationCodes are the error codes of an authorization response that
// the BFF passes on (RFC 6749 section 4.1.2.1, OpenID Connect Core 3.1.2.6).
// The code comes from the query string: anything else is reported as
// "authorization_error", so it can neither be echoed nor grow the metrics.
var authorizationCodes = map[string]bool{
	"invalid_request": true, "unauthorized_client": true, "access_denied": true,
	"unsupported_response_type": true, "invalid_scope": true, "server_error": true,
	"temporarily_unavailable": true, "interaction_required": true, "login_required": true,
	"account_selection_required": true, "consent_required": true, "invalid_request_uri": true,
	"invalid_request_object": true, "request_not_supported": true, "request_uri_not_supported": true,
	"registration_not_supported": true,
}

func authorizationCode(code string) string {
	if authorizationCodes[code] {
		return code
	}
	return "authorization_error"
}

// errDuringLogin marks errors of the callback, where a rejected code is a
// failed sign-in (400), not an ended session (401).
var errDuringLogin = errors.New("server: sign-in failed")

// fail writes err as a JSON error and logs it with its class. Headers already
// set on the response (a refreshed or clearing Set-Cookie) are kept.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	pe := s.recordRefusal(r, err)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if pe.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	if pe.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Cookie realm="bff"`)
	}
	w.WriteHeader(pe.status)
	writeJSON(w, gin.H{"error": pe.code, "error_description": pe.desc})
}

// recordRefusal counts and logs a refused request and returns what the
// client is told: fail answers it as JSON, a failed sign-in's navigation as
// a redirect to the app (loginFailed).
func (s *Server) recordRefusal(r *http.Request, err error) publicError {
	pe := classify(err)
	level := slog.LevelInfo
	if pe.status >= 500 {
		level = slog.LevelError
	}
	s.metrics.refused.WithLabelValues(pe.code).Inc()
	s.log.Log(r.Context(), level, "request refused", "path", r.URL.Path, "status", pe.status, "reason", pe.code, "err", err)
	return pe
}

// abort is fail for Gin handlers.
func (s *Server) abort(c *gin.Context, err error) {
	s.fail(c.Writer, c.Request, err)
	c.Abort()
}
