// Package version parses and compares semantic versions and from-version
// constraints for the packages that need them, so that the semver library
// stays out of every exported signature.
package version

import (
	"errors"
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// ErrInvalid reports a version or constraint that does not parse.
var ErrInvalid = errors.New("invalid version")

// Check reports whether s is a valid semantic version.
func Check(s string) error {
	_, err := parse(s)
	return err
}

// Compare returns -1, 0 or +1 as a is less than, equal to or greater than b.
// Build metadata is ignored, as semantic versioning requires.
func Compare(a, b string) (int, error) {
	va, err := parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := parse(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// Less reports whether a < b; invalid versions are treated as an error.
func Less(a, b string) (bool, error) {
	c, err := Compare(a, b)
	return c < 0, err
}

// CheckConstraint reports whether c is a valid constraint such as
// ">=1.0.0, <1.1.0" or "~1.2".
func CheckConstraint(c string) error {
	_, err := constraint(c)
	return err
}

// Satisfies reports whether v satisfies constraint c.
func Satisfies(v, c string) (bool, error) {
	sv, err := parse(v)
	if err != nil {
		return false, err
	}
	cs, err := constraint(c)
	if err != nil {
		return false, err
	}
	return cs.Check(sv), nil
}

// Max returns the greater of a and b; an empty string counts as lowest.
func Max(a, b string) (string, error) {
	switch {
	case a == "":
		return b, Check(b)
	case b == "":
		return a, Check(a)
	}
	c, err := Compare(a, b)
	if err != nil {
		return "", err
	}
	if c >= 0 {
		return a, nil
	}
	return b, nil
}

func parse(s string) (*semver.Version, error) {
	if len(s) > 128 {
		return nil, fmt.Errorf("%w: %d bytes is too long", ErrInvalid, len(s))
	}
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
	}
	return v, nil
}

func constraint(c string) (*semver.Constraints, error) {
	if len(c) > 256 {
		return nil, fmt.Errorf("%w: constraint of %d bytes is too long", ErrInvalid, len(c))
	}
	cs, err := semver.NewConstraint(c)
	if err != nil {
		return nil, fmt.Errorf("%w: constraint %q: %v", ErrInvalid, c, err)
	}
	return cs, nil
}
