package update

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrBusy is returned by [Agent.Update] while another pass is running.
	ErrBusy = errors.New("update: an update pass is already running")
	// ErrInProgress is returned by [Agent.InstallPackage] while an update
	// is under way: it must end (or roll back) first.
	ErrInProgress = errors.New("update: an update is in progress")
	// ErrPackage is a manual package that cannot be installed: unreadable,
	// refused on verification (the cause is wrapped too), the version
	// already installed, or tried before and failed.
	ErrPackage = errors.New("update: package refused")
	// ErrJournal reports a journal that cannot be read or written; the
	// agent stops rather than guess where it was.
	ErrJournal = errors.New("update: journal")
	// ErrNeedsAttention reports a rollback that failed: the terminal may be
	// in neither version and needs a person. The agent retries the
	// rollback on every pass.
	ErrNeedsAttention = errors.New("update: rollback failed, terminal needs attention")
	// ErrRebootRequired is what an Installer's Install returns when the
	// install takes effect only at the next boot (an A/B slot switch). The
	// agent journals the step that follows, then calls Config.Reboot; after
	// the reboot it resumes there, counting boots.
	ErrRebootRequired = errors.New("update: reboot required")
	// ErrNotOnProbation is returned by MarkGood and MarkBad when no
	// installed update awaits a verdict.
	ErrNotOnProbation = errors.New("update: no update is on probation")
)

// NotNowError is what a [Gate] returns to hold an update back: ask again
// after After, because Reason. It is not a failure.
type NotNowError struct {
	Stage  Stage
	After  time.Duration
	Reason string
}

func (e *NotNowError) Error() string {
	return fmt.Sprintf("update: not now (%s): %s; ask again in %s", e.Stage, e.Reason, e.After)
}

// NotNow builds the error a Gate returns to say "not now".
func NotNow(after time.Duration, reason string) error {
	return &NotNowError{After: after, Reason: reason}
}

// StepError is an update step that failed: which state the agent was in,
// and why. Result.Err holds one when an update ends other than committed.
type StepError struct {
	State State
	Err   error
}

func (e *StepError) Error() string { return fmt.Sprintf("update: %s: %v", e.State, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }
