// Package bounded reads whole inputs that must not exceed a size limit:
// bodies and files whose sizes an attacker or a corrupt disk could choose.
// Opening files safely is the durable package's.
package bounded

import (
	"fmt"
	"io"
)

// Read reads all of r, refusing more than limit bytes with an error that
// wraps tooLarge (the caller's own sentinel) and names what was read.
func Read(r io.Reader, limit int64, what string, tooLarge error) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is above %d bytes", tooLarge, what, limit)
	}
	return b, nil
}
