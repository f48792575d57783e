package oauth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func (p *fakeProvider) logoutClaims() map[string]any {
	return map[string]any{
		"iss":    p.issuer,
		"aud":    testClientID,
		"iat":    testNow.Unix(),
		"exp":    testNow.Add(2 * time.Minute).Unix(),
		"jti":    "jti-1",
		"sub":    testSubject,
		"sid":    testSID,
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
}

func TestVerifyLogoutToken(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	_, other := testKeys()
	tests := []struct {
		name  string
		edit  func(m map[string]any)
		token func(t *testing.T, m map[string]any) string // nil: signGood
		ok    bool
	}{
		{name: "valid", edit: func(map[string]any) {}, ok: true},
		{name: "valid without exp", edit: func(m map[string]any) { delete(m, "exp") }, ok: true},
		{name: "valid with sid only", edit: func(m map[string]any) { delete(m, "sub") }, ok: true},
		{name: "valid with sub only", edit: func(m map[string]any) { delete(m, "sid") }, ok: true},
		{name: "neither sub nor sid", edit: func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }},
		{name: "wrong issuer", edit: func(m map[string]any) { m["iss"] = "https://evil.test" }},
		{name: "wrong audience", edit: func(m map[string]any) { m["aud"] = "other-client" }},
		{name: "no jti", edit: func(m map[string]any) { delete(m, "jti") }},
		{name: "no iat", edit: func(m map[string]any) { delete(m, "iat") }},
		{name: "iat too old", edit: func(m map[string]any) { m["iat"] = testNow.Add(-10 * time.Minute).Unix() }},
		{name: "iat 4 minutes ago (a delivery retried)", edit: func(m map[string]any) { m["iat"] = testNow.Add(-4 * time.Minute).Unix() }, ok: true},
		{name: "jti of 256 bytes", edit: func(m map[string]any) { m["jti"] = strings.Repeat("j", 256) }, ok: true},
		{name: "jti of 257 bytes", edit: func(m map[string]any) { m["jti"] = strings.Repeat("j", 257) }},
		{name: "iat in the future", edit: func(m map[string]any) { m["iat"] = testNow.Add(10 * time.Minute).Unix() }},
		{name: "expired", edit: func(m map[string]any) { m["exp"] = testNow.Add(-time.Second).Unix() }},
		{name: "no events", edit: func(m map[string]any) { delete(m, "events") }},
		{name: "other event", edit: func(m map[string]any) { m["events"] = map[string]any{"urn:x": map[string]any{}} }},
		{name: "event not an object", edit: func(m map[string]any) { m["events"] = map[string]any{backchannelEvent: "yes"} }},
		{name: "has a nonce (an ID token)", edit: func(m map[string]any) { m["nonce"] = "n" }},
		{name: "unknown key", edit: func(map[string]any) {}, token: func(t *testing.T, m map[string]any) string {
			return sign(t, jose.RS256, other, testKID, m)
		}},
		{name: "alg none", edit: func(map[string]any) {}, token: unsigned},
		{name: "HS256 with the client secret", edit: func(map[string]any) {}, token: func(t *testing.T, m map[string]any) string {
			return sign(t, jose.HS256, []byte(testSecret), testKID, m)
		}},
		{name: "garbage", edit: func(map[string]any) {}, token: func(*testing.T, map[string]any) string { return "a.b.c" }},
		{name: "too large", edit: func(map[string]any) {}, token: func(*testing.T, map[string]any) string { return strings.Repeat("a", 17<<10) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := p.logoutClaims()
			tt.edit(m)
			raw := ""
			if tt.token != nil {
				raw = tt.token(t, m)
			} else {
				raw = signGood(t, m)
			}
			lt, err := c.VerifyLogoutToken(t.Context(), raw)
			if tt.ok {
				if err != nil {
					t.Fatalf("VerifyLogoutToken: %v", err)
				}
				if lt.JTI != m["jti"] || lt.Subject != m["sub"] && m["sub"] != nil || lt.SessionID != m["sid"] && m["sid"] != nil {
					t.Errorf("got %+v", lt)
				}
				return
			}
			if !errors.Is(err, ErrInvalidLogoutToken) {
				t.Fatalf("err = %v, want ErrInvalidLogoutToken", err)
			}
		})
	}
}

func TestVerifyLogoutTokenNotReady(t *testing.T) {
	p := newFakeProvider(t)
	c, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyLogoutToken(t.Context(), "x"); !errors.Is(err, ErrNotReady) {
		t.Errorf("err = %v, want ErrNotReady", err)
	}
}
