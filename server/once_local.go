package server

import (
	"errors"
	"time"
)

// TRANSITIONAL: replaced by revocation.List.Use / cluster.Cluster.Use.
type localOnce struct{ seen seenJTIs }

func (l *localOnce) Use(key string, expiry time.Time) (bool, error) {
	if !l.seen.add(key, time.Now()) {
		return false, nil
	}
	return true, nil
}

var _ = errors.New
