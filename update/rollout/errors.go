package rollout

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid matches every problem [Rollout.Validate] finds.
	ErrInvalid = errors.New("rollout: invalid rollout")
	// ErrTransition matches an operator action the rollout's state does
	// not allow, such as resuming a running rollout or pausing an aborted
	// one.
	ErrTransition = errors.New("rollout: illegal transition")
)

// InvalidError is one problem with a rollout's definition: the field and
// what is wrong with it. It matches [ErrInvalid].
type InvalidError struct {
	Field   string
	Problem string
}

// Error names the field and the problem.
func (e *InvalidError) Error() string { return fmt.Sprintf("rollout: %s: %s", e.Field, e.Problem) }

// Is reports whether target is [ErrInvalid].
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// TransitionError is an operator action refused in the rollout's current
// state. It matches [ErrTransition].
type TransitionError struct {
	Action Action
	From   State
}

// Error names the action and the state that refused it.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("rollout: cannot %s a rollout that is %s", e.Action, e.From)
}

// Is reports whether target is [ErrTransition].
func (e *TransitionError) Is(target error) bool { return target == ErrTransition }
