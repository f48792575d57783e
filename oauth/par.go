package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
)

// Pushed authorization requests (RFC 9126), Config.PAR: the BFF posts the
// authorization request's parameters to the provider, with its client
// authentication, and sends the browser to the authorization endpoint with
// only client_id and the request_uri the provider returned. The parameters
// (PKCE challenge, nonce, scopes, sign-in options) then never travel in a
// URL the browser, its history or a proxy's log can see or alter, and the
// provider knows they come from the authenticated client.
const (
	PARAuto     = ""         // push when discovery advertises an endpoint (the default; "auto" too)
	PARRequired = "required" // push always; a provider without an endpoint fails discovery
	PAROff      = "off"      // never push; a provider that requires it fails discovery
)

// parEndpoint is the endpoint AuthURL pushes to under mode, or "" for none,
// given what discovery says; an error when mode and provider disagree.
func parEndpoint(mode, endpoint string, required bool) (string, error) {
	switch mode {
	case PAROff:
		if required {
			return "", errors.New("oauth: the provider requires pushed authorization requests (RFC 9126) and PAR is off")
		}
		return "", nil
	case PARRequired:
		if endpoint == "" {
			return "", errors.New("oauth: PAR is required and the provider advertises no pushed_authorization_request_endpoint")
		}
	}
	return endpoint, nil
}

// push sends the authorization request's parameters (the query of authURL)
// to the PAR endpoint and returns the URL the browser is sent to.
func (c *Client) push(ctx context.Context, p *provider, authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("oauth: authorization URL: %w", err)
	}
	resp, err := c.postAuthenticated(ctx, p, "pushed authorization request", p.parURL, u.Query())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("%w: pushed authorization request: %w", ErrProvider, err)
	}
	requestURI, err := parAnswer(resp.StatusCode, body)
	if err != nil {
		return "", err
	}
	// The authorization endpoint's own query (some have one) stays.
	base, err := url.Parse(p.oauth2.Endpoint.AuthURL)
	if err != nil {
		return "", fmt.Errorf("oauth: authorization endpoint: %w", err)
	}
	q := base.Query()
	q.Set("client_id", c.cfg.ClientID)
	q.Set("request_uri", requestURI)
	base.RawQuery = q.Encode()
	return base.String(), nil
}

// parAnswer reads the PAR endpoint's answer: its request_uri, or an error
// of the classes AuthURL documents. The body never reaches the error.
func parAnswer(status int, body []byte) (string, error) {
	var ans struct {
		RequestURI string `json:"request_uri"`
		Error      string `json:"error"`
	}
	jsonErr := json.Unmarshal(body, &ans)
	if status != http.StatusCreated && status != http.StatusOK {
		code := ""
		if jsonErr == nil {
			code = sanitizeCode(ans.Error)
		}
		// The token endpoint's classes, except that a refused parameter is
		// the authorization request's failure: the provider would have
		// redirected with error=code without PAR.
		cls := tokenErrorClass(code, status)
		if errors.Is(cls, ErrReauthRequired) {
			return "", &AuthorizationError{Code: code}
		}
		return "", fmt.Errorf("%w: pushed authorization request: status %d %s", cls, status, code)
	}
	if jsonErr != nil || ans.RequestURI == "" || strings.ContainsAny(ans.RequestURI, " \t\r\n") {
		return "", fmt.Errorf("%w: pushed authorization request answered without a request_uri", ErrInvalidResponse)
	}
	return ans.RequestURI, nil
}

// authenticate sets the client authentication of form for the methods
// that travel in the body (client_secret_post, private_key_jwt: a fresh
// assertion each call); for basic it only removes a client_secret.
func (c *Client) authenticate(p *provider, form url.Values) error {
	form.Del("client_secret")
	form.Del("client_assertion")
	form.Del("client_assertion_type")
	switch p.authMethod {
	case AuthMethodPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	case AuthMethodTLSClient, AuthMethodSelfSignedTLSClient:
		form.Set("client_id", c.cfg.ClientID)
	case AuthMethodPrivateKeyJWT:
		a, err := c.cfg.ClientKeys.assertion(c.cfg.ClientID, c.cfg.Issuer, c.now())
		if err != nil {
			return err
		}
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", a)
	}
	return nil
}

// postAuthenticated posts form to endpoint with the client's authentication
// (HTTP Basic with the form-encoded id and secret, both in the form, or a
// client assertion, as discovery chose for the token endpoint). A request
// that cannot be sent is ErrProvider; one that cannot be built (a bad
// endpoint URL) is not.
func (c *Client) postAuthenticated(ctx context.Context, p *provider, op, endpoint string, form url.Values) (*http.Response, error) {
	f := maps.Clone(form)
	if err := c.authenticate(p, f); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(f.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauth: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.authMethod == AuthMethodBasic {
		// RFC 6749 section 2.3.1: form-encode both before Basic.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrProvider, op, err)
	}
	return resp, nil
}
