package keys

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseSecret(t *testing.T) {
	raw := make([]byte, 33)
	for i := range raw {
		raw[i] = byte(i*37 + 250) // includes bytes that encode to + / - _
	}
	tests := []struct {
		name  string
		in    string
		want  []byte
		valid bool
	}{
		{"std padded", base64.StdEncoding.EncodeToString(raw[:32]), raw[:32], true},
		{"std raw", base64.RawStdEncoding.EncodeToString(raw[:32]), raw[:32], true},
		{"url padded", base64.URLEncoding.EncodeToString(raw[:32]), raw[:32], true},
		{"url raw", base64.RawURLEncoding.EncodeToString(raw[:32]), raw[:32], true},
		{"33 bytes", base64.StdEncoding.EncodeToString(raw), raw, true},
		{"whitespace trimmed", " \t" + base64.StdEncoding.EncodeToString(raw[:32]) + "\n", raw[:32], true},
		{"empty", "", nil, false},
		{"blank", "  \n", nil, false},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), nil, false},
		{"not base64", strings.Repeat("!", 44), nil, false},
		{"mixed alphabets", "+" + strings.Repeat("A", 41) + "_A", nil, false},
		{"bad padding", base64.RawStdEncoding.EncodeToString(raw[:32]) + "==", nil, false},
		{"hex", strings.Repeat("ab", 32) + "x", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecret(tt.in)
			if !tt.valid {
				if err == nil {
					t.Fatal("ParseSecret succeeded, want error")
				}
				if trimmed := strings.TrimSpace(tt.in); len(trimmed) > 8 && strings.Contains(err.Error(), trimmed) {
					t.Fatalf("error %q contains the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatal("decoded bytes differ")
			}
		})
	}
	t.Run("short error names length", func(t *testing.T) {
		_, err := ParseSecret(base64.StdEncoding.EncodeToString(raw[:20]))
		if err == nil || !strings.Contains(err.Error(), "20 bytes") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestParseSecrets(t *testing.T) {
	a, _ := NewSecret()
	b, _ := NewSecret()
	tests := []struct {
		name  string
		in    string
		count int
	}{
		{"one", a, 1},
		{"comma", a + "," + b, 2},
		{"newline file", a + "\n" + b + "\n", 2},
		{"crlf and blanks", "\r\n" + a + "\r\n\r\n" + b + "\r\n", 2},
		{"comma and spaces", " " + a + " , , " + b + " ,", 2},
		{"empty", "", 0},
		{"only separators", ", \n,", 0},
		{"duplicate", a + "," + b + "," + a, 0},
		{"one bad", a + ",AAAA", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecrets(tt.in)
			if tt.count == 0 {
				if err == nil {
					t.Fatal("ParseSecrets succeeded, want error")
				}
				if strings.Contains(err.Error(), a) || strings.Contains(err.Error(), b) {
					t.Fatal("error contains a secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.count {
				t.Fatalf("got %d secrets, want %d", len(got), tt.count)
			}
			if _, err := New(Config{Secrets: got}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	s1, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSecret()
	if s1 == s2 {
		t.Fatal("two secrets are equal")
	}
	b, err := ParseSecret(s1)
	if err != nil || len(b) != 32 {
		t.Fatalf("ParseSecret(NewSecret()) = %d bytes, %v", len(b), err)
	}
}
