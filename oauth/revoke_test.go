package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

type revokeTest struct {
	name    string
	meta    func(m map[string]any)
	hint    string
	answer  reply
	down    bool
	wantErr error
	notErr  []error
	check   func(t *testing.T, r request)
}

func (tc revokeTest) run(t *testing.T) {
	p := newFakeProvider(t)
	if tc.meta != nil {
		tc.meta(p.meta)
	}
	c := p.client(nil)
	p.revokeReply = tc.answer
	if tc.down {
		p.srv.Close()
	}
	err := c.Revoke(t.Context(), testRefresh, tc.hint)
	assertNoLeak(t, err, p.secrets())
	checkErr(t, err, tc.wantErr, tc.notErr...)
	reqs := p.revokeRequests()
	if tc.wantErr != nil && (errors.Is(err, ErrUnsupported) || tc.down || tc.answer.status == 0) {
		if len(reqs) != 0 {
			t.Errorf("%d revocation requests, want none", len(reqs))
		}
		return
	}
	if len(reqs) != 1 {
		t.Fatalf("%d revocation requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.form.Get("token") != testRefresh {
		t.Errorf("token = %q", r.form.Get("token"))
	}
	if got, has := r.form.Get("token_type_hint"), r.form.Has("token_type_hint"); got != tc.hint || has != (tc.hint != "") {
		t.Errorf("token_type_hint = %q (present %t), want %q", got, has, tc.hint)
	}
	if tc.check != nil {
		tc.check(t, r)
	} else if !r.basic || r.user != testClientID || r.pass != testSecret || r.form.Has("client_secret") {
		t.Errorf("want client_secret_basic, got basic=%t user=%q body secret=%t", r.basic, r.user, r.form.Has("client_secret"))
	}
}

func TestRevoke(t *testing.T) {
	ok := reply{status: http.StatusOK}
	tests := []revokeTest{
		{name: "basic", hint: "refresh_token", answer: ok},
		{name: "access token hint", hint: "access_token", answer: ok},
		{name: "no hint", answer: ok},
		{
			name:   "post",
			meta:   func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{AuthMethodPost} },
			hint:   "refresh_token",
			answer: ok,
			check: func(t *testing.T, r request) {
				if r.authHeader != "" || r.form.Get("client_id") != testClientID || r.form.Get("client_secret") != testSecret {
					t.Errorf("want client_secret_post, got Authorization %q body %v", r.authHeader, r.form.Has("client_secret"))
				}
			},
		},
		{name: "503", hint: "refresh_token", answer: reply{status: http.StatusServiceUnavailable}, wantErr: ErrProvider},
		{name: "500", hint: "refresh_token", answer: reply{status: http.StatusInternalServerError}, wantErr: ErrProvider},
		{
			name:    "400",
			hint:    "refresh_token",
			answer:  jsonReply(http.StatusBadRequest, map[string]string{"error": "unsupported_token_type", "error_description": testRefresh}),
			wantErr: errAny,
			notErr:  []error{ErrProvider},
		},
		{
			name:    "401",
			hint:    "refresh_token",
			answer:  jsonReply(http.StatusUnauthorized, map[string]string{"error": "invalid_client"}),
			wantErr: errAny,
			notErr:  []error{ErrProvider},
		},
		{name: "connection refused", hint: "refresh_token", down: true, wantErr: ErrProvider},
		{
			name:    "no endpoint",
			meta:    func(m map[string]any) { delete(m, "revocation_endpoint") },
			wantErr: ErrUnsupported,
		},
		{
			name:    "unparsable endpoint",
			meta:    func(m map[string]any) { m["revocation_endpoint"] = "http://[::1" },
			wantErr: errAny,
			notErr:  []error{ErrProvider},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func TestEndSessionURL(t *testing.T) {
	tests := []struct {
		name    string
		meta    func(m map[string]any)
		cfg     func(c *Config)
		hint    string
		want    url.Values // exact query
		wantErr error
	}{
		{
			name: "full",
			hint: "the-id-token",
			want: url.Values{"tenant": {"t1"}, "client_id": {testClientID}, "id_token_hint": {"the-id-token"}, "post_logout_redirect_uri": {testPostLogout}},
		},
		{
			name: "no hint, no post-logout URL",
			cfg:  func(c *Config) { c.PostLogoutRedirectURL = "" },
			want: url.Values{"tenant": {"t1"}, "client_id": {testClientID}},
		},
		{
			name:    "no endpoint",
			meta:    func(m map[string]any) { delete(m, "end_session_endpoint") },
			hint:    "the-id-token",
			wantErr: ErrUnsupported,
		},
		{
			name:    "unparsable endpoint",
			meta:    func(m map[string]any) { m["end_session_endpoint"] = "http://[::1" },
			hint:    "the-id-token",
			wantErr: ErrInvalidResponse,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProvider(t)
			if tc.meta != nil {
				tc.meta(p.meta)
			}
			c := p.client(tc.cfg)
			raw, err := c.EndSessionURL(tc.hint)
			checkErr(t, err, tc.wantErr)
			if err != nil {
				assertNoLeak(t, err, []string{tc.hint})
				return
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Scheme + "://" + u.Host + u.Path; got != p.issuer+"/logout" {
				t.Errorf("endpoint %q", got)
			}
			if got := u.Query(); got.Encode() != tc.want.Encode() {
				t.Errorf("query %v, want %v", got, tc.want)
			}
		})
	}
}
