package oauth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func sampleTokens() *Tokens {
	return &Tokens{
		AccessToken:  testAccess,
		Expiry:       testNow.Add(time.Hour),
		RefreshToken: testRefresh,
		IDToken:      "id-token-eyJhbGciOiJSUzI1NiJ9.payload.sig",
		Scope:        "openid profile",
		Subject:      testSubject,
		SessionID:    testSID,
	}
}

func TestTokensLogValue(t *testing.T) {
	tok := sampleTokens()
	handlers := []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	}
	values := []struct {
		name string
		v    any
	}{
		{name: "pointer", v: tok},
		{name: "value", v: *tok},
		{name: "in a group", v: slog.GroupValue(slog.Any("tokens", tok))},
	}
	for _, h := range handlers {
		for _, v := range values {
			t.Run(h.name+"/"+v.name, func(t *testing.T) {
				var buf bytes.Buffer
				slog.New(h.new(&buf)).Info("login", "tokens", v.v)
				out := buf.String()
				for _, s := range []string{tok.AccessToken, tok.RefreshToken, tok.IDToken, tok.Subject, "payload.sig"} {
					if strings.Contains(out, s) {
						t.Errorf("log output %q contains %q", out, s)
					}
				}
				for _, s := range []string{ShortHash(testSubject), "refresh_token", "expiry"} {
					if !strings.Contains(out, s) {
						t.Errorf("log output %q lacks %q", out, s)
					}
				}
			})
		}
	}
}

func TestShortHash(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		// sha256("abc") = ba7816bf8f01cfea...
		{"abc", "abc", "ba7816bf8f01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShortHash(tc.in); got != tc.want {
				t.Errorf("ShortHash(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestJWTExpiry(t *testing.T) {
	enc := func(payload string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	tests := []struct {
		name, token string
		want        time.Time
	}{
		{"exp", enc(`{"exp":1591020000}`), time.Unix(1591020000, 0)},
		{"opaque", "opaque-token", time.Time{}},
		{"two parts", "a.b", time.Time{}},
		{"bad base64", "a.!!!.c", time.Time{}},
		{"not JSON", enc("nope"), time.Time{}},
		{"no exp", enc(`{"sub":"x"}`), time.Time{}},
		{"exp string", enc(`{"exp":"soon"}`), time.Time{}},
		{"exp fraction", enc(`{"exp":1.5}`), time.Time{}},
		{"exp negative", enc(`{"exp":-5}`), time.Time{}},
		{"exp zero", enc(`{"exp":0}`), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := jwtExpiry(tc.token); !got.Equal(tc.want) {
				t.Errorf("jwtExpiry = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"authorization", &AuthorizationError{Code: "access_denied"}, "oauth: authorization failed: access_denied"},
		{"token", &TokenError{Op: "refresh", Code: "invalid_grant", Status: 400}, "oauth: refresh: token endpoint answered 400 invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !strings.HasPrefix(fmt.Sprint(tc.err), "oauth: ") {
				t.Error("message lacks the package prefix")
			}
		})
	}
}
