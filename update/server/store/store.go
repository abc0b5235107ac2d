package store

import (
	"context"
	"time"
)

// Store is the whole fleet store, as the update server uses it. Parts of
// the server that need less take one of the smaller interfaces it is made
// of. Implementations are safe for concurrent use.
type Store interface {
	Fleet
	Catalog
	Rollouts
	AuditLog
}

// Fleet keeps the terminals, their heartbeats and their reports.
type Fleet interface {
	HeartbeatWriter

	// CreateTerminal records a new terminal. It returns ErrExists if the
	// device ID, the serial or a non-empty token hash is taken, and
	// ErrInvalid if the ID or serial is empty or malformed.
	CreateTerminal(ctx context.Context, t Terminal) error

	// Terminal returns the terminal with a device ID, or ErrNotFound.
	Terminal(ctx context.Context, deviceID string) (Terminal, error)

	// TerminalBySerial returns the terminal with a serial, or ErrNotFound.
	TerminalBySerial(ctx context.Context, serial string) (Terminal, error)

	// TokenOwner returns the device ID whose token hashes to tokenHash, or
	// ErrNotFound. It reads one index entry, for authenticating every
	// request.
	TokenOwner(ctx context.Context, tokenHash []byte) (string, error)

	// UpdateTerminal reads a terminal, passes it to update and writes back
	// what update leaves, in one transaction, and returns it. An error
	// from update is returned as is and nothing is written. update must
	// not change the ID or the serial (ErrInvalid); a token hash taken by
	// another terminal is ErrExists. It returns ErrNotFound if there is no
	// such terminal.
	UpdateTerminal(ctx context.Context, deviceID string, update func(*Terminal) error) (Terminal, error)

	// ListTerminals returns up to limit terminals (all when limit <= 0)
	// whose device IDs sort after after (bytewise), in that order. Pass
	// the last ID of a page as after to read the next.
	ListTerminals(ctx context.Context, after string, limit int) ([]Terminal, error)

	// AddReport records a report once per (DeviceID, ID) and, in the same
	// transaction, passes the terminal to update (when update is not nil)
	// and writes back what it leaves, so a report and what it changes are
	// recorded together or not at all. A report ID already recorded for
	// the device returns ErrExists and changes nothing: the report is a
	// duplicate. It returns ErrNotFound if there is no such terminal. The
	// store assigns the report's Seq.
	AddReport(ctx context.Context, r Report, update func(*Terminal) error) (Report, error)

	// ListReports returns the last limit reports of a terminal (all when
	// limit <= 0), oldest first, in the order they were recorded. A
	// terminal without reports, or unknown, has none.
	ListReports(ctx context.Context, deviceID string, limit int) ([]Report, error)
}

// HeartbeatWriter writes heartbeats in batches. It is what a [Batcher]
// needs.
type HeartbeatWriter interface {
	// Heartbeats records many heartbeats in one transaction and takes each
	// terminal's pending directives. It returns one result per beat, in
	// order; a beat for an unknown terminal (ErrNotFound) or an invalid
	// beat (ErrInvalid) fails alone, in its result. The error is for the
	// batch as a whole (the transaction failed; nothing was written).
	//
	// A beat older than the terminal's LastSeen (beats can arrive out of
	// order across replicas) changes nothing but still takes the
	// directives. Several beats for one terminal in a batch apply in
	// order; the directives go to the first.
	Heartbeats(ctx context.Context, beats []Heartbeat) ([]HeartbeatResult, error)
}

// Catalog keeps the published releases.
type Catalog interface {
	// PutRelease publishes a release, replacing one with the same ID and
	// channel. The store assigns Seq, so a release published again moves
	// to the end of the list.
	PutRelease(ctx context.Context, r Release) (Release, error)

	// Release returns the release with an ID in a channel, or ErrNotFound.
	Release(ctx context.Context, id, channel string) (Release, error)

	// ListReleases returns every published release in the order they were
	// published (by Seq).
	ListReleases(ctx context.Context) ([]Release, error)

	// DeleteRelease withdraws a release, or returns ErrNotFound.
	DeleteRelease(ctx context.Context, id, channel string) error
}

