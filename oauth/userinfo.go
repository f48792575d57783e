package oauth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// ErrUserInfo means the userinfo endpoint could not be used: unreachable, an
// answer other than 200, or a body that is not a (validly signed) JSON
// object. The sign-in itself is sound; the caller decides whether it goes on
// without the claims.
var ErrUserInfo = errors.New("oauth: userinfo unavailable")

// UserInfoBudget is how many bytes of JSON the userinfo claims kept for a
// session may take; claims past it are dropped, the largest first, so that
// the session cookies stay within their budget.
const UserInfoBudget = 1536

// maxUserInfoBody bounds what is read from the userinfo endpoint.
const maxUserInfoBody = 256 << 10

// UserInfo is the userinfo answer reduced to what a session may carry.
type UserInfo struct {
	// Claims are the scalar (string, number, boolean) and string-array
	// claims, as compact JSON, without the claims about the token or the
	// authentication (see userInfoSkip), within UserInfoBudget.
	Claims map[string]json.RawMessage
	// Dropped is how many usable claims were left out for the budget.
	Dropped int
}

// userInfoSkip are claims that are not the user's attributes, or that only
// the verified ID token may state (auth_time, acr, amr): a userinfo answer
// never overrides them.
var userInfoSkip = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"nonce": true, "azp": true, "at_hash": true, "c_hash": true, "s_hash": true, "sid": true,
	"auth_time": true, "acr": true, "amr": true, "cnf": true, "_claim_names": true, "_claim_sources": true,
}

// UserInfo fetches the userinfo claims once with t's access token (OpenID
// Connect Core 5.3) and requires their sub to be t.Subject (5.3.4). It
// returns nil, nil when Config.UserInfo is off or the provider advertises no
// userinfo endpoint. It uses the Client's HTTP client and timeout.
//
// Errors: ErrInvalidResponse when the answer names another subject, or none;
// ErrUserInfo (with ErrProvider for a network error, 5xx or 429) when the
// endpoint could not be used; ErrNotReady before discovery.
func (c *Client) UserInfo(ctx context.Context, t *Tokens) (*UserInfo, error) {
	if !c.cfg.UserInfo {
		return nil, nil
	}
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	op := p.op
	if op.UserInfoEndpoint() == "" {
		return nil, nil
	}
	rec := &recordingTransport{base: c.httpClient.Transport}
	hc := *c.httpClient
	hc.Transport = rec
	ui, err := op.UserInfo(oidc.ClientContext(ctx, &hc), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: t.AccessToken}))
	switch {
	case err == nil:
	case rec.status == 0:
		// No answer. The error names the endpoint, never the token (a header).
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("%w: %w: %w", ErrUserInfo, ErrProvider, err)
		}
		return nil, fmt.Errorf("%w: request failed", ErrUserInfo)
	case rec.status >= 500 || rec.status == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: %w: userinfo answered %d", ErrUserInfo, ErrProvider, rec.status)
	default:
		// go-oidc's message quotes the body, which may echo a credential.
		return nil, fmt.Errorf("%w: userinfo answered %d with an unusable body", ErrUserInfo, rec.status)
	}
	if ui.Subject == "" || ui.Subject != t.Subject {
		return nil, fmt.Errorf("%w: userinfo sub is not the ID token's", ErrInvalidResponse)
	}
	var raw map[string]json.RawMessage
	if err := ui.Claims(&raw); err != nil {
		return nil, fmt.Errorf("%w: userinfo is not a JSON object", ErrUserInfo)
	}
	return keepClaims(raw, UserInfoBudget), nil
}

// keepClaims keeps the claims a session may carry (see UserInfo.Claims) and
// drops the largest until their JSON fits budget bytes.
func keepClaims(raw map[string]json.RawMessage, budget int) *UserInfo {
	type claim struct {
		name string
		v    json.RawMessage
		size int
	}
	var kept []claim
	total := len("{}")
	for name, v := range raw {
		if name == "" || userInfoSkip[name] {
			continue
		}
		if v = compactClaim(v); v == nil {
			continue
		}
		n, _ := json.Marshal(name)
		c := claim{name, v, len(n) + len(":") + len(v) + len(",")}
		kept = append(kept, c)
		total += c.size
	}
	// Largest first, then by name, so the same answer keeps the same claims.
	slices.SortFunc(kept, func(a, b claim) int {
		return cmp.Or(cmp.Compare(b.size, a.size), cmp.Compare(a.name, b.name))
	})
	ui := &UserInfo{Claims: make(map[string]json.RawMessage, len(kept))}
	for _, c := range kept {
		if total > budget {
			total -= c.size
			ui.Dropped++
			continue
		}
		ui.Claims[c.name] = c.v
	}
	return ui
}

// compactClaim returns v as compact JSON when it is a string, number,
// boolean or array of strings, and nil otherwise (objects, null, mixed
// arrays).
func compactClaim(v json.RawMessage) json.RawMessage {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if d.Decode(&x) != nil {
		return nil
	}
	switch x := x.(type) {
	case string, json.Number, bool:
	case []any:
		for _, e := range x {
			if _, ok := e.(string); !ok {
				return nil
			}
		}
	default:
		return nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil
	}
	return b
}

// recordingTransport remembers the status of the answer and bounds its body.
// One per request.
type recordingTransport struct {
	base   http.RoundTripper
	status int
}

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	t.status = resp.StatusCode
	resp.Body = limitBody(resp.Body, maxUserInfoBody)
	return resp, nil
}

// limitBody fails a read past n bytes instead of truncating silently.
func limitBody(rc io.ReadCloser, n int64) io.ReadCloser {
	return &limitedBody{rc, n}
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errors.New("oauth: userinfo answer too large")
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errors.New("oauth: userinfo answer too large")
	}
	return n, err
}
