package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// callAPI sends a GET with an optional bearer token and returns status, body and headers.
func callAPI(t *testing.T, u, token string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, readBody(t, resp), resp.Header
}

// foreignToken is a well-formed JWT for the right issuer and audience,
// signed by a key the provider never published.
func foreignToken(t *testing.T, issuer string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   issuer,
		Subject:  "intruder",
		Audience: jwt.Audience{testClientID},
		Expiry:   jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAPIRefusesBadTokens(t *testing.T) {
	e := startEnv(t)
	tests := []struct {
		name   string
		header string // Authorization
	}{
		{"no token", ""},
		{"not bearer", "Basic " + "YWxhZGRpbjpvcGVuc2VzYW1l"},
		{"empty bearer", "Bearer "},
		{"garbage", "Bearer not-a-jwt"},
		{"foreign key", "Bearer " + foreignToken(t, e.provider.Issuer())},
	}
	for _, path := range []string{"/api/whoami", "/api/echo", "/api/events"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, e.api.URL()+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readBody(t, resp)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; body %s", resp.StatusCode, body)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "invalid_token" {
					t.Errorf("body = %s, want JSON error invalid_token", body)
				}
			})
		}
	}
}

func TestAPIAudience(t *testing.T) {
	e := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other, err := StartAPI(ctx, APIConfig{Addr: "127.0.0.1:0", Issuer: e.provider.Issuer(), Audience: "another-api"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tok := signIn(t, e)
	if status, body, _ := callAPI(t, other.URL()+"/api/whoami", tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("API with another audience: %d %s, want 401", status, body)
	}
}

func TestAPIProviderDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api, err := StartAPI(ctx, APIConfig{Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1", Audience: testClientID})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	if status, body, _ := callAPI(t, api.URL()+"/api/whoami", "a.b.c"); status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503; body %s", status, body)
	}
}

func TestStartAPIConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  APIConfig
	}{
		{"no issuer", APIConfig{Addr: "127.0.0.1:0", Audience: "a"}},
		{"no audience", APIConfig{Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := StartAPI(context.Background(), tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				if a != nil {
					_ = a.Close()
				}
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// signIn runs the code flow and returns the tokens.
func signIn(t *testing.T, e *testEnv) *oauth2.Token {
	t.Helper()
	conf := e.oauth2Config(oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(context.Background(), authorize(t, conf, "state", "nonce", verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func TestAPIEcho(t *testing.T) {
	e := startEnv(t)
	tok := signIn(t, e)
	const cookieValue, headerValue = "cookie-value-must-not-echo", "header-value-must-not-echo"

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, e.api.URL()+"/api/echo", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("x-custom", headerValue)
			req.AddCookie(&http.Cookie{Name: "b-cookie", Value: cookieValue})
			req.AddCookie(&http.Cookie{Name: "a-cookie", Value: cookieValue})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			body := string(raw)
			for _, secret := range []string{cookieValue, headerValue, tok.AccessToken} {
				if strings.Contains(body, secret) {
					t.Errorf("echo leaks a value: %s", body)
				}
			}
			var got struct {
				Method           string   `json:"method"`
				Path             string   `json:"path"`
				HeaderNames      []string `json:"header_names"`
				CookieNames      []string `json:"cookie_names"`
				HasAuthorization bool     `json:"has_authorization"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Method != method || got.Path != "/api/echo" || !got.HasAuthorization {
				t.Errorf("echo = %+v", got)
			}
			if !slices.IsSorted(got.HeaderNames) || !slices.Contains(got.HeaderNames, "X-Custom") || !slices.Contains(got.HeaderNames, "Authorization") {
				t.Errorf("header_names = %v", got.HeaderNames)
			}
			if !slices.Equal(got.CookieNames, []string{"a-cookie", "b-cookie"}) {
				t.Errorf("cookie_names = %v", got.CookieNames)
			}
		})
	}
}

// tick is one event of /api/events.
type tick struct {
	N    int    `json:"n"`
	Sub  string `json:"sub"`
	Exp  int64  `json:"exp"`
	Time string `json:"time"`
}

// eventStream is an open GET /api/events.
type eventStream struct {
	resp   *http.Response
	events chan tick  // closed when the stream ends
	err    chan error // the read error that ended it (io.EOF: the server ended it)
}

// openEvents opens /api/events with a bearer token and reads its events in
// the background. The stream is closed when the test ends.
func openEvents(t *testing.T, e *testEnv, token string) *eventStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.api.URL()+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	s := &eventStream{resp: resp, events: make(chan tick, 100), err: make(chan error, 1)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var tk tick
			if err := json.Unmarshal([]byte(data), &tk); err != nil {
				s.err <- fmt.Errorf("event data %q: %w", data, err)
				return
			}
			s.events <- tk
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		s.err <- err
	}()
	return s
}

// next returns the next event, or fails the test after timeout.
func (s *eventStream) next(t *testing.T, timeout time.Duration) tick {
	t.Helper()
	select {
	case tk, ok := <-s.events:
		if !ok {
			t.Fatalf("the stream ended: %v", <-s.err)
		}
		return tk
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return tick{}
}

// end waits up to timeout for the stream to end and returns why.
func (s *eventStream) end(t *testing.T, timeout time.Duration) error {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return <-s.err
			}
		case <-deadline:
			t.Fatalf("the stream did not end within %s", timeout)
		}
	}
}

func TestAPIEvents(t *testing.T) {
	e := startEnv(t)
	tok := signIn(t, e)
	sub, exp := tokenSubExp(t, e, tok.AccessToken)
	s := openEvents(t, e, tok.AccessToken)
	for _, want := range []string{"Content-Type=text/event-stream", "Cache-Control=no-store"} {
		k, v, _ := strings.Cut(want, "=")
		if got := s.resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	start := time.Now()
	for n := 1; n <= 2; n++ {
		tk := s.next(t, 3*time.Second)
		if tk.N != n || tk.Sub != sub || tk.Exp != exp {
			t.Errorf("event %d = %+v, want n=%d sub=%s exp=%d", n, tk, n, sub, exp)
		}
		if _, err := time.Parse(time.RFC3339, tk.Time); err != nil {
			t.Errorf("event %d time %q: %v", n, tk.Time, err)
		}
	}
	// A tick every second, the first at once.
	if d := time.Since(start); d < 700*time.Millisecond || d > 2500*time.Millisecond {
		t.Errorf("two events took %s, want about one second", d)
	}
}

// tokenSubExp verifies an access token as the API does and returns its sub
// and exp.
func tokenSubExp(t *testing.T, e *testEnv, raw string) (string, int64) {
	t.Helper()
	tok, err := e.discovery.Verifier(&gooidc.Config{ClientID: testClientID}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify the access token: %v", err)
	}
	return tok.Subject, tok.Expiry.Unix()
}

// The stream stops honouring a token once it expires: it ends, and the
// browser's EventSource reconnects through the BFF with a refreshed one.
func TestAPIEventsEndWhenTokenExpires(t *testing.T) {
	e := startEnvTTL(t, 3*time.Second)
	tok := signIn(t, e)
	_, exp := tokenSubExp(t, e, tok.AccessToken)
	s := openEvents(t, e, tok.AccessToken)
	first := s.next(t, 3*time.Second) // positive control: the stream was open
	if first.Exp != exp {
		t.Errorf("first event exp %d, want the token's %d", first.Exp, exp)
	}
	if err := s.end(t, time.Until(time.Unix(exp, 0))+3*time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("the stream ended with %v, want the server to end it", err)
	}
	if now := time.Now(); now.Before(time.Unix(exp, 0)) {
		t.Errorf("the stream ended at %s, before the token expired at %s", now.Format(time.RFC3339Nano), time.Unix(exp, 0).Format(time.RFC3339))
	}
	if !strings.Contains(e.logs.String(), "token expired") {
		t.Errorf("no log line says why the stream ended")
	}
}

// Close ends open streams at once instead of waiting for their tokens to
// expire (a Shutdown waits for requests in flight).
func TestAPIEventsEndOnClose(t *testing.T) {
	e := startEnv(t)
	tok := signIn(t, e)
	s := openEvents(t, e, tok.AccessToken)
	s.next(t, 3*time.Second) // positive control: the stream was open
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- e.api.Close() }()
	s.end(t, 3*time.Second)
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with a stream open took %s", d)
	}
}
