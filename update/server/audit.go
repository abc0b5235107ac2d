package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server/store"
)

// Role is what an operator may do.
type Role string

// Roles of the operator API.
const (
	// RoleViewer reads: terminals, releases, rollouts, the audit log, the
	// inventory export.
	RoleViewer Role = "viewer"
	// RoleAdmin also acts: publishes releases, creates, pauses, resumes
	// and aborts rollouts, nudges and labels terminals.
	RoleAdmin Role = "admin"

	// Roles in the audit log of actors that are not operators.
	roleSystem   Role = "system"   // the server itself: rollout decisions, the vendor's code
	roleTerminal Role = "terminal" // a terminal, by its device ID
)

// can reports whether r may act as need.
func (r Role) can(need Role) bool {
	switch need {
	case RoleViewer:
		return r == RoleViewer || r == RoleAdmin
	case RoleAdmin:
		return r == RoleAdmin
	}
	return false
}

// Operator is who uses the operator API (or the Go API on their behalf):
// a name for the audit log and a role.
type Operator struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// system is the vendor's own code calling the Go API without naming an
// operator.
var system = Operator{Name: "server", Role: roleSystem}

func (o Operator) orSystem() Operator {
	if o == (Operator{}) {
		return system
	}
	return o
}

// operatorTable checks the configured operators and indexes them by the
// hash of their token, so that finding one takes no time that depends on
// how much of a guess matches.
func operatorTable(ops map[string]Operator, legacy string) (map[[sha256.Size]byte]Operator, error) {
	out := make(map[[sha256.Size]byte]Operator, len(ops)+1)
	for token, op := range ops {
		switch {
		case token == "":
			return nil, errConfig("Config.Operators: operator %q has an empty token", op.Name)
		case op.Name == "":
			return nil, errConfig("Config.Operators: an operator has no name")
		case op.Role != RoleViewer && op.Role != RoleAdmin:
			return nil, errConfig("Config.Operators: operator %q has role %q, want %q or %q", op.Name, op.Role, RoleViewer, RoleAdmin)
		}
		out[sha256.Sum256([]byte(token))] = op
	}
	if legacy != "" {
		key := sha256.Sum256([]byte(legacy))
		if _, ok := out[key]; !ok {
			out[key] = Operator{Name: "operator", Role: RoleAdmin}
		}
	}
	return out, nil
}

// audit appends an event to the audit log: who did what to which target
// and how it ended. A log that cannot be written is logged, loudly; the
// action it records has happened already.
func (s *Server) audit(ctx context.Context, by Operator, action, target string, err error, detail string) {
	result := "ok"
	if err != nil {
		// Viewers read the audit log: it says why an action failed as an
		// operator would be told, and no more (the server's log has the
		// rest).
		e := transport.AsError(err)
		var pe *PublishError
		why := e.Message
		result = "failed"
		switch {
		case e.Code == transport.CodeForbidden:
			result = "denied"
		case errors.As(err, &pe):
			why = pe.shown()
		}
		detail = joinDetail(detail, why)
	}
	e := store.AuditEvent{At: s.cfg.Now(), Actor: by.Name, Role: string(by.Role), Action: action, Target: target,
		Result: result, Detail: detail}
	if _, err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("server: audit log not written", "actor", by.Name, "action", action, "target", target,
			"result", result, "err", err)
	}
}

func joinDetail(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

// Audit returns up to limit audit events (all when limit <= 0) after the
// one numbered after, oldest first. Page with the last event's Seq.
func (s *Server) Audit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	evs, err := s.store.ListAudit(ctx, after, limit)
	if err != nil {
		return nil, fromStore(err, "audit log")
	}
	return evs, nil
}

// denied is the error of an operator whose role does not allow an action.
func denied(by Operator, action string) error {
	return transport.Errorf(transport.CodeForbidden, "%s %q may not %s", by.Role, by.Name, action)
}

// require returns nil if by may act as need, or records the refusal.
func (s *Server) require(ctx context.Context, by Operator, need Role, action, target string) error {
	if by.Role == roleSystem || by.Role.can(need) {
		return nil
	}
	err := denied(by, action)
	s.audit(ctx, by, action, target, err, fmt.Sprintf("needs role %s", need))
	return err
}
