package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPARModes: which mode pushes against which provider, and the
// disagreements that fail discovery with a message naming PAR.
func TestPARModes(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		endpoint  bool // the provider advertises /par
		required  bool // require_pushed_authorization_requests
		pushes    bool
		discovery string // error text; "" for success
	}{
		{"auto, offered", PARAuto, true, false, true, ""},
		{"auto spelt out, offered", "auto", true, false, true, ""},
		{"auto, not offered", PARAuto, false, false, false, ""},
		{"auto, required by the provider", PARAuto, true, true, true, ""},
		{"required, offered", PARRequired, true, false, true, ""},
		{"required, not offered", PARRequired, false, false, false, "advertises no pushed_authorization_request_endpoint"},
		{"off, offered", PAROff, true, false, false, ""},
		{"off, required by the provider", PAROff, true, true, false, "requires pushed authorization requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t)
			if tt.endpoint {
				p.meta["pushed_authorization_request_endpoint"] = p.issuer + "/par"
			}
			if tt.required {
				p.meta["require_pushed_authorization_requests"] = true
			}
			cfg := p.config()
			cfg.PAR = tt.mode
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Discover(context.Background())
			if tt.discovery != "" {
				if err == nil || !strings.Contains(err.Error(), tt.discovery) || errors.Is(err, ErrProvider) {
					t.Fatalf("Discover = %v, want a configuration error containing %q", err, tt.discovery)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			raw, err := c.AuthURL(context.Background(), NewFlow())
			if err != nil {
				t.Fatalf("AuthURL: %v", err)
			}
			u, _ := url.Parse(raw)
			if pushed := u.Query().Get("request_uri") != ""; pushed != tt.pushes || len(p.parReqs) != map[bool]int{true: 1}[tt.pushes] {
				t.Errorf("URL %s after %d pushes; want pushed %v", raw, len(p.parReqs), tt.pushes)
			}
			caps, _ := c.Capabilities()
			if caps.PAR != tt.pushes || caps.PAROffered != tt.endpoint {
				t.Errorf("Capabilities PAR %v, offered %v; want %v, %v", caps.PAR, caps.PAROffered, tt.pushes, tt.endpoint)
			}
		})
	}
	if _, err := New(Config{Issuer: "https://op.example", ClientID: "c", ClientSecret: "s", RedirectURL: testRedirect, PAR: "sometimes"}); err == nil || !strings.Contains(err.Error(), "PAR") {
		t.Errorf("New with PAR sometimes = %v, want an error naming PAR", err)
	}
}

// TestPARPush: what is pushed (every parameter the URL would have carried,
// with the client's authentication) and what the browser gets (client_id
// and request_uri only, on the authorization endpoint's own query).
func TestPARPush(t *testing.T) {
	for _, method := range []string{AuthMethodBasic, AuthMethodPost} {
		t.Run(method, func(t *testing.T) {
			p := newFakeProvider(t)
			p.meta["pushed_authorization_request_endpoint"] = p.issuer + "/par"
			p.meta["authorization_endpoint"] = p.issuer + "/authorize?tenant=t1"
			c := p.client(func(c *Config) {
				c.AuthMethod = method
				c.AuthParams = map[string]string{"resource": "https://api.example"}
			})
			f := NewFlow()
			f.Params = map[string]string{"login_hint": "alice@example.com"}
			maxAge := 5 * time.Minute
			f.MaxAge = &maxAge
			raw, err := c.AuthURL(context.Background(), f)
			if err != nil {
				t.Fatalf("AuthURL: %v", err)
			}
			u, _ := url.Parse(raw)
			want := url.Values{"tenant": {"t1"}, "client_id": {testClientID}, "request_uri": {"urn:ietf:params:oauth:request_uri:abc"}}
			if u.Path != "/authorize" || u.Query().Encode() != want.Encode() {
				t.Errorf("browser URL %s, want /authorize with %s only", raw, want.Encode())
			}
			if len(p.parReqs) != 1 {
				t.Fatalf("%d pushes, want 1", len(p.parReqs))
			}
			req := p.parReqs[0]
			for k, v := range map[string]string{
				"response_type": "code", "client_id": testClientID, "redirect_uri": testRedirect, "state": f.State,
				"nonce": f.Nonce, "code_challenge_method": "S256", "resource": "https://api.example",
				"login_hint": "alice@example.com", "max_age": "300",
			} {
				if got := req.form.Get(k); got != v {
					t.Errorf("pushed %s=%q, want %q", k, got, v)
				}
			}
			if req.form.Get("code_challenge") == "" || req.form.Get("scope") == "" || req.form.Has("code_verifier") {
				t.Errorf("pushed form %v: want a challenge and scopes, never the verifier", req.form)
			}
			switch method {
			case AuthMethodBasic:
				if !req.basic || req.user != testClientID || req.pass != testSecret || req.form.Has("client_secret") {
					t.Errorf("basic auth %v %q/%q, form secret %v", req.basic, req.user, req.pass, req.form.Has("client_secret"))
				}
			case AuthMethodPost:
				if req.basic || req.form.Get("client_secret") != testSecret {
					t.Errorf("post auth: basic %v, form secret %q", req.basic, req.form.Get("client_secret"))
				}
			}
			if strings.Contains(raw, testSecret) || strings.Contains(raw, f.Nonce) || strings.Contains(raw, f.State) {
				t.Error("the browser URL carries the secret, nonce or state")
			}
		})
	}
}

