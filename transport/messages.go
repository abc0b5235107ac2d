package transport

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/verify"
)

// Paths of protocol v1.
const (
	PathRegister  = "/v1/register"
	PathHeartbeat = "/v1/heartbeat"
	PathCheck     = "/v1/check"
	PathArtifacts = "/v1/artifacts/" // followed by the artifact's digest
	PathReport    = "/v1/report"
)

// Size limits. A server refuses larger requests with [CodeTooLarge]; a
// client refuses larger responses.
const (
	// MaxRequestSize bounds a request body.
	MaxRequestSize = 64 << 10
	// MaxResponseSize bounds a response body other than artifact bytes; a
	// check response carries signed manifests with their chunk lists.
	MaxResponseSize = 64 << 20
	// MaxComponents bounds the components a device reports.
	MaxComponents = 64
	// MaxDetail bounds a report's free-text detail.
	MaxDetail = 2048
	// MaxToken bounds a device token or enrollment credential.
	MaxToken = 512
)

// Component is one installed piece of software and its version.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Floor is the anti-rollback floor the terminal holds for it.
	Floor string `json:"floor,omitempty"`
}

// RegisterRequest enrolls a terminal (终端注册): it proves it holds an
// enrollment credential and says what it is.
type RegisterRequest struct {
	Enrollment       string      `json:"enrollment"`
	Serial           string      `json:"serial"`
	Model            string      `json:"model"`
	HardwareRevision string      `json:"hardware_revision,omitempty"`
	Components       []Component `json:"components,omitempty"`
}

// RegisterResponse gives the terminal its identity and the token for every
// later call.
type RegisterResponse struct {
	DeviceID string `json:"device_id"`
	Token    string `json:"token"`
}

// Battery is the power state a terminal reports.
type Battery struct {
	Percent int  `json:"percent"`
	OnMains bool `json:"on_mains,omitempty"`
}

// Result is the outcome of a terminal's last update attempt.
type Result struct {
	Release string    `json:"release"`
	Outcome Outcome   `json:"outcome"`
	Reason  Reason    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// HeartbeatRequest is a terminal's periodic status (心跳).
type HeartbeatRequest struct {
	// Seq counts heartbeats since the terminal booted, starting at 1.
	Seq        uint64      `json:"seq"`
	State      string      `json:"state,omitempty"`
	Release    string      `json:"release,omitempty"` // the release in progress
	Waiting    string      `json:"waiting,omitempty"` // why the agent is waiting, if it is
	Components []Component `json:"components,omitempty"`
	Battery    *Battery    `json:"battery,omitempty"`
	Network    string      `json:"network,omitempty"`
	LastResult *Result     `json:"last_result,omitempty"`
}

// Directive is something the server asks of a terminal.
type Directive string

const (
	// DirectiveCheck asks the terminal to check for an update now.
	DirectiveCheck Directive = "check"
	// DirectiveSignIn asks the terminal to sign in (签到) again.
	DirectiveSignIn Directive = "sign_in"
)

// HeartbeatResponse directs the terminal's schedule.
type HeartbeatResponse struct {
	IntervalSeconds int         `json:"interval_seconds"`
	JitterSeconds   int         `json:"jitter_seconds,omitempty"`
	Directives      []Directive `json:"directives,omitempty"`
	ServerTime      time.Time   `json:"server_time"`
}

// CheckRequest says what a terminal is and has, so the server can pick the
// release that fits.
type CheckRequest struct {
	Model            string      `json:"model"`
	HardwareRevision string      `json:"hardware_revision,omitempty"`
	Channel          string      `json:"channel,omitempty"`
	Components       []Component `json:"components"`
}

// CheckResponse offers releases, in the order to install them, or says
// when to ask again.
type CheckResponse struct {
	Offers            []Offer `json:"offers,omitempty"`
	RetryAfterSeconds int     `json:"retry_after_seconds,omitempty"`
	// Reason says why nothing is offered, e.g. [ReasonUpToDate].
	Reason Reason `json:"reason,omitempty"`
}

// Offer is one release offered to a terminal.
type Offer struct {
	// Bundle is the signed bundle (see verify.Bundle), verbatim.
	Bundle json.RawMessage `json:"bundle"`
	// ArtifactURL is where the bytes are: an absolute URL (a CDN, any
	// Range-capable server), a path under the update server's base URL
	// (see [ResolveArtifactURL]: "v1/artifacts/x" and "/v1/artifacts/x"
	// both keep the base's path prefix), or empty for
	// PathArtifacts+digest on the update server.
	ArtifactURL string   `json:"artifact_url,omitempty"`
	Mirrors     []string `json:"mirrors,omitempty"`
	Policy      Policy   `json:"policy"`
}

// Policy is how the server wants an offer handled.
type Policy struct {
	// Blocking marks an update that must not be deferred by the merchant.
	Blocking bool `json:"blocking,omitempty"`
	// Deadline is when a deferrable update becomes required.
	Deadline time.Time `json:"deadline,omitzero"`
	// DownloadWindows and InstallWindows, when set, replace the
	// terminal's own maintenance windows for this offer: weekly windows
	// in the terminal's local time, such as "mon-fri 01:00-05:00" or
	// "daily 22:00-02:00" (see the update/gate package).
	DownloadWindows []string `json:"download_windows,omitempty"`
	InstallWindows  []string `json:"install_windows,omitempty"`
}

// Outcome is how an update attempt ended.
type Outcome string

const (
	// OutcomeCommitted: the new version is installed and healthy.
	OutcomeCommitted Outcome = "committed"
	// OutcomeRolledBack: installed, found unhealthy, and put back.
	OutcomeRolledBack Outcome = "rolled_back"
	// OutcomeRefused: refused before anything was installed (bad
	// signature, wrong model, download failed...). Nothing changed.
	OutcomeRefused Outcome = "refused"
	// OutcomeNeedsAttention: a rollback failed; the terminal needs a person.
	OutcomeNeedsAttention Outcome = "needs_attention"
)

// Reason is a machine-readable reason code.
type Reason string

// Reason codes. They are stable: servers aggregate and alert on them.
const (
	ReasonOK           Reason = "ok"
	ReasonUpToDate     Reason = "up_to_date"
	ReasonNoRelease    Reason = "no_release"
	ReasonDownload     Reason = "download_failed"
	ReasonSignature    Reason = "signature_invalid"
	ReasonUnknownKey   Reason = "unknown_key"
	ReasonExpired      Reason = "expired"
	ReasonDowngrade    Reason = "downgrade"
	ReasonIncompatible Reason = "incompatible"
	ReasonDigest       Reason = "digest_mismatch"
	ReasonTooLarge     Reason = "too_large"
	ReasonMalformed    Reason = "malformed"
	ReasonDiskFull     Reason = "disk_full"
	ReasonBackup       Reason = "backup_failed"
	ReasonInstall      Reason = "install_failed"
	ReasonHealth       Reason = "health_failed"
	// ReasonSignIn: the new version could not sign in (签到) with the
	// payment host, so it could not take payments; rolled back.
	ReasonSignIn         Reason = "sign_in_failed"
	ReasonMigration      Reason = "migration_failed"
	ReasonBoot           Reason = "boot_failed"
	ReasonAttempts       Reason = "attempts_exhausted"
	ReasonRollbackFailed Reason = "rollback_failed"
	ReasonInternal       Reason = "internal"

	// ReasonRequirementUnmet: the release needs another component at a
	// version the terminal does not have yet (see verify.Requirement).
	ReasonRequirementUnmet Reason = "requirement_unmet"
)

// ReportRequest reports the end of an update attempt. ID is chosen by the
// terminal and makes the report idempotent: the server records a given ID
// once however often it arrives.
type ReportRequest struct {
	ID      string    `json:"id"`
	Release string    `json:"release"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Phase   string    `json:"phase"`
	Outcome Outcome   `json:"outcome"`
	Reason  Reason    `json:"reason"`
	Detail  string    `json:"detail,omitempty"`
	At      time.Time `json:"at"`
	// Manual, on a manual update from a local package, names the
	// technician credential that authorised it, for the audit log.
	Manual *Manual `json:"manual,omitempty"`
}

// Manual is how a manual update was authorised: never the secret itself.
type Manual struct {
	// Method is "password" (the maintenance password) or "token" (a
	// technician token the server signed).
	Method string `json:"method"`
	// Credential names the credential used, such as
	// "maintenance-password" or "token:tech-042/k1".
	Credential string `json:"credential"`
}

// ReportResponse acknowledges a report.
type ReportResponse struct {
	// Duplicate is true when the server had already recorded this ID.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ArtifactRequest asks for bytes of an artifact.
type ArtifactRequest struct {
	// Digest is the artifact's digest; URL, when set, is where to get it
	// (an Offer's ArtifactURL, resolved with [ResolveArtifactURL]),
	// otherwise the update server serves it.
	Digest string
	URL    string
	// Offset and Length select the bytes; Length -1 means to the end.
	// See [ArtifactRequest.Validate].
	Offset int64
	Length int64
	// IfRange, when set with a range, is the ETag of the artifact as the
	// caller fetched it before: a server whose file changed since answers
	// with the whole new file (see [ArtifactBody]) instead of the range.
	IfRange string
}

// Validate checks a request's fields.
func (r *RegisterRequest) Validate() error {
	if r.Enrollment == "" || len(r.Enrollment) > MaxToken {
		return badRequest("enrollment credential: want 1 to %d bytes", MaxToken)
	}
	if err := checkIDs(field{"serial", r.Serial, true}, field{"model", r.Model, true},
		field{"hardware_revision", r.HardwareRevision, false}); err != nil {
		return err
	}
	return checkComponents(r.Components)
}

// Validate checks a request's fields.
func (r *HeartbeatRequest) Validate() error {
	if r.Battery != nil && (r.Battery.Percent < 0 || r.Battery.Percent > 100) {
		return badRequest("battery percent %d outside 0..100", r.Battery.Percent)
	}
	for _, s := range []string{r.State, r.Release, r.Network} {
		if len(s) > 128 {
			return badRequest("status field of %d bytes, limit 128", len(s))
		}
	}
	if len(r.Waiting) > MaxDetail {
		return badRequest("waiting reason of %d bytes, limit %d", len(r.Waiting), MaxDetail)
	}
	return checkComponents(r.Components)
}

// Validate checks a request's fields.
func (r *CheckRequest) Validate() error {
	if err := checkIDs(field{"model", r.Model, true}, field{"hardware_revision", r.HardwareRevision, false},
		field{"channel", r.Channel, false}); err != nil {
		return err
	}
	return checkComponents(r.Components)
}

// Validate checks a request's fields.
func (r *ReportRequest) Validate() error {
	if r.ID == "" || len(r.ID) > 128 {
		return badRequest("report id: want 1 to 128 bytes")
	}
	if len(r.Release) > 200 || len(r.From) > 128 || len(r.To) > 128 || len(r.Phase) > 64 ||
		len(r.Outcome) > 64 || len(r.Reason) > 64 {
		return badRequest("report field too long")
	}
	if r.Outcome == "" {
		return badRequest("report needs an outcome")
	}
	if len(r.Detail) > MaxDetail {
		return badRequest("report detail of %d bytes, limit %d", len(r.Detail), MaxDetail)
	}
	if m := r.Manual; m != nil && (m.Method == "" || len(m.Method) > 32 || m.Credential == "" || len(m.Credential) > 200) {
		return badRequest("report manual: want a method of 1 to 32 bytes and a credential of 1 to 200")
	}
	return nil
}

type field struct {
	name, value string
	required    bool
}

func checkIDs(fs ...field) error {
	for _, f := range fs {
		if f.value == "" && !f.required {
			continue
		}
		if err := verify.CheckName(f.name, f.value); err != nil {
			return badRequest("%v", err)
		}
	}
	return nil
}

func checkComponents(cs []Component) error {
	if len(cs) > MaxComponents {
		return badRequest("%d components, limit %d", len(cs), MaxComponents)
	}
	for _, c := range cs {
		if err := verify.CheckName("component", c.Name); err != nil {
			return badRequest("%v", err)
		}
		if err := version.Check(c.Version); err != nil {
			return badRequest("component %s: %v", c.Name, err)
		}
		if c.Floor != "" {
			if err := version.Check(c.Floor); err != nil {
				return badRequest("component %s floor: %v", c.Name, err)
			}
		}
	}
	return nil
}

func badRequest(format string, args ...any) error {
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}
