package backup

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports a snapshot that does not exist, or a hook whose
	// data a snapshot does not hold.
	ErrNotFound = errors.New("backup: not found")

	// ErrCorrupt is the category of every [*CorruptError]: a snapshot or a
	// hook's backup that does not match what was recorded when it was made.
	ErrCorrupt = errors.New("backup: corrupt")

	// ErrInvalid reports an argument that cannot be used: a malformed
	// snapshot ID, hook name or path, duplicate hooks, a bad config.
	ErrInvalid = errors.New("backup: invalid argument")

	// ErrUnsupported reports a file that cannot be backed up: a device,
	// socket or named pipe, or a symlink where a hook may only write
	// regular files and directories.
	ErrUnsupported = errors.New("backup: unsupported file type")

	// ErrTooLarge reports a backup above one of the package's limits
	// ([MaxEntries], [MaxManifestSize]).
	ErrTooLarge = errors.New("backup: too large")
)

// CorruptError reports a file of a snapshot, or of a hook's backup, that is
// missing, unexpected, or not what was recorded. It matches [ErrCorrupt];
// when content changed, Err is a [*verify.DigestMismatchError].
//
// [*verify.DigestMismatchError]: github.com/upkeephq/upkeep/verify.DigestMismatchError
type CorruptError struct {
	// Snapshot is the snapshot's ID; empty when a hook checked its own
	// backup directory.
	Snapshot string
	// Path is the file at fault, slash-separated and relative to the
	// snapshot (or the hook's backup directory).
	Path string
	// Reason says what is wrong: "missing", "unexpected file", ...
	Reason string
	Err    error
}

func (e *CorruptError) Error() string {
	s := "backup: corrupt"
	if e.Snapshot != "" {
		s += " snapshot " + e.Snapshot
	}
	if e.Path != "" {
		s += ": " + e.Path
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes every CorruptError match [ErrCorrupt].
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptError) Unwrap() error { return e.Err }

// HookError reports a hook that failed, or that a snapshot cannot serve.
type HookError struct {
	Hook string
	// Op is "backup" or "restore".
	Op  string
	Err error
}

func (e *HookError) Error() string {
	return fmt.Sprintf("backup: hook %q: %s: %v", e.Hook, e.Op, e.Err)
}

func (e *HookError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
