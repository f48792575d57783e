package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// userInfoTest is one userinfo answer; the default of every field is the
// happy path.
type userInfoTest struct {
	name  string
	meta  func(m map[string]any) // edits the discovery document
	cfg   func(c *Config)
	reply func(t *testing.T) reply // the endpoint's answer; nil means goodUserInfo
	down  bool                     // the provider is gone after the first UserInfo's discovery
	sub   *string                  // the ID token's subject; nil means testSubject

	wantErr   error   // errors.Is; errAny for any error
	notErr    []error // errors the answer must not be
	wantNil   bool    // nil, nil: no userinfo to fetch
	noRequest bool    // the endpoint must not be called
	check     func(t *testing.T, ui *UserInfo)
}

// goodUserInfo is a userinfo answer with every kind of claim.
func goodUserInfo() map[string]any {
	return map[string]any{
		"sub":            testSubject,
		"name":           "Alice Example",
		"email":          "alice@example.test",
		"email_verified": true,
		"updated_at":     1591012800,
		"groups":         []string{"admins", "staff"},
		// Dropped: not a scalar or a string array, or about the token.
		"address":   map[string]any{"country": "NL"},
		"nickname":  nil,
		"mixed":     []any{"a", 1},
		"iss":       "https://elsewhere.example.test",
		"aud":       testClientID,
		"exp":       1,
		"acr":       "urn:weak",
		"amr":       []string{"none"},
		"auth_time": 1,
	}
}

