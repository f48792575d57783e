package keys

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests pin the edges that mutation testing (tools/mutation.sh) found
// unguarded: the kid syntax at each character-class and length boundary,
// the direct-mapped key cache when two epochs share a slot, epochs before
// 1970, and the item numbers in ParseSecrets' errors.

func TestParseKIDBoundaries(t *testing.T) {
	id := "AZaz09-_AZaz" // 12 characters from every edge of the alphabet
	maxEpoch := strconv.FormatInt(1<<63-1, 10)
	tests := []struct {
		kid string
		ok  bool
	}{
		{id + ".0", true},
		{id + ".9", true},
		{id + "." + maxEpoch, true},        // exactly maxKIDLen
		{id + "." + maxEpoch + "0", false}, // one past maxKIDLen
		{id + ".", false},                  // masterIDLen+1: no digit
		{id[:11] + ".0", false},            // short id
		{id + ".10", true},
		{id + ".01", false},                  // leading zero
		{id + "./", false},                   // '0'-1
		{id + ".:", false},                   // '9'+1
		{id + ".9223372036854775808", false}, // overflows int64
	}
	// Every character just outside each range of the id alphabet, and each
	// range's edges inside it.
	for _, c := range []byte{'@', '[', '`', '{', '/', ':', ',', '.', '^', '~'} {
		tests = append(tests, struct {
			kid string
			ok  bool
		}{string(c) + id[1:] + ".1", false})
	}
	for _, c := range []byte{'A', 'Z', 'a', 'z', '0', '9', '-', '_'} {
		tests = append(tests, struct {
			kid string
			ok  bool
		}{id[:5] + string(c) + id[6:] + ".1", true})
	}
	for _, tt := range tests {
		t.Run(tt.kid, func(t *testing.T) {
			gotID, e, ok := parseKID(tt.kid)
			if ok != tt.ok {
				t.Fatalf("parseKID(%q) ok = %v, want %v", tt.kid, ok, tt.ok)
			}
			if ok {
				want, _ := strconv.ParseInt(tt.kid[masterIDLen+1:], 10, 64)
				if gotID != tt.kid[:masterIDLen] || e != want {
					t.Errorf("parseKID(%q) = %q, %d", tt.kid, gotID, e)
				}
			}
		})
	}
}

// TestKeyCacheSlotSharing: epochs that map to the same cache slot each get
// their own key, derived as HKDF-Expand(prk, epoch), whichever was cached.
func TestKeyCacheSlotSharing(t *testing.T) {
	m := newMaster(bytes.Repeat([]byte{7}, 32))
	expect := func(e int64) []byte {
		var info [8]byte
		binary.BigEndian.PutUint64(info[:], uint64(e))
		k, err := hkdf.Expand(sha256.New, m.prk, string(info[:]), KeySize)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, e := range []int64{5, 5 + cacheSlots, 5, 5 + 2*cacheSlots, 5 + cacheSlots} {
		k := m.key(e)
		if !bytes.Equal(k.Secret, expect(e)) || !strings.HasSuffix(k.ID, "."+strconv.FormatInt(e, 10)) {
			t.Fatalf("epoch %d: key %s is not its own", e, k.ID)
		}
	}
}

// TestEpochBefore1970: epochs floor towards minus infinity, so a second
// before the Unix epoch is in epoch -1, not 0.
func TestEpochBefore1970(t *testing.T) {
	r, err := New(Config{Secrets: [][]byte{bytes.Repeat([]byte{1}, 32)}, Rotation: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(-1, 0), -1},
		{time.Unix(-3600, 0), -1},
		{time.Unix(-3601, 0), -2},
		{time.Unix(0, 0), 0},
		{time.Unix(3599, 0), 0},
		{time.Unix(3600, 0), 1},
	} {
		if got := r.epochOf(tt.t); got != tt.want {
			t.Errorf("epochOf(%d) = %d, want %d", tt.t.Unix(), got, tt.want)
		}
	}
}

// TestParseSecretsItemNumbers: an error names the item's position among the
// non-empty items, so an operator can find it without the value being shown.
func TestParseSecretsItemNumbers(t *testing.T) {
	good := strings.Repeat("QUFB", 11) // 33 bytes
	_, err := ParseSecrets(good + ",,\n" + good[:40] + "!!!!")
	if err == nil || !strings.Contains(err.Error(), "(item 2)") {
		t.Fatalf("err = %v, want it to name item 2", err)
	}
	_, err = ParseSecrets(good + "\n" + good)
	if err == nil || !strings.Contains(err.Error(), "duplicate (item 2)") {
		t.Fatalf("err = %v, want a duplicate at item 2", err)
	}
}

// TestNewNamesTheSecret: a bad master secret is named by its position.
func TestNewNamesTheSecret(t *testing.T) {
	good := bytes.Repeat([]byte{1}, 32)
	for _, tt := range []struct {
		secrets [][]byte
		want    string
	}{
		{[][]byte{good, make([]byte, 8)}, "master secret 2 is 8 bytes"},
		{[][]byte{good, bytes.Repeat([]byte{2}, 32), good}, "master secret 3 is a duplicate"},
	} {
		if _, err := New(Config{Secrets: tt.secrets}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}
