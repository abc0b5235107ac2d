package store

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound reports that the record asked for (or the one a write
	// refers to, such as the rollout of a device's rollout state) does not
	// exist.
	ErrNotFound = errors.New("store: not found")

	// ErrExists reports a create that collides with an existing record: a
	// device ID, serial or token hash already taken, a rollout ID in use,
	// or a report ID already recorded for the device (the report is a
	// duplicate and was not recorded again).
	ErrExists = errors.New("store: already exists")

	// ErrConflict reports a compare-and-swap that lost: the record's
	// version (or a device's state in a rollout) is no longer the one the
	// caller read. Read it again, reapply the change and retry.
	ErrConflict = errors.New("store: version conflict")

	// ErrInvalid reports a record the store refuses: an empty or malformed
	// key, invalid JSON in an opaque field, a zero time where one is
	// required, or an update that changes a record's identity.
	ErrInvalid = errors.New("store: invalid record")

	// ErrClosed reports a store, or a [Batcher], that is closed or no
	// longer running.
	ErrClosed = errors.New("store: closed")

	// ErrLimit reports a claim that a rollout's cap refused: enough
	// devices are in flight, or enough claims were written in the window
	// ([Rollouts.ClaimRolloutDevice]). Nothing was written; try again
	// later.
	ErrLimit = errors.New("store: limit reached")
)

// Error is an error about one record. It matches its Err with errors.Is,
// so callers test for the condition (ErrNotFound...) and log the rest.
type Error struct {
	// Kind is the kind of record: "terminal", "report", "release",
	// "rollout", "rollout device", "audit event".
	Kind string
	// Key identifies the record, e.g. a device ID or "rollout/device".
	Key string
	// Err is the condition: one of this package's sentinels, possibly
	// wrapped with more detail.
	Err error
	// Version, for an [ErrConflict], is the version the store holds (0
	// when unknown).
	Version int64
}

func (e *Error) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "store: ")
	if e.Version != 0 {
		return fmt.Sprintf("store: %s %q: %s (stored version %d)", e.Kind, e.Key, msg, e.Version)
	}
	return fmt.Sprintf("store: %s %q: %s", e.Kind, e.Key, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for a record of kind with key, whose Err wraps
// sentinel with the formatted detail (or is sentinel itself when format is
// empty). It is for implementations of [Store].
func Errorf(kind, key string, sentinel error, format string, args ...any) error {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	return &Error{Kind: kind, Key: key, Err: err}
}

// Record kinds named in errors.
const (
	KindTerminal      = "terminal"
	KindReport        = "report"
	KindRelease       = "release"
	KindRollout       = "rollout"
	KindRolloutDevice = "rollout device"
	KindAuditEvent    = "audit event"
	KindHeartbeat     = "heartbeat"
)