// Rollouts keeps rollouts and each device's state in them.
type Rollouts interface {
	// CreateRollout records a new rollout at Version 1 and returns it. It
	// returns ErrExists if the ID is taken.
	CreateRollout(ctx context.Context, r Rollout) (Rollout, error)

	// Rollout returns a rollout, or ErrNotFound.
	Rollout(ctx context.Context, id string) (Rollout, error)

	// ListRollouts returns every rollout, by ID.
	ListRollouts(ctx context.Context) ([]Rollout, error)

	// UpdateRollout replaces a rollout's definition, status and UpdatedAt
	// if its stored version is still r.Version (compare and swap), and
	// returns it with the next version; CreatedAt stays as created. A
	// stale version returns ErrConflict (as an *Error carrying the stored
	// version) and changes nothing; an unknown ID returns ErrNotFound.
	UpdateRollout(ctx context.Context, r Rollout) (Rollout, error)

	// PutRolloutDevices writes many devices' rollout states in one
	// transaction, replacing the states they had, whatever they were.
	// Later entries for the same device win. It returns ErrNotFound, and
	// writes nothing, if a rollout does not exist. Writers that read a
	// state before they change it use ChangeRolloutDevices.
	PutRolloutDevices(ctx context.Context, states []RolloutDevice) error

	// ChangeRolloutDevices writes device states in one transaction, each
	// only if the store still holds the state its writer read (see
	// [DeviceChange]), and reports which it wrote, in order. A change whose
	// condition fails writes nothing: its writer reads the device again and
	// decides anew, so no writer overwrites a state it has not seen.
	// Several changes of one device apply in turn, each against what the
	// ones before it left. It returns ErrNotFound, and writes nothing, if
	// a rollout does not exist.
	ChangeRolloutDevices(ctx context.Context, changes []DeviceChange) ([]bool, error)

	// ClaimRolloutDevice writes one change, as ChangeRolloutDevices does,
	// and only if the rollout's caps allow it, in one transaction with
	// every other write of the rollout's devices: fewer than
	// c.MaxInFlight devices of the rollout in the phases c.InFlight, and
	// fewer than c.MaxStarts claims written in the window c.Window (see
	// [Claim]). It returns ErrConflict if the device's state is not the one
	// the change expects and ErrLimit if a cap is reached, both as an
	// *Error, and then writes nothing; ErrNotFound if the rollout does
	// not exist. It is what makes a rollout's caps exact across replicas.
	ClaimRolloutDevice(ctx context.Context, c Claim) error

	// RolloutDevice returns a device's state in a rollout, or ErrNotFound.
	RolloutDevice(ctx context.Context, rolloutID, deviceID string) (RolloutDevice, error)

	// ListRolloutDevices returns up to limit device states of a rollout
	// (all when limit <= 0) in the given phase (any phase when empty),
	// whose device IDs sort after after, by device ID.
	ListRolloutDevices(ctx context.Context, rolloutID string, phase Phase, after string, limit int) ([]RolloutDevice, error)

	// CountRolloutDevices returns how many devices of a rollout are in
	// each phase, by reason, sorted by phase then reason. It is cheap
	// enough to call on every decision of a rollout engine.
	CountRolloutDevices(ctx context.Context, rolloutID string) ([]PhaseCount, error)
}

// AuditLog is append-only: there is no way to change or remove an event.
type AuditLog interface {
	// AppendAudit records an event, assigns its Seq (increasing in the
	// order events are committed, so a reader that pages by Seq misses
	// none) and returns it.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)

	// ListAudit returns up to limit events (all when limit <= 0) with Seq
	// above after, oldest first.
	ListAudit(ctx context.Context, after int64, limit int) ([]AuditEvent, error)
}

