package verify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultCheckTimeout is a check's timeout when its Timeout is zero.
const DefaultCheckTimeout = 30 * time.Second

// Check is one named health check run after an install: the new version
// starts, sign-in succeeds, the vendor's own function tests pass.
type Check struct {
	// Name identifies the check in results and reports.
	Name string
	// Timeout bounds one run; zero means [DefaultCheckTimeout].
	Timeout time.Duration
	// Run returns nil when healthy. Its error's text becomes the reason.
	// Run must return promptly when ctx is done.
	Run func(ctx context.Context) error
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name     string
	OK       bool
	Reason   string // why it failed; empty when OK
	Err      error  // the error behind Reason; nil when OK
	Duration time.Duration
}

// CheckResults is the outcome of a run of checks, in the order they ran.
type CheckResults []CheckResult

// OK reports whether every check passed.
func (rs CheckResults) OK() bool { return rs.Err() == nil }

// Err returns a [*CheckError] for the first failed check, or nil.
func (rs CheckResults) Err() error {
	for _, r := range rs {
		if !r.OK {
			return &CheckError{Name: r.Name, Reason: r.Reason, Err: r.Err}
		}
	}
	return nil
}

// CheckError reports a failed health check.
type CheckError struct {
	Name   string
	Reason string
	Err    error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("verify: health check %q failed: %s", e.Name, e.Reason)
}

func (e *CheckError) Unwrap() error { return e.Err }

// ErrCheckTimeout is the error of a check that outlived its timeout.
var ErrCheckTimeout = errors.New("verify: health check timed out")

// RunChecks runs checks one after another, in order, each under its own
// timeout, and stops at the first failure: later checks usually depend on
// earlier ones (sign-in needs the app started). A check that panics fails
// with the panic as its reason. If ctx is done, RunChecks returns the
// results so far and ctx.Err().
func RunChecks(ctx context.Context, checks []Check) (CheckResults, error) {
	results := make(CheckResults, 0, len(checks))
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r := runCheck(ctx, c)
		if ctx.Err() != nil && !r.OK {
			// The run failed because we were cancelled, not because the
			// check is unhealthy: do not report it as a failure.
			return results, ctx.Err()
		}
		results = append(results, r)
		if !r.OK {
			break
		}
	}
	return results, nil
}

func runCheck(ctx context.Context, c Check) CheckResult {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	cctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrCheckTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("verify: health check panicked: %v", p)
			}
		}()
		if c.Run == nil {
			done <- errors.New("verify: health check has no Run function")
			return
		}
		done <- c.Run(cctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-cctx.Done():
		select {
		case err = <-done:
			// It finished as time ran out: its own verdict stands, rather
			// than whichever case select happened to pick.
		default:
			// A check that ignores its context is abandoned, not awaited:
			// a hung check must not hang the update.
			err = context.Cause(cctx)
		}
	}
	if err == nil {
		return CheckResult{Name: c.Name, OK: true, Duration: time.Since(start)}
	}
	if errors.Is(err, context.DeadlineExceeded) && context.Cause(cctx) == ErrCheckTimeout {
		err = ErrCheckTimeout
	}
	reason := err.Error()
	if errors.Is(err, ErrCheckTimeout) {
		reason = fmt.Sprintf("timed out after %s", timeout)
	}
	return CheckResult{Name: c.Name, Reason: reason, Err: err, Duration: time.Since(start)}
}
