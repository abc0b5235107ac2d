package maint

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotSet matches when no maintenance password has been set yet.
	// There is no factory default: the first use must set one with
	// [Password.SetPassword].
	ErrNotSet = errors.New("maint: no maintenance password is set")
	// ErrWrongPassword matches a password that is not the maintenance
	// password. The failure was recorded durably before it was returned.
	ErrWrongPassword = errors.New("maint: wrong maintenance password")
	// ErrLocked matches every [*LockedError].
	ErrLocked = errors.New("maint: locked after failed tries")
	// ErrWeakPassword matches a new password the policy refuses: too
	// short, too long, or the same as the old one.
	ErrWeakPassword = errors.New("maint: password refused by policy")
	// ErrCorrupt matches a password file that cannot be read as one. It is
	// never taken for "not set": a damaged file refuses every password
	// until it is repaired or replaced by the vendor's own procedure.
	ErrCorrupt = errors.New("maint: password file is corrupt")

	// ErrMalformed matches a technician token that is not one: too large,
	// bad encoding, unknown or missing claims, out-of-range fields.
	ErrMalformed = errors.New("maint: malformed token")
	// ErrUnknownKey matches a token signed with a key ID the verifier does
	// not hold.
	ErrUnknownKey = errors.New("maint: token signed by an unknown key")
	// ErrSignature matches a token whose signature does not verify.
	ErrSignature = errors.New("maint: bad token signature")
	// ErrExpired matches a token that is not valid now: expired, issued in
	// the future, or with a lifetime above the verifier's maximum. Leeway
	// is allowed either side.
	ErrExpired = errors.New("maint: token expired or not yet valid")
	// ErrWrongDevice matches a token issued for another terminal.
	ErrWrongDevice = errors.New("maint: token is for another device")
	// ErrReplay matches a token whose nonce was already used, or that a
	// full [ReplayGuard] cannot remember.
	ErrReplay = errors.New("maint: token already used")
)

// LockedError reports a try refused, without looking at the password,
// because too many tries failed. It matches [ErrLocked].
type LockedError struct {
	// Until is when the next try is allowed.
	Until time.Time
	// Failures is how many tries have failed in a row.
	Failures int
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("maint: locked until %s after %d failed tries", e.Until.UTC().Format(time.RFC3339), e.Failures)
}

// Is makes every LockedError match [ErrLocked].
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// WrongPasswordError reports a wrong password, after the failure was
// recorded. It matches [ErrWrongPassword].
type WrongPasswordError struct {
	// Failures is how many tries have failed in a row, this one included.
	Failures int
	// LockedUntil is when the next try is allowed; zero when it is allowed
	// now.
	LockedUntil time.Time
}

func (e *WrongPasswordError) Error() string {
	if e.LockedUntil.IsZero() {
		return fmt.Sprintf("maint: wrong maintenance password (%d failed tries)", e.Failures)
	}
	return fmt.Sprintf("maint: wrong maintenance password (%d failed tries, locked until %s)",
		e.Failures, e.LockedUntil.UTC().Format(time.RFC3339))
}

// Is makes every WrongPasswordError match [ErrWrongPassword].
func (e *WrongPasswordError) Is(target error) bool { return target == ErrWrongPassword }
