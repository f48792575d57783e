package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ParseSecret decodes one base64 master secret. It accepts the standard and
// the URL-safe alphabet, padded or not, with surrounding whitespace trimmed,
// and requires at least 32 decoded bytes. Errors name the length, never the
// value.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("keys: empty secret")
	}
	std := strings.ContainsAny(s, "+/")
	url := strings.ContainsAny(s, "-_")
	if std && url {
		return nil, errors.New("keys: secret mixes base64 alphabets")
	}
	padded := strings.HasSuffix(s, "=")
	var enc *base64.Encoding
	switch {
	case url && padded:
		enc = base64.URLEncoding
	case url:
		enc = base64.RawURLEncoding
	case padded:
		enc = base64.StdEncoding
	default:
		enc = base64.RawStdEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("keys: secret is not valid base64: %w", err)
	}
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("keys: secret is %d bytes, need at least %d", len(b), MinSecretLen)
	}
	return b, nil
}

// ParseSecrets decodes a list of base64 master secrets separated by commas
// and/or newlines, as found in an environment variable or a secrets file.
// Empty items are ignored; duplicates and an empty list are refused. Errors
// name the item's position, never its value.
func ParseSecrets(s string) ([][]byte, error) {
	items := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	var out [][]byte
	n := 0
	for _, item := range items {
		if strings.TrimSpace(item) == "" {
			continue
		}
		n++
		b, err := ParseSecret(item)
		if err != nil {
			return nil, fmt.Errorf("%w (item %d)", err, n)
		}
		for _, prev := range out {
			if bytes.Equal(prev, b) {
				return nil, fmt.Errorf("keys: secret is a duplicate (item %d)", n)
			}
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("keys: no secrets")
	}
	return out, nil
}

// NewSecret returns a fresh master secret: 32 random bytes in standard
// base64, as printed by `bff keygen`.
func NewSecret() (string, error) {
	b := make([]byte, MinSecretLen)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keys: random: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
