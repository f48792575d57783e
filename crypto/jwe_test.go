package crypto

import (
	"bytes"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// goJoseOpen decrypts sealed with go-jose, as any JOSE library would.
func goJoseOpen(sealed string, secret []byte) (body []byte, h jose.Header, err error) {
	obj, err := jose.ParseEncryptedCompact(sealed, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, jose.Header{}, err
	}
	body, err = obj.Decrypt(secret)
	return body, obj.Header, err
}

// goJoseSeal seals body as this package did with go-jose before it wrote
// its JWEs itself: cookies sealed so are in browsers today.
func goJoseSeal(t *testing.T, secret []byte, kid string, p Purpose, body []byte) string {
	t.Helper()
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: secret, KeyID: kid},
		(&jose.EncrypterOptions{}).WithContentType(jose.ContentType(p)))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := enc.Encrypt(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestJOSEInterop: what Seal writes is a standard compact JWE that go-jose
// opens, with the very header go-jose writes; what go-jose sealed opens
// here; a bit flipped anywhere opens in neither.
func TestJOSEInterop(t *testing.T) {
	s := fuzzSealer(t)
	key := s.ring.Sealing()
	for _, pt := range fuzzPlaintexts {
		for _, p := range []Purpose{Session, Login} {
			ours, err := s.Seal(p, pt)
			if err != nil {
				t.Fatal(err)
			}
			body, h, err := goJoseOpen(ours, key.Secret)
			if err != nil {
				t.Fatalf("go-jose cannot open what Seal wrote: %v", err)
			}
			if got, ok := decode(body, s.maxPlaintext); !ok || !bytes.Equal(got, pt) {
				t.Errorf("go-jose opened %q, want %q", got, pt)
			}
			if h.KeyID != key.ID || h.ExtraHeaders[jose.HeaderContentType] != string(p) {
				t.Errorf("header kid %q cty %v", h.KeyID, h.ExtraHeaders[jose.HeaderContentType])
			}
			theirs := goJoseSeal(t, key.Secret, key.ID, p, encode(pt, true))
			if a, b := strings.Split(ours, ".")[0], strings.Split(theirs, ".")[0]; a != b {
				t.Errorf("protected header %s, go-jose writes %s", a, b)
			}
			got, _, err := s.Open(p, theirs)
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("Open of go-jose's value: %q, %v", got, err)
			}
			for i := range len(ours) {
				if ours[i] == '.' {
					continue
				}
				flipped := ours[:i] + string(rune(ours[i]^1)) + ours[i+1:]
				if _, _, err := s.Open(p, flipped); err == nil {
					t.Fatalf("a value with byte %d flipped opened", i)
				}
				if _, _, err := goJoseOpen(flipped, key.Secret); err == nil && canonicalCompact(flipped) {
					t.Fatalf("go-jose opened a canonical value with byte %d flipped", i)
				}
			}
		}
	}
}

// TestParseHeaderStrict: the header parser takes the header go-jose and
// Seal write, members in any order, and nothing looser.
func TestParseHeaderStrict(t *testing.T) {
	const kid = "abcdefghijkl.42"
	for _, tc := range []struct {
		json string
		ok   bool
	}{
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `"}`, true},
		{`{"kid":"` + kid + `","enc":"A256GCM","cty":"session","alg":"dir"}`, true},
		{`{"alg":"dir", "cty":"session","enc":"A256GCM","kid":"` + kid + `"}`, false},
		{` {"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `"}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `"}` + "\n", false},
		{`{"alg":"dir","cty":"sess\u0069on","enc":"A256GCM","kid":"` + kid + `"}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `",}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `"}}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM"}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":1}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":{"a":"b"}}`, false},
		{`{"alg":"dir","cty":"séssion","enc":"A256GCM","kid":"` + kid + `"}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"k` + "\x01" + `"}`, false},
		{`{}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `","kid":"` + kid + `"}`, false},
		{`{"alg":"dir","cty":"session","enc":"A256GCM","kid":"` + kid + `"`, false},
		{`{"alg""dir","cty":"session","enc":"A256GCM","kid":"` + kid + `"}`, false},
	} {
		h, ok := parseHeader(b64(tc.json))
		if ok != tc.ok || (ok && (h.alg != "dir" || h.enc != "A256GCM" || h.kid != kid || h.cty != "session")) {
			t.Errorf("parseHeader(%s) = %+v, %v; want ok=%v", tc.json, h, ok, tc.ok)
		}
	}
}
