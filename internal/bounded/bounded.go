// Package bounded reads whole inputs that must not exceed a size limit:
// files and bodies whose sizes an attacker or a corrupt disk could choose.
// It also opens files safely: only regular files, and never blocking on a
// named pipe or a device planted where a file was expected.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is the category of every [*NotRegularError].
var ErrNotRegular = errors.New("bounded: not a regular file")

// NotRegularError reports a path that is not a regular file: a directory, a
// named pipe, a device, a socket, or, for [OpenNoFollow], a symlink. It
// matches [ErrNotRegular]. Callers usually turn it into their own
// sentinel, naming Path and Kind.
type NotRegularError struct {
	Path string
	// Kind is "directory", "symlink", "named pipe", "socket", "device" or
	// "special file".
	Kind string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("bounded: %s is a %s, not a regular file", e.Path, e.Kind)
}

// Is makes every NotRegularError match [ErrNotRegular].
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

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

// ReadFile is Read of the regular file at path, opened with [Open].
func ReadFile(path string, limit int64, tooLarge error) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, limit, path, tooLarge)
}

// Open opens the regular file at path for reading, following symlinks (a
// key directory mounted from a secret store, or a release directory on a
// USB stick, may hold symlinks to regular files). Anything else is refused
// with a [*NotRegularError] and is never opened in a way that
// could block: opening a named pipe for reading waits for a writer, and
// opening a device can have side effects. The file is opened with
// O_NONBLOCK where the system has it (so a named pipe swapped in after the
// check does not hang the open either), and checked again after opening to
// be the very file that was checked.
func Open(path string) (*os.File, error) {
	return open(path, os.Stat)
}

// OpenNoFollow is [Open] that also refuses a symlink, even to a regular
// file: for callers that must not be steered out of a tree they own.
func OpenNoFollow(path string) (*os.File, error) {
	return open(path, os.Lstat)
}

func open(path string, stat func(string) (fs.FileInfo, error)) (*os.File, error) {
	fi, err := stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	// O_NONBLOCK has no effect on reading a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	sfi, err := f.Stat()
	if err == nil && !os.SameFile(fi, sfi) {
		err = fmt.Errorf("bounded: %s changed while it was being opened", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func notRegular(path string, m fs.FileMode) error {
	kind := "special file"
	switch {
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeSymlink != 0:
		kind = "symlink"
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeDevice != 0:
		kind = "device"
	}
	return &NotRegularError{Path: path, Kind: kind}
}
