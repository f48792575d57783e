package server

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/bff-project/bff/session"
)

// idToken is a JWT with claims as its payload; /auth/user does not verify
// the sealed ID token again, so the signature does not matter here.
func idToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + ".c2ln"
}

func TestUserBody(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"iss": "https://idp.example.test", "aud": "bff", "exp": 1700003600, "iat": 1700000000,
			"nonce": "n", "sid": "s", "at_hash": "h", "azp": "bff",
			"sub": "alice", "name": "Alice (ID token)", "email": "alice@example.test",
		}
	}
	with := func(kv ...any) map[string]any {
		c := base()
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	tests := []struct {
		name     string
		claims   map[string]any
		userInfo map[string]any
		top      map[string]string // top-level fields beyond sub and expires_at, as JSON
		want     map[string]string // claims, as JSON
	}{
		{
			name:   "plain",
			claims: base(),
			want:   map[string]string{"sub": `"alice"`, "name": `"Alice (ID token)"`, "email": `"alice@example.test"`},
		},
		{
			name:   "authentication fields",
			claims: with("acr", "urn:mace:incommon:iap:silver", "auth_time", 1700000000, "amr", []string{"pwd", "otp"}),
			top:    map[string]string{"acr": `"urn:mace:incommon:iap:silver"`, "auth_time": "1700000000", "amr": `["pwd","otp"]`},
			want: map[string]string{
				"sub": `"alice"`, "name": `"Alice (ID token)"`, "email": `"alice@example.test"`,
				"acr": `"urn:mace:incommon:iap:silver"`, "amr": `["pwd","otp"]`,
			},
		},
		{
			name:   "auth_time exact",
			claims: with("auth_time", json.Number("1700000000123")),
			top:    map[string]string{"auth_time": "1700000000123"},
			want:   map[string]string{"sub": `"alice"`, "name": `"Alice (ID token)"`, "email": `"alice@example.test"`},
		},
		{
			name:   "numbers exact",
			claims: with("employee_number", json.Number("9007199254740993")),
			want: map[string]string{
				"sub": `"alice"`, "name": `"Alice (ID token)"`, "email": `"alice@example.test"`, "employee_number": "9007199254740993",
			},
		},
		{
			name:   "wrong types left out of the top level",
			claims: with("acr", 2, "auth_time", "yesterday", "amr", "pwd"),
			want: map[string]string{
				"sub": `"alice"`, "name": `"Alice (ID token)"`, "email": `"alice@example.test"`, "acr": "2", "amr": `"pwd"`,
			},
		},
		{
			name:   "userinfo merged and wins",
			claims: base(),
			userInfo: map[string]any{
				"name": json.RawMessage(`"Alice (userinfo)"`), "groups": json.RawMessage(`["admins","staff"]`),
				"updated_at": float64(1700000000),
				// Never from userinfo, even if a session held them.
				"sub": "mallory", "iss": "https://evil.example.test", "auth_time": 1,
			},
			want: map[string]string{
				"sub": `"alice"`, "name": `"Alice (userinfo)"`, "email": `"alice@example.test"`,
				"groups": `["admins","staff"]`, "updated_at": "1700000000",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sess := &session.Session{Subject: "alice", Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Unix(),
				IDToken: idToken(t, tc.claims), UserInfo: tc.userInfo}
			b, err := json.Marshal(userBody(sess))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			top := map[string]string{"sub": `"alice"`, "expires_at": `"2030-01-02T03:04:05Z"`}
			for k, v := range tc.top {
				top[k] = v
			}
			for k, v := range top {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
			if len(got) != len(top)+1 {
				t.Errorf("fields %s, want %v and claims", b, top)
			}
			var claims map[string]json.RawMessage
			if err := json.Unmarshal(got["claims"], &claims); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if string(claims[k]) != v {
					t.Errorf("claims.%s = %s, want %s", k, claims[k], v)
				}
			}
			if len(claims) != len(tc.want) {
				t.Errorf("claims %s, want exactly %v", got["claims"], tc.want)
			}
		})
	}
}
