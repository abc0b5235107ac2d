package release

import (
	"errors"
	"fmt"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

var (
	// ErrIncompatible matches a release that is not for the terminal: wrong
	// model or hardware revision, or an installed version it may not
	// upgrade from.
	ErrIncompatible = errors.New("release: incompatible")
	// ErrUpToDate matches when the terminal already runs the newest release
	// it may have.
	ErrUpToDate = errors.New("release: up to date")
	// ErrNoRelease matches when nothing is published for the terminal.
	ErrNoRelease = errors.New("release: no release")
	// ErrRequirementUnmet matches a release that needs another component
	// at a version the terminal does not have (see verify.Requirement): not
	// yet, or, from [Plan], not by any release published for it.
	ErrRequirementUnmet = errors.New("release: requirement unmet")
)

// Error says why a release is not offered to, or not accepted by, a
// terminal. Reason is the stable code a report or check response carries.
// It matches [ErrIncompatible], [ErrUpToDate], [ErrNoRelease],
// [ErrRequirementUnmet], verify.ErrDowngrade or verify.ErrMalformed by its
// reason.
type Error struct {
	Release string // component@version; empty when no release is concerned
	Reason  transport.Reason
	Detail  string
}

func (e *Error) Error() string {
	if e.Release == "" {
		return fmt.Sprintf("release: %s: %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("release: %s: %s: %s", e.Release, e.Reason, e.Detail)
}

// Is matches the sentinel of e's reason.
func (e *Error) Is(target error) bool {
	switch e.Reason {
	case transport.ReasonIncompatible:
		return target == ErrIncompatible
	case transport.ReasonUpToDate:
		return target == ErrUpToDate
	case transport.ReasonNoRelease:
		return target == ErrNoRelease
	case transport.ReasonRequirementUnmet:
		return target == ErrRequirementUnmet
	case transport.ReasonDowngrade:
		return target == verify.ErrDowngrade
	case transport.ReasonMalformed:
		return target == verify.ErrMalformed
	}
	return false
}
