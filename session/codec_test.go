package session

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/bff-project/bff/crypto"
)

// realJWT is a token shaped like a provider's: a JSON header and claims and
// a 256-byte signature, base64url.
func realJWT(claims string) string {
	sig := make([]byte, 256)
	rand.Read(sig)
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(`{"alg":"RS256","kid":"k-1a2b3c","typ":"at+jwt"}`)) + "." +
		e.EncodeToString([]byte(claims)) + "." + e.EncodeToString(sig)
}

func TestCodecRoundTrip(t *testing.T) {
	at := realJWT(`{"iss":"https://idp.example","sub":"alice","aud":"https://api.example","exp":1764500000,"scope":"openid profile"}`)
	for _, tc := range []struct {
		name string
		s    Session
	}{
		{"JWT tokens", Session{V: Version, ID: "sid", Subject: "alice", Issuer: "https://idp", IdPSession: "isid", Start: 1, Expiry: 1 << 40,
			AccessToken: at, AccessExpiry: -5, RefreshToken: "opaque-rt_0123", IDToken: realJWT(`{"sub":"alice"}`), Scope: "openid", DPoPKey: "jkt", LastSeen: 7}},
		{"userinfo", Session{V: Version, ID: "sid", AccessToken: "x", UserInfo: map[string]any{"email": "a@b", "groups": []any{"a", "b"}, "n": 1.5}}},
		{"unsecured JWS keeps its empty signature", Session{V: Version, ID: "sid", AccessToken: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}},
		{"JWT-looking but not canonical: kept as text", Session{V: Version, ID: "sid", AccessToken: "eyJh.eyJi.c2lnZ", IDToken: "a=.b.c"}},
		{"four parts: text", Session{V: Version, ID: "sid", AccessToken: "a.b.c.d", RefreshToken: "ü.ñ.🙂"}},
		{"minimal", Session{V: Version, ID: "sid", AccessToken: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := marshal(&tc.s)
			if err != nil {
				t.Fatal(err)
			}
			var got Session
			if err := unmarshal(b, &got); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			// The decoded strings are copies: the opened plaintext
			// they came from may be overwritten.
			for i := range b {
				b[i] = '#'
			}
			// The Authorization value comes with it, sharing the token's bytes.
			if h := got.BearerHeader(); len(h) != 1 || h[0] != "Bearer "+tc.s.AccessToken || got.bearer == nil {
				t.Errorf("BearerHeader = %q (prebuilt: %v)", h, got.bearer != nil)
			}
			got.bearer, got.bearerOf = nil, ""
			if !reflect.DeepEqual(got, tc.s) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tc.s)
			}
		})
	}
}

// TestCodecSmaller: a JWT's parts are stored decoded, so the payload is
// about three quarters of the JSON one, before compression (1220 vs 1669
// bytes here).
func TestCodecSmaller(t *testing.T) {
	s := Session{V: Version, ID: NewID(), Subject: "alice", Issuer: "https://idp.example", Start: 1764500000, Expiry: 1764528800,
		AccessToken: realJWT(strings.Repeat(`{"claim":"value"}`, 20)), AccessExpiry: 1764500300, RefreshToken: "rt-opaque-0123456789",
		IDToken: realJWT(strings.Repeat(`{"claim":"value"}`, 10))}
	b, _ := marshal(&s)
	j, _ := json.Marshal(&s)
	if len(b) > len(j)*76/100 {
		t.Errorf("binary payload %d bytes, JSON %d: want at most 0.76x", len(b), len(j))
	}
}

// TestCodecRefuses: truncated, trailing or mangled payloads never decode.
func TestCodecRefuses(t *testing.T) {
	good, _ := marshal(&Session{V: Version, ID: "sid", AccessToken: realJWT(`{"a":1}`), UserInfo: map[string]any{"a": "b"}})
	for i := range good {
		if err := unmarshal(good[:i], &Session{}); err == nil {
			t.Fatalf("a payload cut at %d of %d bytes decoded", i, len(good))
		}
	}
	for name, b := range map[string][]byte{
		"trailing byte":   append(append([]byte{}, good...), 0),
		"unknown format":  append([]byte{0xB2}, good[1:]...),
		"empty":           nil,
		"JSON, malformed": []byte(`{"v":1,`),
	} {
		if err := unmarshal(b, &Session{}); err == nil {
			t.Errorf("%s decoded", name)
		}
	}
}

// TestLoadsJSONPayload: a cookie sealed before the binary encoding (its
// payload JSON) still opens.
func TestLoadsJSONPayload(t *testing.T) {
	f := newFixture(t)
	s := f.session()
	s.V = Version
	plain, _ := json.Marshal(s)
	value, err := f.store.cfg.Sealer.Seal(crypto.Session, plain)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := f.store.cfg.Chunker.Write(h, httptest.NewRequest("GET", "/", nil), value); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range (&http.Response{Header: h}).Cookies() {
		r.AddCookie(c)
	}
	got, err := f.store.Load(r)
	if err != nil || got.AccessToken != s.AccessToken || got.ID != s.ID {
		t.Fatalf("Load of a JSON payload: %v", err)
	}
}

// FuzzCodec: any payload either fails or decodes to a session that encodes
// back to a payload decoding to the same session.
func FuzzCodec(f *testing.F) {
	for _, s := range []Session{
		{V: Version, ID: "sid", AccessToken: realJWT(`{"a":1}`), RefreshToken: "rt", UserInfo: map[string]any{"a": "b"}},
		{V: Version, ID: "sid", AccessToken: "x", IDToken: "a.b.c", Start: -1, LastSeen: 1 << 50},
	} {
		b, _ := marshal(&s)
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"id":"x","at":"y"}`))
	f.Add([]byte{formatBinary, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Session
		if unmarshal(b, &s) != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		again, err := marshal(&s)
		if err != nil {
			t.Fatalf("marshal of a decoded session: %v", err)
		}
		var s2 Session
		if err := unmarshal(again, &s2); err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-encoded session differs: %v\n%+v\n%+v", err, s, s2)
		}
	})
}

// BenchmarkLoadRealistic opens (cold, no cache) a session holding tokens
// shaped like a provider's: a 2048-bit RS256 access token with a dozen
// claims, an ID token, an opaque refresh token; or (opaque) opaque access
// and refresh tokens beside the ID token. It reports the cookie's size
// against the tokens' (cookie/token) and the cookie chunks.
func BenchmarkLoadRealistic(b *testing.B) {
	// auto is the default: a session this size is stored as it is.
	b.Run("jwt/auto", func(b *testing.B) { benchLoadRealistic(b, CompressAuto, false) })
	// What inflating costs, and what it saves in cookie bytes.
	b.Run("jwt/always", func(b *testing.B) { benchLoadRealistic(b, CompressAlways, false) })
	b.Run("opaque/auto", func(b *testing.B) { benchLoadRealistic(b, CompressAuto, true) })
}

// BenchmarkSaveRealistic seals and writes the session BenchmarkLoadRealistic
// opens (sign-in and refresh do, once each).
func BenchmarkSaveRealistic(b *testing.B) {
	b.Run("jwt/auto", func(b *testing.B) { benchSaveRealistic(b, CompressAuto) })
	b.Run("jwt/always", func(b *testing.B) { benchSaveRealistic(b, CompressAlways) })
}

func benchSaveRealistic(b *testing.B, mode Compression) {
	f := newFixture(b)
	f.store.cache = nil
	f.store.cfg.Compress = mode
	s := realisticSession(f, false)
	r := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.store.Save(http.Header{}, r, s); err != nil {
			b.Fatal(err)
		}
	}
}

func benchLoadRealistic(b *testing.B, mode Compression, opaque bool) {
	f := newFixture(b)
	f.store.cache = nil
	f.store.cfg.Compress = mode
	s := realisticSession(f, opaque)
	r := f.roundTrip(b, s)
	cookie, chunks := 0, 0
	for _, c := range r.Cookies() {
		cookie += len(c.Value)
		chunks++
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.store.Load(r); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: ResetTimer drops metrics reported before it.
	b.ReportMetric(float64(cookie)/float64(len(s.AccessToken)+len(s.IDToken)+len(s.RefreshToken)), "cookie/token")
	b.ReportMetric(float64(chunks), "chunks")
}

func realisticSession(f *fixture, opaque bool) *Session {
	s := f.session()
	s.AccessToken = realJWT(`{"iss":"https://idp.example.com/realms/acme","sub":"5f2b9c1e-7d3a-4e1b-9c2d-0a1b2c3d4e5f","aud":["https://api.example.com","account"],"exp":1764503600,"iat":1764500000,"jti":"8b0e5c52-4a5e-4d0b-8c7e-2f1d3c4b5a69","scope":"openid profile email offline_access orders:read","azp":"bff","sid":"c2b0a7f4-1e2d-4c3b-9a8f-7e6d5c4b3a21","email":"alice@example.com","preferred_username":"alice","client_id":"bff"}`)
	s.IDToken = realJWT(`{"iss":"https://idp.example.com/realms/acme","sub":"5f2b9c1e-7d3a-4e1b-9c2d-0a1b2c3d4e5f","aud":"bff","exp":1764503600,"iat":1764500000,"auth_time":1764499990,"nonce":"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo","sid":"c2b0a7f4-1e2d-4c3b-9a8f-7e6d5c4b3a21","at_hash":"x4Qe2Mjv0H2W8yQ6l7b9Zw","name":"Alice Example","email":"alice@example.com"}`)
	s.RefreshToken = "eyJhbGciOiJIUzUxMiJ9.opaque-looking-refresh-" + NewID() + NewID()
	if opaque { // as oidc-provider, Hydra, Google issue them: ~43-char handles
		s.AccessToken = NewID() + NewID()
		s.RefreshToken = NewID() + NewID()
	}
	return s
}

// TestJSONPayload: with JSONPayload the store seals JSON (what builds before
// the binary payload open) and still reads it back; without, binary.
func TestJSONPayload(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		f := newFixture(t)
		f.store.cfg.JSONPayload = asJSON
		s := f.session()
		r := f.roundTrip(t, s)
		value, err := f.store.cfg.Chunker.Read(r)
		if err != nil {
			t.Fatal(err)
		}
		plain, _, err := f.store.cfg.Sealer.Open(crypto.Session, value)
		if err != nil {
			t.Fatal(err)
		}
		if isJSON := plain[0] == '{'; isJSON != asJSON {
			t.Errorf("JSONPayload %v: payload starts with %q", asJSON, plain[0])
		}
		f.store.cache = nil
		got, err := f.store.Load(r)
		if err != nil || got.AccessToken != s.AccessToken {
			t.Errorf("JSONPayload %v: Load: %v", asJSON, err)
		}
	}
}