func (tc userInfoTest) run(t *testing.T) {
	p := newFakeProvider(t)
	if tc.meta != nil {
		tc.meta(p.meta)
	}
	var sent atomic.Int32
	c := p.client(func(c *Config) {
		c.UserInfo = true
		base := c.HTTPClient.Transport
		c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return base.RoundTrip(r)
		})}
		if tc.cfg != nil {
			tc.cfg(c)
		}
	})
	p.userInfoReply = func() reply {
		if tc.reply != nil {
			return tc.reply(t)
		}
		return jsonReply(http.StatusOK, goodUserInfo())
	}
	tok := &Tokens{AccessToken: p.issue(testAccess), Subject: testSubject, Expiry: testNow.Add(time.Hour)}
	if tc.sub != nil {
		tok.Subject = *tc.sub
	}
	if tc.down {
		// Discovery for userinfo first, then the provider goes away.
		p.userInfoReply = nil
		c.UserInfo(t.Context(), tok)
		p.srv.Close()
	}
	before := sent.Load()
	ui, err := c.UserInfo(t.Context(), tok)

	assertNoLeak(t, err, p.secrets("secret-in-the-body"))
	reqs := p.userInfoRequests()
	if tc.noRequest {
		if len(reqs) != 0 {
			t.Errorf("userinfo endpoint called %d times", len(reqs))
		}
	} else if !tc.down {
		if len(reqs) != 1 || reqs[0] != "Bearer "+testAccess {
			t.Errorf("userinfo requests %q, want one with the access token as bearer", reqs)
		}
		if sent.Load() == before {
			t.Error("userinfo request did not go through Config.HTTPClient")
		}
	}
	checkErr(t, err, tc.wantErr, tc.notErr...)
	if err != nil {
		if ui != nil {
			t.Error("claims returned with an error")
		}
		return
	}
	if tc.wantNil {
		if ui != nil {
			t.Errorf("UserInfo = %+v, want nil", ui)
		}
		return
	}
	if ui == nil {
		t.Fatal("UserInfo = nil")
	}
	if tc.check != nil {
		tc.check(t, ui)
		return
	}
	want := map[string]string{
		"name": `"Alice Example"`, "email": `"alice@example.test"`, "email_verified": "true",
		"updated_at": "1591012800", "groups": `["admins","staff"]`,
	}
	got := map[string]string{}
	for k, v := range ui.Claims {
		got[k] = string(v)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || ui.Dropped != 0 {
		t.Errorf("claims %v (dropped %d), want %v", got, ui.Dropped, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUserInfo(t *testing.T) {
	withSub := func(sub any) func(t *testing.T) reply {
		return func(t *testing.T) reply {
			c := goodUserInfo()
			if sub == nil {
				delete(c, "sub")
			} else {
				c["sub"] = sub
			}
			return jsonReply(http.StatusOK, c)
		}
	}
	signed := func(key func() any, kid string) func(t *testing.T) reply {
		return func(t *testing.T) reply {
			return reply{status: http.StatusOK, contentType: "application/jwt", body: sign(t, jose.RS256, key(), kid, goodUserInfo())}
		}
	}
	good := func() any { k, _ := testKeys(); return k }
	other := func() any { _, k := testKeys(); return k }
	tests := []userInfoTest{
		{name: "claims kept and filtered"},
		{name: "off", cfg: func(c *Config) { c.UserInfo = false }, wantNil: true, noRequest: true},
		{name: "no endpoint", meta: func(m map[string]any) { delete(m, "userinfo_endpoint") }, wantNil: true, noRequest: true},
		{name: "signed answer", reply: signed(good, testKID)},

		{name: "another subject", reply: withSub("subject-mallory"), wantErr: ErrInvalidResponse, notErr: []error{ErrUserInfo}},
		{name: "no subject", reply: withSub(nil), wantErr: ErrInvalidResponse, notErr: []error{ErrUserInfo}},
		{name: "subject not a string", reply: withSub(42), wantErr: errAny},
		{name: "no subject on either side", reply: withSub(nil), sub: ptr(""), wantErr: ErrInvalidResponse},
		{name: "signed by an unknown key", reply: signed(other, testKID), wantErr: ErrUserInfo, notErr: []error{ErrInvalidResponse}},

		{
			name:    "server error",
			reply:   func(*testing.T) reply { return reply{status: http.StatusBadGateway, body: "secret-in-the-body"} },
			wantErr: ErrUserInfo, notErr: []error{ErrInvalidResponse},
		},
		{
			name:    "server error is the provider's",
			reply:   func(*testing.T) reply { return reply{status: http.StatusServiceUnavailable} },
			wantErr: ErrProvider,
		},
		{
			name:    "500 is the provider's too",
			reply:   func(*testing.T) reply { return reply{status: http.StatusInternalServerError} },
			wantErr: ErrProvider,
		},
		{
			name: "token refused",
			reply: func(*testing.T) reply {
				return reply{status: http.StatusUnauthorized, body: "secret-in-the-body " + testAccess}
			},
			wantErr: ErrUserInfo, notErr: []error{ErrProvider, ErrInvalidResponse},
		},
		{
			name: "not JSON",
			reply: func(*testing.T) reply {
				return reply{status: http.StatusOK, contentType: "text/html", body: "<p>secret-in-the-body"}
			},
			wantErr: ErrUserInfo,
		},
		{
			name: "too large",
			reply: func(*testing.T) reply {
				c := goodUserInfo()
				c["padding"] = strings.Repeat("x", maxUserInfoBody)
				return jsonReply(http.StatusOK, c)
			},
			wantErr: ErrUserInfo,
		},
		{name: "unreachable", down: true, wantErr: ErrProvider, notErr: []error{ErrInvalidResponse}},
		{
			name: "over budget: the largest dropped",
			reply: func(*testing.T) reply {
				c := goodUserInfo()
				c["big"] = strings.Repeat("b", 1000)
				c["bigger"] = strings.Repeat("B", 1200)
				return jsonReply(http.StatusOK, c)
			},
			check: func(t *testing.T, ui *UserInfo) {
				if _, ok := ui.Claims["bigger"]; ok || ui.Dropped != 1 {
					t.Errorf("kept %v, dropped %d; want bigger dropped and nothing else", keys(ui.Claims), ui.Dropped)
				}
				if _, ok := ui.Claims["big"]; !ok || ui.Claims["name"] == nil {
					t.Errorf("kept %v; want big and the small claims", keys(ui.Claims))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestKeepClaims(t *testing.T) {
	raw := func(kv ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
		return m
	}
	long := func(n int) string { return `"` + strings.Repeat("v", n) + `"` }
	tests := []struct {
		name    string
		in      map[string]json.RawMessage
		budget  int
		want    []string // kept claim names
		dropped int
	}{
		{name: "all fit", in: raw("a", `"x"`, "b", "1"), budget: 100, want: []string{"a", "b"}},
		{name: "exact fit", in: raw("a", `"x"`), budget: len(`{"a":"x",}`), want: []string{"a"}},
		{name: "one byte over", in: raw("a", `"x"`), budget: len(`{"a":"x",}`) - 1, dropped: 1},
		{
			name: "largest first", in: raw("small", `"s"`, "mid", long(40), "large", long(80)),
			budget: 70, want: []string{"mid", "small"}, dropped: 1,
		},
		{
			// Each takes 47 bytes; four fit.
			name: "ties by name", in: raw("a", long(40), "b", long(40), "c", long(40), "d", long(40), "e", long(40), "f", long(40), "g", long(40), "h", long(40)),
			budget: 2 + 4*47, want: []string{"e", "f", "g", "h"}, dropped: 4,
		},
		{name: "spaces do not count", in: raw("a", "[ \"p\" , \"q\" ]"), budget: len(`{"a":["p","q"],}`), want: []string{"a"}},
		{name: "not kept", in: raw("o", `{"k":1}`, "n", "null", "m", `[1,"a"]`, "", `"e"`, "sub", `"s"`, "acr", `"a"`), budget: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ui := keepClaims(tc.in, tc.budget)
			var got []string
			for _, name := range tc.want {
				if _, ok := ui.Claims[name]; !ok {
					t.Errorf("claim %s dropped", name)
				}
			}
			for name := range ui.Claims {
				got = append(got, name)
			}
			if len(got) != len(tc.want) || ui.Dropped != tc.dropped {
				t.Errorf("kept %v, dropped %d; want %v, dropped %d", got, ui.Dropped, tc.want, tc.dropped)
			}
			b, _ := json.Marshal(ui.Claims)
			if len(b) > tc.budget {
				t.Errorf("kept %d bytes of JSON, budget %d", len(b), tc.budget)
			}
		})
	}
}
