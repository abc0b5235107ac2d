package server

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
	"github.com/upkeephq/upkeep/update/server/store"
)

// The server's errors are transport errors (*transport.Error), whether
// they reach a terminal, an operator over HTTP or a caller of the Go API:
// match them with errors.Is against transport.ErrNotFound,
// transport.ErrForbidden, transport.ErrConflict and so on. What a store
// says beyond its condition (a query, a path) stays in the server's log.

// ErrRunning is what [Server.Run] returns when it is running already.
var ErrRunning = errors.New("server: Run is already running")

// PublishError is a release directory that [Server.Publish] refused: it
// does not verify against the root keys, or cannot be read. It matches
// what Err matches (verify.ErrUnknownKey, verify.ErrDigestMismatch,
// fs.ErrNotExist...).
type PublishError struct {
	Dir string
	Err error
	// name is the directory as the audit log and the operator API show
	// it: without the server's own paths.
	name string
}

func (e *PublishError) Error() string { return fmt.Sprintf("server: publish %s: %v", e.Dir, e.Err) }

func (e *PublishError) Unwrap() error { return e.Err }

// shown is the refusal as viewers of the audit log and operators may see
// it: the directory by the name it was published by, and no path of the
// server's in the reason.
func (e *PublishError) shown() string {
	name := e.name
	if name == "" {
		name = filepath.Base(e.Dir)
	}
	msg := e.Err.Error()
	abs, _ := filepath.Abs(e.Dir)
	for _, p := range []string{abs, filepath.Clean(e.Dir), e.Dir} {
		if p != "" && p != "." {
			msg = strings.ReplaceAll(msg, p, name)
		}
	}
	return "publish " + name + ": " + msg
}

// errConfig reports an invalid Config.
func errConfig(format string, args ...any) error {
	return fmt.Errorf("server: "+format, args...)
}

// fromStore maps a store error to the transport error the API returns:
// not found, conflict, bad request; anything else is internal and keeps
// err for the log (transport.AsError hides its text from the wire).
func fromStore(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return transport.Errorf(transport.CodeNotFound, "%s", msg)
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict):
		return transport.Errorf(transport.CodeConflict, "%s", msg)
	case errors.Is(err, store.ErrInvalid):
		return transport.Errorf(transport.CodeBadRequest, "%s: %v", msg, err)
	}
	return fmt.Errorf("server: %s: %w", msg, err)
}

// fromRollout maps an error of package rollout: an invalid definition is a
// bad request, a transition the rollout's state refuses is a conflict.
func fromRollout(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rollout.ErrInvalid):
		return transport.Errorf(transport.CodeBadRequest, "%v", err)
	case errors.Is(err, rollout.ErrTransition):
		return transport.Errorf(transport.CodeConflict, "%v", err)
	}
	return err
}

// errUnknownTerminal is what a terminal that the store does not know is
// told: its token, or its registration, is gone.
func errUnknownTerminal() error {
	return transport.Errorf(transport.CodeUnauthorized, "unknown terminal")
}
