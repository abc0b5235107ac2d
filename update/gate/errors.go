package gate

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidConfig reports a gate's config that cannot be used: a
	// missing callback, a negative duration, a threshold out of range.
	// Every New function returns it at once, wrapped with the field at
	// fault.
	ErrInvalidConfig = errors.New("gate: invalid config")

	// ErrBadWindow is what every [*WindowError] matches.
	ErrBadWindow = errors.New("gate: bad maintenance window")

	// ErrBadFreeze is what every [*FreezeError] matches.
	ErrBadFreeze = errors.New("gate: bad freeze period")

	// ErrLeaseEnded is returned by [Lease.Renew] for a lease that was ended
	// or expired: whatever it protected is no longer protected, and the
	// holder must begin a new lease.
	ErrLeaseEnded = errors.New("gate: lease ended or expired")

	// ErrUpdating is returned by [Leases.Begin] while an install is under
	// way (see [Leases.SetUpdating]): the sale must wait.
	ErrUpdating = errors.New("gate: an update is installing")

	// ErrNoManifest is returned by gates that need the release (its size,
	// its ID) when a request carries no manifest.
	ErrNoManifest = errors.New("gate: request carries no manifest")
)

// WindowError is a maintenance window that [ParseWindow] cannot read.
type WindowError struct {
	// Input is the text given, cut to 64 bytes.
	Input string
	// Reason says what is wrong with it.
	Reason string
}

func (e *WindowError) Error() string {
	return fmt.Sprintf("gate: bad maintenance window %q: %s", e.Input, e.Reason)
}

// Is makes every WindowError match [ErrBadWindow].
func (e *WindowError) Is(target error) bool { return target == ErrBadWindow }

// FreezeError is a freeze period that [ParseFreeze] cannot read.
type FreezeError struct {
	// Input is the text given, cut to 64 bytes.
	Input string
	// Reason says what is wrong with it.
	Reason string
}

func (e *FreezeError) Error() string {
	return fmt.Sprintf("gate: bad freeze period %q: %s", e.Input, e.Reason)
}

// Is makes every FreezeError match [ErrBadFreeze].
func (e *FreezeError) Is(target error) bool { return target == ErrBadFreeze }

func invalid(what string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(what, args...))
}

// cut bounds the input an error repeats.
func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