// Terminal is one enrolled terminal.
type Terminal struct {
	// ID is the device ID the server issued; the key.
	ID string `json:"id"`
	// Serial is the terminal's serial number; unique.
	Serial string `json:"serial"`
	// Model and HardwareRevision are what the terminal registered as.
	Model            string `json:"model"`
	HardwareRevision string `json:"hardware_revision,omitempty"`
	// TokenHash is a hash of the terminal's token (the store never sees
	// the token); unique when not empty. Empty means no token works.
	TokenHash []byte `json:"token_hash,omitempty"`
	// Tags, Group and Channel place the terminal in cohorts and release
	// channels.
	Tags    []string `json:"tags,omitempty"`
	Group   string   `json:"group,omitempty"`
	Channel string   `json:"channel,omitempty"`
	// Components are the installed components and versions.
	Components []Component `json:"components,omitempty"`
	// RegisteredAt is when the terminal last registered.
	RegisteredAt time.Time `json:"registered_at,omitzero"`
	// LastSeen is the time of its latest heartbeat; zero if none.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Interval is the heartbeat interval it was last directed to keep.
	Interval time.Duration `json:"interval,omitempty"`
	// Status is what its latest heartbeat said.
	Status Status `json:"status,omitzero"`
	// LastResult is the outcome of its latest update attempt, or nil.
	LastResult *Result `json:"last_result,omitempty"`
	// Directives are waiting for its next heartbeat, which takes them.
	Directives []string `json:"directives,omitempty"`
}

// Component is one installed piece of software and its version.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Floor is the anti-rollback floor the terminal holds for it.
	Floor string `json:"floor,omitempty"`
}

// Status is what a terminal's heartbeat says of it.
type Status struct {
	// Seq counts heartbeats since the terminal booted.
	Seq uint64 `json:"seq,omitempty"`
	// State is the update agent's state, e.g. "idle" or "downloading".
	State string `json:"state,omitempty"`
	// Release is the release in progress, if any.
	Release string `json:"release,omitempty"`
	// Waiting says why the agent waits, if it does.
	Waiting string `json:"waiting,omitempty"`
	// Battery is the power state; nil if not reported.
	Battery *Battery `json:"battery,omitempty"`
	// Network is the kind of network it is on, e.g. "wifi" or "4g".
	Network string `json:"network,omitempty"`
}

// Battery is a terminal's power state.
type Battery struct {
	Percent int  `json:"percent"`
	OnMains bool `json:"on_mains,omitempty"`
}

