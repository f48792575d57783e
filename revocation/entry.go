package revocation

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid means an entry the list cannot hold: an unknown kind, an empty
// or too long key, a start bound on anything but a subject (or none on a
// subject), or a time outside what Unix nanoseconds can hold.
var ErrInvalid = errors.New("revocation: invalid entry")

// Kind says what an Entry is.
type Kind uint8

const (
	KindSession    Kind = 1 // one BFF session, by its id
	KindIdPSession Kind = 2 // every session the provider's session (sid) signed in
	KindSubject    Kind = 3 // every session of a subject that started before Before
	// KindOnce is a value that may be used once (a sign-in state, a logout
	// token's jti, an internal request id), by an opaque key. It revokes
	// nothing: Revoked never looks at it; Use does.
	KindOnce Kind = 4
)

// revokes reports whether k is a revocation (as opposed to a single-use value).
func (k Kind) revokes() bool { return k == KindSession || k == KindIdPSession || k == KindSubject }

// maxKey bounds an entry's key (session id, sid, subject or single-use key).
const maxKey = 512

// Entry is one revocation or single-use value, as recorded and as
// replicated between instances.
type Entry struct {
	Kind   Kind
	Key    string
	Before time.Time // KindSubject only
	// Expiry is when no session the entry could match can still be alive
	// (for KindOnce: when the value could no longer be accepted anyway).
	Expiry time.Time
}

func (e Entry) validate() error {
	switch {
	case !e.Kind.revokes() && e.Kind != KindOnce:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalid, e.Kind)
	case e.Key == "" || len(e.Key) > maxKey:
		return fmt.Errorf("%w: key empty or longer than %d bytes", ErrInvalid, maxKey)
	case e.Kind == KindSubject && e.Before.IsZero():
		return fmt.Errorf("%w: subject entry without a start bound", ErrInvalid)
	case e.Kind != KindSubject && !e.Before.IsZero():
		return fmt.Errorf("%w: start bound on a kind %d entry", ErrInvalid, e.Kind)
	case !nanos(e.Expiry) || !e.Before.IsZero() && !nanos(e.Before):
		return fmt.Errorf("%w: time out of range", ErrInvalid)
	}
	return nil
}

// nanos reports whether t survives a round trip through Unix nanoseconds
// (the list's and the codec's representation): years 1678 to 2262.
func nanos(t time.Time) bool { return time.Unix(0, t.UnixNano()).Equal(t) }
