package sign

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed reports a private key file, or a file in a key
	// directory, that does not parse or breaks a rule of its format.
	ErrMalformed = errors.New("sign: malformed")

	// ErrKeyExists reports a key file that already exists: key files are
	// never overwritten.
	ErrKeyExists = errors.New("sign: key file already exists")

	// ErrKeyMismatch reports keys that do not belong together: a private
	// and a public key file with different keys, or a certificate that is
	// not for the signing key or not signed by the root.
	ErrKeyMismatch = errors.New("sign: keys do not match")

	// ErrNoRootKey reports an operation that needs the root private key in
	// a key directory that holds only root.pub (the root kept offline).
	ErrNoRootKey = errors.New("sign: root private key not present")

	// ErrOutputExists reports a pack output that exists and is not an
	// empty directory.
	ErrOutputExists = errors.New("sign: output exists and is not an empty directory")

	// ErrConfig reports an invalid [PackConfig] or argument.
	ErrConfig = errors.New("sign: invalid configuration")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}