// TestPARErrors: the push's failures sort like the token endpoint's, except
// that a refused parameter is the authorization request's error.
func TestPARErrors(t *testing.T) {
	var authErr *AuthorizationError
	tests := []struct {
		name  string
		reply reply
		check func(error) bool
		want  string
	}{
		{"client refused", jsonReply(http.StatusUnauthorized, map[string]string{"error": "invalid_client"}),
			func(err error) bool { return errors.Is(err, ErrClientAuth) }, "ErrClientAuth"},
		{"401 without a code", reply{status: http.StatusUnauthorized, body: "nope"},
			func(err error) bool { return errors.Is(err, ErrClientAuth) }, "ErrClientAuth"},
		{"parameter refused", jsonReply(http.StatusBadRequest, map[string]string{"error": "invalid_request"}),
			func(err error) bool { return errors.As(err, &authErr) && authErr.Code == "invalid_request" }, "AuthorizationError invalid_request"},
		{"scope refused", jsonReply(http.StatusBadRequest, map[string]string{"error": "invalid_scope"}),
			func(err error) bool { return errors.As(err, &authErr) && authErr.Code == "invalid_scope" }, "AuthorizationError invalid_scope"},
		{"provider failing", jsonReply(http.StatusInternalServerError, map[string]string{"error": "server_error"}),
			func(err error) bool { return errors.Is(err, ErrProvider) }, "ErrProvider"},
		{"rate limited", reply{status: http.StatusTooManyRequests},
			func(err error) bool { return errors.Is(err, ErrProvider) }, "ErrProvider"},
		{"HTML error page", reply{status: http.StatusBadRequest, contentType: "text/html", body: "<h1>bad</h1>"},
			func(err error) bool { return errors.Is(err, ErrProvider) }, "ErrProvider"},
		{"created without request_uri", jsonReply(http.StatusCreated, map[string]any{"expires_in": 60}),
			func(err error) bool { return errors.Is(err, ErrInvalidResponse) }, "ErrInvalidResponse"},
		{"created, not JSON", reply{status: http.StatusCreated, body: "ok"},
			func(err error) bool { return errors.Is(err, ErrInvalidResponse) }, "ErrInvalidResponse"},
		{"request_uri with a line break", jsonReply(http.StatusCreated, map[string]any{"request_uri": "urn:x\r\nSet-Cookie: a=b"}),
			func(err error) bool { return errors.Is(err, ErrInvalidResponse) }, "ErrInvalidResponse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t)
			p.meta["pushed_authorization_request_endpoint"] = p.issuer + "/par"
			p.parReply = func(url.Values) reply { return tt.reply }
			c := p.client(nil)
			raw, err := c.AuthURL(context.Background(), NewFlow())
			if err == nil || raw != "" || !tt.check(err) {
				t.Fatalf("AuthURL = %q, %v; want %s", raw, err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Error("the error carries the client secret")
			}
		})
	}
	t.Run("endpoint unreachable", func(t *testing.T) {
		p := newFakeProvider(t)
		p.meta["pushed_authorization_request_endpoint"] = "http://127.0.0.1:1/par"
		c := p.client(nil)
		if _, err := c.AuthURL(context.Background(), NewFlow()); !errors.Is(err, ErrProvider) {
			t.Fatalf("AuthURL = %v, want ErrProvider", err)
		}
	})
	t.Run("200 is accepted like 201", func(t *testing.T) {
		p := newFakeProvider(t)
		p.meta["pushed_authorization_request_endpoint"] = p.issuer + "/par"
		p.parReply = func(url.Values) reply {
			return jsonReply(http.StatusOK, map[string]any{"request_uri": "urn:x", "expires_in": 60})
		}
		c := p.client(nil)
		if raw, err := c.AuthURL(context.Background(), NewFlow()); err != nil || !strings.Contains(raw, "request_uri=urn%3Ax") {
			t.Fatalf("AuthURL = %q, %v", raw, err)
		}
	})
}
