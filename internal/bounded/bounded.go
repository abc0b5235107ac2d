// Package bounded reads whole inputs that must not exceed a size limit:
// files and bodies whose sizes an attacker or a corrupt disk could choose.
package bounded

import (
	"fmt"
	"io"
	"os"
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

// ReadFile is Read of the file at path.
func ReadFile(path string, limit int64, tooLarge error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, limit, path, tooLarge)
}
