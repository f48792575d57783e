package oauth

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Tests written for mutants that survived the package's other tests
// (tools/mutation.sh ./oauth): each pins a boundary or branch that a
// regression could move without any other test noticing.

// TestDiscoverWithoutSigningAlgs: a provider that does not list
// id_token_signing_alg_values_supported (it is optional) is usable with the
// default algorithms, not refused.
func TestDiscoverWithoutSigningAlgs(t *testing.T) {
	discoverTest{
		name: "no signing algs listed",
		meta: func(p *fakeProvider, m map[string]any) { delete(m, "id_token_signing_alg_values_supported") },
	}.run(t)
}

// TestSanitizeCode: printable ASCII but '"' and '\' is kept as it is, the
// rest replaced; at most 64 bytes.
func TestSanitizeCodeBoundaries(t *testing.T) {
	tests := []struct{ in, want string }{
		{"invalid_grant", "invalid_grant"},
		{"!~", "!~"}, // the two ends of the printable range stay
		{" \x7f\"\\", "____"},
		{"é", "__"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		if got := sanitizeCode(tt.in); got != tt.want {
			t.Errorf("sanitizeCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLogoutTokenType: a logout token typed logout+jwt (RFC 8417 style) or
// JWT is verified; any other type, such as an access token's at+jwt signed
// by the same key, is refused before its claims are read.
func TestLogoutTokenType(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	key, _ := testKeys()
	signTyp := func(typ string) string {
		jwk := jose.JSONWebKey{Key: key, KeyID: testKID, Algorithm: string(jose.RS256)}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jwk}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := jwt.Signed(signer).Claims(p.logoutClaims()).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tt := range []struct {
		typ string
		ok  bool
	}{{"logout+jwt", true}, {"JWT", true}, {"at+jwt", false}, {"secevent+jwt", false}} {
		_, err := c.VerifyLogoutToken(t.Context(), signTyp(tt.typ))
		if tt.ok && err != nil {
			t.Errorf("typ %s: %v, want accepted", tt.typ, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidLogoutToken) {
			t.Errorf("typ %s: %v, want ErrInvalidLogoutToken", tt.typ, err)
		}
	}
}

// TestLogoutTokenSizeBoundary: 16 KiB is the most a logout token may be.
func TestLogoutTokenSizeBoundary(t *testing.T) {
	p := newFakeProvider(t)
	c := p.client(nil)
	_, err := c.VerifyLogoutToken(t.Context(), strings.Repeat("a", 16<<10))
	if err == nil || strings.Contains(err.Error(), "too large") {
		t.Errorf("16 KiB: %v, want refused for what it is, not its size", err)
	}
	_, err = c.VerifyLogoutToken(t.Context(), strings.Repeat("a", 16<<10+1))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("16 KiB + 1: %v, want too large", err)
	}
}

// TestTokensLogValue: the log shows whether there is a refresh token, never
// the token.
func TestTokensLogValueRefreshFlag(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "with", Tokens{RefreshToken: "rt-secret-value", Subject: "s"}, "without", Tokens{Subject: "s"})
	out := buf.String()
	if !strings.Contains(out, "with.refresh_token=true") || !strings.Contains(out, "without.refresh_token=false") {
		t.Errorf("log: %s", out)
	}
	if strings.Contains(out, "rt-secret-value") {
		t.Error("the refresh token reached the log")
	}
}

// TestLimitedBody: a body of exactly the limit reads whole; one byte more
// fails, whatever the read sizes.
func TestLimitedBody(t *testing.T) {
	const limit = 100
	for _, chunk := range []int{1, 7, limit, limit + 1, 4096} {
		for _, size := range []int{0, limit - 1, limit, limit + 1, 3 * limit} {
			body := limitBody(io.NopCloser(&chunkReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), size)), n: chunk}), limit)
			got, err := io.ReadAll(body)
			if size <= limit {
				if err != nil || len(got) != size {
					t.Errorf("chunk %d, size %d: read %d, %v; want all of it", chunk, size, len(got), err)
				}
			} else if err == nil {
				t.Errorf("chunk %d, size %d: read %d without an error", chunk, size, len(got))
			}
		}
	}
}

// chunkReader reads at most n bytes per call.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestLimitedBodyExactBuffer: a read buffer exactly as large as what is
// left is used as it is (never resliced past its capacity).
func TestLimitedBodyExactBuffer(t *testing.T) {
	body := limitBody(io.NopCloser(strings.NewReader("0123456789")), 5)
	buf := make([]byte, 5)
	n, err := body.Read(buf)
	if n != 5 || err != nil || string(buf) != "01234" {
		t.Fatalf("Read = %d, %v, %q", n, err, buf)
	}
	if _, err := body.Read(make([]byte, 1)); err == nil {
		t.Fatal("a sixth byte was read without an error")
	}
}
