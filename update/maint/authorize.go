package maint

import (
	"context"
	"time"
)

// The methods an [Authorization] names.
const (
	// MethodPassword is the master maintenance password.
	MethodPassword = "password"
	// MethodToken is a technician token signed by the server.
	MethodToken = "token"
)

// CredentialPassword is the Credential of every password [Authorization]:
// the password is the terminal's, not a person's.
const CredentialPassword = "maintenance-password"

// Authorization records that a technician's credential was accepted, for
// the audit event of the manual update it allows.
type Authorization struct {
	// Method is [MethodPassword] or [MethodToken].
	Method string
	// Credential names the credential used, never its secret:
	// [CredentialPassword], or "token:<technician>/<key ID>".
	Credential string
	// At is when the credential was accepted.
	At time.Time
}

// Authorizer accepts or refuses a technician's credential. [*Password] and
// [*TokenVerifier] are Authorizers, so a maintenance menu can take either.
type Authorizer interface {
	Authorize(ctx context.Context, credential string) (Authorization, error)
}

var (
	_ Authorizer = (*Password)(nil)
	_ Authorizer = (*TokenVerifier)(nil)
)
