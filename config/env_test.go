package config

import (
	"slices"
	"testing"
)

// TestUnknownEnv: a BFF_* variable that names no config field is reported
// (a typo would otherwise be ignored without a word); every field's own
// variable, BFF_CONFIG and other prefixes are not.
func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{
		"BFF_OIDC_CLIENT_SECERT=x", "BFF_OIDC_CLIENT_SECRET=x", "BFF_CONFIG=/etc/bff.yaml", "BFF_KEYS_SECRETS=a",
		"BFF_SESSION_LIFETIME=8h", "BFF_ADMIN_TOKEN=t", "BFF_OIDC_DPOP_KEY_FILE=f", "BFF_LOG_ACCESS_FLUSH=1s",
		"BFF_LISTEN=:1", "BFF_ROUTES=x", "PATH=/bin", "XBFF_OIDC=1", "BFF_TYPO=1", "BFF_TYPO=2", "BFF_=1",
	})
	if want := []string{"BFF_", "BFF_OIDC_CLIENT_SECERT", "BFF_TYPO"}; !slices.Equal(got, want) {
		t.Errorf("UnknownEnv = %v, want %v", got, want)
	}
}
