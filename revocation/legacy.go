package revocation

import (
	"encoding/json"
	"errors"
	"time"
)

// snapshotV1 is the JSON snapshot that versions before the log wrote. It is
// still read, so that an upgraded instance keeps its revocations; the file
// is then rewritten as a log.
type snapshotV1 struct {
	Version  int                  `json:"version"`
	Sessions map[string]time.Time `json:"sessions"`
	IdP      map[string]time.Time `json:"idp_sessions"`
	Subjects map[string]struct {
		Before time.Time `json:"before"`
		Expiry time.Time `json:"expiry"`
	} `json:"subjects"`
}

// decodeV1 returns the entries of a version 1 snapshot, expired ones
// included; an entry the list cannot hold is an error.
func decodeV1(b []byte) ([]Entry, error) {
	var s snapshotV1
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Version != 1 {
		return nil, errors.New("not version 1")
	}
	out := make([]Entry, 0, len(s.Sessions)+len(s.IdP)+len(s.Subjects))
	for id, exp := range s.Sessions {
		out = append(out, Entry{Kind: KindSession, Key: id, Expiry: exp})
	}
	for sid, exp := range s.IdP {
		out = append(out, Entry{Kind: KindIdPSession, Key: sid, Expiry: exp})
	}
	for sub, e := range s.Subjects {
		out = append(out, Entry{Kind: KindSubject, Key: sub, Before: e.Before, Expiry: e.Expiry})
	}
	for _, e := range out {
		if err := e.validate(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
