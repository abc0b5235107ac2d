package verify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Names of the built-in checks, as results and reports show them.
const (
	CheckSignIn = "sign-in"
	CheckEcho   = "echo-test"
)

// Defaults of [Retry]'s zero fields, for the built-in checks.
const (
	DefaultCheckAttempts  = 3
	DefaultCheckRetryWait = 5 * time.Second
)

var (
	// ErrSignIn is a failed sign-in (签到): without fresh working keys the
	// terminal cannot take payments, so the update has failed.
	ErrSignIn = errors.New("verify: sign-in failed")
	// ErrEcho is a failed echo test (回响测试) with the payment host.
	ErrEcho = errors.New("verify: echo test failed")
)

// Retry says how often a built-in check tries before it fails: right after
// a restart the network may still be coming up.
type Retry struct {
	// Attempts is how many tries; 0 means [DefaultCheckAttempts].
	Attempts int
	// Wait is the pause between tries; 0 means [DefaultCheckRetryWait].
	Wait time.Duration
	// Timeout bounds the whole check, every try and wait included; 0 means
	// [DefaultCheckTimeout] times Attempts.
	Timeout time.Duration
}

// SignIn returns the sign-in check: signIn performs the terminal's online
// logon with the payment host (签到), which fetches fresh working keys. A
// terminal that cannot sign in cannot take payments, so a failed sign-in
// is a failed update: the check's error matches [ErrSignIn], and the agent
// reports it with its own reason code. Run it after the checks it depends
// on (the payment app started).
func SignIn(signIn func(ctx context.Context) error, r Retry) Check {
	return retrying(CheckSignIn, ErrSignIn, signIn, r)
}

// Echo returns the echo-test check: echo exchanges a test message with the
// payment host (回响测试) and returns nil when the host answers. Its error
// matches [ErrEcho].
func Echo(echo func(ctx context.Context) error, r Retry) Check {
	return retrying(CheckEcho, ErrEcho, echo, r)
}

// FunctionTest returns one of the vendor's own function tests as a check
// (the printer, the card reader, a transaction in test mode): run once,
// within timeout (0 means [DefaultCheckTimeout]).
func FunctionTest(name string, timeout time.Duration, run func(ctx context.Context) error) Check {
	return Check{Name: name, Timeout: timeout, Run: run}
}

// retrying is a check that tries fn r.Attempts times, r.Wait apart, and
// wraps its last error in kind.
func retrying(name string, kind error, fn func(ctx context.Context) error, r Retry) Check {
	if r.Attempts <= 0 {
		r.Attempts = DefaultCheckAttempts
	}
	if r.Wait <= 0 {
		r.Wait = DefaultCheckRetryWait
	}
	if r.Timeout <= 0 {
		r.Timeout = DefaultCheckTimeout * time.Duration(r.Attempts)
	}
	return Check{Name: name, Timeout: r.Timeout, Run: func(ctx context.Context) error {
		if fn == nil {
			return fmt.Errorf("%w: no function to call", kind)
		}
		var err error
		try := 1
		for ; ; try++ {
			if err = fn(ctx); err == nil {
				return nil
			}
			if try == r.Attempts || ctx.Err() != nil {
				break
			}
			t := time.NewTimer(r.Wait)
			select {
			case <-ctx.Done():
				// Out of time (or cancelled) while waiting to try again.
				t.Stop()
				return fmt.Errorf("%w after %d tries: %w (last: %v)", kind, try, context.Cause(ctx), err)
			case <-t.C:
			}
		}
		return fmt.Errorf("%w after %d tries: %w", kind, try, err)
	}}
}
