package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// DefaultAPIAddr is the sample API's listen address when APIConfig.Addr is empty.
const DefaultAPIAddr = "127.0.0.1:8082"

// errNoBearer means the request carries no bearer token.
var errNoBearer = errors.New("demo: no bearer token")

// APIConfig configures the sample API.
type APIConfig struct {
	// Addr is the listen address; empty means DefaultAPIAddr, port 0 a free port.
	Addr string
	// Issuer is the provider whose JWKS signs the tokens (required). Its
	// discovery document is fetched at the first API call, so the API may
	// start before the provider.
	Issuer string
	// Audience must be among a token's aud values (required), e.g. the BFF's client id.
	Audience string
	// Logger receives one line per API call; nil means slog.Default().
	Logger *slog.Logger
}

// API is a running sample API: a resource server that validates bearer
// tokens and does its own checks, unaware of the BFF in front of it.
type API struct {
	url string
	srv *httpServer
	h   *apiHandler
}

// StartAPI starts the sample API and returns once it is listening. It stops
// when Close is called or ctx is done.
//
//	GET /api/whoami       {"sub", "aud", "exp"} of the verified bearer token
//	GET|POST /api/echo    the names (never values) of the headers and cookies received
//	GET /api/events       a Server-Sent Events stream: every second a tick
//	                      {"n", "sub", "exp", "time"} of the verified token,
//	                      until the token expires (see events)
//
// Each needs a bearer token whose signature (provider JWKS), issuer, expiry and
// audience check out; otherwise 401 JSON with WWW-Authenticate.
func StartAPI(ctx context.Context, cfg APIConfig) (*API, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAPIAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.Issuer == "":
		return nil, fmt.Errorf("%w: API Issuer is empty", ErrInvalidConfig)
	case cfg.Audience == "":
		return nil, fmt.Errorf("%w: API Audience is empty", ErrInvalidConfig)
	}
	ln, err := listen(cfg.Addr, false)
	if err != nil {
		return nil, fmt.Errorf("demo: API listen on %s: %w", cfg.Addr, err)
	}
	h := &apiHandler{issuer: cfg.Issuer, audience: cfg.Audience, logger: cfg.Logger, tick: time.Second, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/whoami", h.authenticated(h.whoami))
	mux.HandleFunc("GET /api/echo", h.authenticated(h.echo))
	mux.HandleFunc("POST /api/echo", h.authenticated(h.echo))
	mux.HandleFunc("GET /api/events", h.authenticated(h.events))
	// A stream ends when the API stops, however it stops: Shutdown waits
	// for requests in flight, and a stream would otherwise run until its
	// token expires.
	go func() {
		select {
		case <-ctx.Done():
			h.stopStreams()
		case <-h.stop:
		}
	}()
	return &API{url: "http://" + ln.Addr().String(), srv: serve(ctx, ln, mux, cfg.Logger, "api"), h: h}, nil
}

// URL returns the API's base URL, e.g. "http://127.0.0.1:8082".
func (a *API) URL() string { return a.url }

// Close stops the API, waiting briefly for requests in flight. It is safe to
// call more than once.
func (a *API) Close() error {
	a.h.stopStreams()
	return a.srv.close()
}

type apiHandler struct {
	issuer, audience string
	logger           *slog.Logger
	tick             time.Duration // between two events of /api/events

	stopOnce sync.Once
	stop     chan struct{} // closed when the API stops: streams end

	mu       sync.Mutex
	verifier *gooidc.IDTokenVerifier // nil until discovery succeeded
}

// stopStreams ends every /api/events stream, now and to come.
func (h *apiHandler) stopStreams() { h.stopOnce.Do(func() { close(h.stop) }) }

// tokenVerifier discovers the provider once (retrying on later calls if it fails).
func (h *apiHandler) tokenVerifier(ctx context.Context) (*gooidc.IDTokenVerifier, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.verifier != nil {
		return h.verifier, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := gooidc.NewProvider(ctx, h.issuer)
	if err != nil {
		return nil, fmt.Errorf("demo: API discovery: %w", err)
	}
	// go-oidc's verifier checks a JWT's signature against the JWKS, its iss,
	// its exp and that aud contains ClientID: exactly what a resource server
	// must check of a JWT access token.
	h.verifier = p.Verifier(&gooidc.Config{ClientID: h.audience})
	return h.verifier, nil
}

type tokenHandler func(w http.ResponseWriter, r *http.Request, tok *gooidc.IDToken)

// authenticated verifies the bearer token before calling next.
func (h *apiHandler) authenticated(next tokenHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := bearer(r)
		if err != nil {
			h.logger.Info("demo API: refused", "path", r.URL.Path, "reason", "no bearer token")
			unauthorized(w, "a bearer token is required")
			return
		}
		v, err := h.tokenVerifier(r.Context())
		if err != nil {
			h.logger.Warn("demo API: cannot verify tokens", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error":             "temporarily_unavailable",
				"error_description": "the identity provider cannot be reached",
			})
			return
		}
		tok, err := v.Verify(r.Context(), raw)
		if err != nil {
			h.logger.Info("demo API: refused", "path", r.URL.Path, "reason", "invalid token")
			unauthorized(w, "the bearer token is invalid or expired")
			return
		}
		h.logger.Info("demo API: call", "method", r.Method, "path", r.URL.Path, "sub", tok.Subject)
		next(w, r, tok)
	}
}

func (h *apiHandler) whoami(w http.ResponseWriter, _ *http.Request, tok *gooidc.IDToken) {
	writeJSON(w, http.StatusOK, struct {
		Sub string   `json:"sub"`
		Aud []string `json:"aud"`
		Exp int64    `json:"exp"`
	}{tok.Subject, tok.Audience, tok.Expiry.Unix()})
}

// echo shows what reached the API: header and cookie names only, never a value.
func (h *apiHandler) echo(w http.ResponseWriter, r *http.Request, _ *gooidc.IDToken) {
	headers := make([]string, 0, len(r.Header))
	for name := range r.Header {
		headers = append(headers, http.CanonicalHeaderKey(name))
	}
	cookies := []string{}
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.Name)
	}
	slices.Sort(headers)
	slices.Sort(cookies)
	writeJSON(w, http.StatusOK, struct {
		Method           string   `json:"method"`
		Path             string   `json:"path"`
		HeaderNames      []string `json:"header_names"`
		CookieNames      []string `json:"cookie_names"`
		HasAuthorization bool     `json:"has_authorization"`
	}{r.Method, r.URL.Path, slices.Compact(headers), slices.Compact(cookies), r.Header.Get("Authorization") != ""})
}

// eventsRetry is the reconnection delay /api/events asks of EventSource.
const eventsRetry = 2 * time.Second

// events streams Server-Sent Events: a tick at once and then every second
// with the verified token's sub and exp. The token was checked when the
// stream opened, so the stream ends when the token expires, like any API
// must stop honouring it: the browser's EventSource reconnects after
// eventsRetry, through the BFF, which refreshes the token on the way, and the
// next stream shows the new exp. It also ends when the client leaves or the
// API stops.
func (h *apiHandler) events(w http.ResponseWriter, r *http.Request, tok *gooidc.IDToken) {
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // a buffering reverse proxy would hold the ticks
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", eventsRetry.Milliseconds()); err != nil {
		return
	}
	expired := time.NewTimer(time.Until(tok.Expiry))
	defer expired.Stop()
	ticker := time.NewTicker(h.tick)
	defer ticker.Stop()
	for n := 1; ; n++ {
		data, _ := json.Marshal(struct {
			N    int    `json:"n"`
			Sub  string `json:"sub"`
			Exp  int64  `json:"exp"`
			Time string `json:"time"`
		}{n, tok.Subject, tok.Expiry.Unix(), time.Now().UTC().Format(time.RFC3339)})
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", n, data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ticker.C:
		case <-expired.C:
			h.logger.Info("demo API: event stream ended", "reason", "token expired", "sub", tok.Subject)
			return
		case <-r.Context().Done():
			return
		case <-h.stop:
			return
		}
	}
}

// bearer returns the token of an "Authorization: Bearer" header (RFC 6750).
func bearer(r *http.Request) (string, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errNoBearer
	}
	return token, nil
}

func unauthorized(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":             "invalid_token",
		"error_description": description,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
