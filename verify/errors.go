package verify

import (
	"errors"
	"fmt"
)

var (
	// ErrSignature reports a signature that does not verify, or a payload
	// that carries no valid signature from a trusted key.
	ErrSignature = errors.New("verify: signature mismatch")

	// ErrUnknownKey reports a payload signed only by keys the key ring does
	// not trust (neither a root nor a signing key certified by one).
	ErrUnknownKey = errors.New("verify: unknown key")

	// ErrExpired reports a manifest or signing-key certificate past its
	// expiry time.
	ErrExpired = errors.New("verify: expired")

	// ErrDowngrade reports a version below the anti-rollback floor, or below
	// the installed version when the release does not allow a downgrade.
	ErrDowngrade = errors.New("verify: downgrade refused")

	// ErrMalformed reports input that does not parse or breaks a rule of
	// its format (a key of the wrong length, chunks that leave a gap...).
	ErrMalformed = errors.New("verify: malformed")

	// ErrTooLarge reports input above a size limit.
	ErrTooLarge = errors.New("verify: too large")

	// ErrDigestMismatch is the category of every [*DigestMismatchError]:
	// errors.Is(err, ErrDigestMismatch) matches any of them.
	ErrDigestMismatch = errors.New("verify: digest mismatch")
)

// DigestMismatchError reports content whose digest is not the one expected.
type DigestMismatchError struct {
	// What names the content: "chunk", "artifact", a file name.
	What string
	// Index is the chunk's index, or -1 when What is not a chunk.
	Index int
	// Offset is the content's offset in the artifact, when it has one.
	Offset int64
	Want   Digest
	Got    Digest
}

func (e *DigestMismatchError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("verify: digest mismatch in %s %d at offset %d: want %s, got %s",
			e.What, e.Index, e.Offset, e.Want, e.Got)
	}
	return fmt.Sprintf("verify: digest mismatch in %s: want %s, got %s", e.What, e.Want, e.Got)
}

// Is makes every DigestMismatchError match [ErrDigestMismatch].
func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