// Result is the outcome of an update attempt.
type Result struct {
	Release string    `json:"release"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// Heartbeat is one heartbeat to record.
type Heartbeat struct {
	// DeviceID is the terminal that beat.
	DeviceID string `json:"device_id"`
	// At is when the server received it; required.
	At time.Time `json:"at"`
	// Interval is the interval the terminal was directed to keep; zero
	// keeps the one recorded.
	Interval time.Duration `json:"interval,omitempty"`
	// Status replaces the terminal's status.
	Status Status `json:"status"`
	// Components, when not empty, replace the terminal's components.
	Components []Component `json:"components,omitempty"`
	// LastResult, when not nil, replaces the terminal's last result.
	LastResult *Result `json:"last_result,omitempty"`
}

// HeartbeatResult is what recording one heartbeat gave.
type HeartbeatResult struct {
	// Directives are the terminal's pending directives, now taken.
	Directives []string
	// Err is ErrNotFound for an unknown terminal, ErrInvalid for an
	// invalid beat, or nil.
	Err error
}

// Report is a terminal's report of the end of an update attempt.
type Report struct {
	// DeviceID and ID identify the report: a terminal's report ID is
	// recorded once.
	DeviceID string `json:"device_id"`
	ID       string `json:"id"`
	// Seq is assigned by the store and increases in recording order.
	Seq     int64  `json:"seq"`
	Release string `json:"release"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Phase   string `json:"phase,omitempty"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// At is when the terminal says it happened.
	At time.Time `json:"at,omitzero"`
	// ReceivedAt is when the server recorded it.
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// Release is a published release: what a replica needs to offer it and
// serve its artifact.
type Release struct {
	// ID (such as "pos-app@2.1.0") and Channel identify the release.
	ID      string `json:"id"`
	Channel string `json:"channel"`
	// Seq is assigned by the store at each publication.
	Seq       int64  `json:"seq"`
	Component string `json:"component"`
	Version   string `json:"version"`
	// Digest and Size are the artifact's.
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Path is where the artifact's file is, as the server sees it.
	Path string `json:"path,omitempty"`
	// Bundle is the signed bundle, verbatim; every replica re-verifies it.
	Bundle []byte `json:"bundle,omitempty"`
	// Policy is how the release is offered: opaque JSON (a
	// transport.Policy) or empty.
	Policy []byte `json:"policy,omitempty"`
	// PublishedAt is when it was published.
	PublishedAt time.Time `json:"published_at,omitzero"`
}

// Rollout is a staged rollout. The store keeps its definition and status
// as opaque JSON, and a version for optimistic concurrency.
type Rollout struct {
	ID string `json:"id"`
	// Definition says what is rolled out to whom and how fast: opaque
	// JSON (or empty).
	Definition []byte `json:"definition,omitempty"`
	// Status is the rollout engine's state: opaque JSON (or empty).
	Status []byte `json:"status,omitempty"`
	// Version counts writes: 1 when created, one more at each update.
	// [Rollouts.UpdateRollout] succeeds only with the version stored.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// StartsWindow is the latest window a claim counted in, and Starts
	// how many claims were written in it ([Rollouts.ClaimRolloutDevice]).
	// The store keeps them: CreateRollout starts them at zero, and
	// UpdateRollout leaves them as they are (nor do they change Version).
	StartsWindow time.Time `json:"starts_window,omitzero"`
	Starts       int       `json:"starts,omitempty"`
}

// Phase is where a device is in a rollout. The store does not interpret
// phases; these are the ones the update server uses.
type Phase string

// Phases of a device in a rollout.
const (
	PhasePending    Phase = "pending"
	PhaseInProgress Phase = "in_progress"
	PhaseSucceeded  Phase = "succeeded"
	PhaseFailed     Phase = "failed"
	PhaseOffline    Phase = "offline"
	PhaseExpired    Phase = "expired"
)

// RolloutDevice is one device's state in one rollout.
type RolloutDevice struct {
	RolloutID string `json:"rollout_id"`
	DeviceID  string `json:"device_id"`
	Phase     Phase  `json:"phase"`
	// Reason qualifies the phase, e.g. the reason code of a failure.
	Reason    string    `json:"reason,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// DeviceChange is a conditional write of one device's state in a rollout:
// State is written only if the store still holds, for the device, the
// phase and reason its writer read, IfPhase and IfReason. An empty
// IfPhase means the device must have no state in the rollout yet (a first
// write).
type DeviceChange struct {
	State    RolloutDevice
	IfPhase  Phase
	IfReason string
}

// Claim is a change that takes a place under a rollout's caps, such as a
// device's first offer: [Rollouts.ClaimRolloutDevice] writes it only if
// the caps allow. A zero cap is no cap.
type Claim struct {
	DeviceChange
	// MaxInFlight caps the devices of the rollout whose phase is one of
	// InFlight (counted before the change is written).
	InFlight    []Phase
	MaxInFlight int
	// MaxStarts caps the claims written per window: Window is when the
	// claim's window began (a calendar minute, say); it is required with
	// MaxStarts. A claim in a window later than the rollout's
	// StartsWindow starts the count afresh; one in an earlier window (a
	// replica whose clock lags) counts in the later one.
	Window    time.Time
	MaxStarts int
}

// PhaseCount is how many devices of a rollout are in a phase for a reason.
type PhaseCount struct {
	Phase  Phase  `json:"phase"`
	Reason string `json:"reason,omitempty"`
	Count  int64  `json:"count"`
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	// Seq is assigned by the store.
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// Actor is who acted (an operator's name, "system"), in Role.
	Actor string `json:"actor"`
	Role  string `json:"role,omitempty"`
	// Action is what was done (e.g. "release.publish"), to Target.
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	// Result is how it ended (e.g. "ok", "denied").
	Result string `json:"result,omitempty"`
	Detail string `json:"detail,omitempty"`
}
