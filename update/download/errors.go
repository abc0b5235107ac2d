package download

import (
	"errors"
	"fmt"

	"github.com/upkeephq/upkeep/verify"
)

var (
	// ErrPaused is the category of every [*PausedError].
	ErrPaused = errors.New("download: paused")
	// ErrChanged reports that every mirror now serves another file than the
	// one the download began with (its ETag changed).
	ErrChanged = errors.New("download: the artifact changed on the server")
)

// PausedError is returned when Config.Allow says not now. It is not a
// failure: what was fetched is kept, and the next Fetch goes on.
type PausedError struct{ Reason error }

func (e *PausedError) Error() string   { return "download: paused: " + e.Reason.Error() }
func (e *PausedError) Unwrap() error   { return e.Reason }
func (e *PausedError) Is(t error) bool { return t == ErrPaused }

// CorruptError reports a chunk that failed verification Attempts times: the
// bytes served are not the release's.
type CorruptError struct {
	Chunk    int
	Offset   int64
	Attempts int
	Err      *verify.DigestMismatchError
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("download: chunk %d at offset %d failed verification %d times: %v", e.Chunk, e.Offset, e.Attempts, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// DiskFullError reports that the artifact does not fit where it goes.
type DiskFullError struct {
	Path string
	Need int64 // bytes the artifact needs
	Err  error // matches syscall.ENOSPC
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("download: no room for %d bytes at %s: %v", e.Need, e.Path, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }
