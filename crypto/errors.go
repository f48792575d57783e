package crypto

import (
	"errors"
	"fmt"
)

// ErrTooLarge is matched (errors.Is) by every *TooLargeError.
var ErrTooLarge = errors.New("crypto: value too large")

// TooLargeError reports a value over a size limit: a plaintext over
// MaxPlaintext, a sealed value over MaxSealed, or a cookie value that does not
// fit in MaxChunks chunks.
type TooLargeError struct {
	Size  int // bytes in the value
	Limit int // most bytes allowed
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("crypto: value is %d bytes, limit is %d", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }
