package rollout

import (
	"maps"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

// Phase is where one device is in a rollout. The zero Phase is
// [PhasePending].
type Phase string

// Phases, in the order a device goes through them. Succeeded, failed,
// expired and current are finished: the rollout offers the device nothing
// more.
const (
	// PhasePending: not offered the release yet.
	PhasePending Phase = "pending"
	// PhaseOffered: offered, not yet downloading (waiting for its
	// maintenance window, an idle moment, the merchant's consent).
	PhaseOffered Phase = "offered"
	// PhaseDownloading: fetching the artifact.
	PhaseDownloading Phase = "downloading"
	// PhaseInstalling: backing up, installing, verifying, on probation.
	PhaseInstalling Phase = "installing"
	// PhaseSucceeded: the new version is installed and healthy.
	PhaseSucceeded Phase = "succeeded"
	// PhaseFailed: the attempt ended without the new version; Reason says
	// why. A rollout gives each device one attempt: a failed device is not
	// offered the release again through it, so that its failure rates
	// measure the release, not retries (the agent's own retries of a
	// rollback apply to offers outside rollouts). A later success, by
	// other means, overrides the failure (see [DeviceState.Observe]).
	PhaseFailed Phase = "failed"
	// PhaseExpired: the rollout expired before the device finished. Not a
	// failure.
	PhaseExpired Phase = "expired"
	// PhaseCurrent: the device already ran the release when the rollout
	// reached it (or got it another way before it was offered it). It
	// installed nothing, so it is neither a success nor a failure: it is
	// left out of the success threshold and of the failure rates.
	PhaseCurrent Phase = "current"
)

func (p Phase) norm() Phase {
	if p == "" {
		return PhasePending
	}
	return p
}

// rank orders phases for [DeviceState.Observe]: a device moves forward.
func (p Phase) rank() int {
	switch p.norm() {
	case PhasePending:
		return 0
	case PhaseOffered:
		return 1
	case PhaseDownloading:
		return 2
	case PhaseInstalling:
		return 3
	case PhaseExpired:
		return 4
	case PhaseFailed:
		return 5
	}
	return 6 // succeeded, current: final
}

// Finished reports whether p ends the device's part in the rollout.
func (p Phase) Finished() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseExpired || p == PhaseCurrent
}

// inFlight reports whether p holds an unfinished offer.
func (p Phase) inFlight() bool {
	return p == PhaseOffered || p == PhaseDownloading || p == PhaseInstalling
}

// DeviceState is one device's progress in one rollout: a plain value the
// server stores (a row per device and rollout) and updates as offers go
// out and the terminal reports. Start one with [Track].
type DeviceState struct {
	DeviceID string
	// Stage is the device's stage, from [Batch]; [NoBatch] for a device
	// the rollout does not reach.
	Stage int
	// Phase is where the device is; Reason, when it failed, why.
	Phase  Phase
	Reason transport.Reason
	// Offline is set by the server from liveness (heartbeats): a device
	// that has gone silent (see [DeviceState.Silent]). One that was not
	// offered the release yet is counted as offline: it waits like a
	// pending one and is never a failure. One that holds an unfinished
	// offer is counted as silent: it may be one the release bricked, so it
	// holds its stage back and keeps its MaxConcurrent place until it is
	// heard from again or is lost.
	Offline bool
	// OfferedAt is when the device was first offered the release: its
	// start, which the rate cap counts.
	OfferedAt time.Time
	// UpdatedAt is when Phase last changed.
	UpdatedAt time.Time
}

// ReasonLost is the reason of a device that held an unfinished offer and
// then stayed silent for the rollout's LostAfter: it is counted failed, as
// a release that bricks terminals makes them fall silent rather than
// report.
const ReasonLost transport.Reason = "lost"

// Track returns the state of a device entering rollout r: pending, in the
// stage [Batch] gives it.
func Track(r Rollout, deviceID string) DeviceState {
	return DeviceState{DeviceID: deviceID, Stage: Batch(r, deviceID), Phase: PhasePending}
}

// MarkOffered records that the device was offered the release at now. Only
// the first offer is a start; offering an offered device again changes
// nothing.
func (d DeviceState) MarkOffered(now time.Time) DeviceState {
	return d.Observe(PhaseOffered, "", now)
}

// Observe moves the device to phase p, learned at now, and returns the new
// state. A device moves forward only: a late heartbeat saying
// "downloading" does not undo "installing". Succeeded and current are
// final. Failed is final but for facts that come later: a success (the
// device runs the release after all: a technician installed it, or
// another rollout of it did) overrides it, and so does a failure with a
// reason over one that was only [ReasonLost]. An expired device may still
// report how its attempt ended, which is a fact too. reason is kept only
// with PhaseFailed.
func (d DeviceState) Observe(p Phase, reason transport.Reason, now time.Time) DeviceState {
	p = p.norm()
	cur := d.Phase.norm()
	explained := cur == PhaseFailed && p == PhaseFailed && d.Reason == ReasonLost && reason != "" && reason != ReasonLost
	if p.rank() <= cur.rank() && !explained {
		return d
	}
	if d.OfferedAt.IsZero() && p != PhaseExpired && p != PhaseCurrent {
		d.OfferedAt = now // a report without a recorded offer still started
	}
	d.Phase = p
	d.Reason = ""
	if p == PhaseFailed {
		d.Reason = reason
	}
	d.UpdatedAt = now
	return d
}

// Silent records that the device's terminal has not been heard from since
// since (its last heartbeat), as of now: an unfinished device is offline.
// One that holds an unfinished offer and has been silent for r's LostAfter,
// counted from since or from its last change, whichever is later, is
// failed with [ReasonLost]. A device heard from again is online: set
// Offline to false.
func (d DeviceState) Silent(r Rollout, since, now time.Time) DeviceState {
	if d.Phase.Finished() {
		return d
	}
	d.Offline = true
	if !d.Phase.norm().inFlight() {
		return d
	}
	if since.Before(d.UpdatedAt) {
		since = d.UpdatedAt
	}
	if now.Sub(since) >= r.lostAfter() {
		d = d.Observe(PhaseFailed, ReasonLost, now)
		d.Offline = false
	}
	return d
}

// Expire marks the device expired at now unless it has finished: what the
// server does to every unfinished device when [Decide] reports
// [EventExpired].
func (d DeviceState) Expire(now time.Time) DeviceState {
	if d.Phase.Finished() {
		return d
	}
	return d.Observe(PhaseExpired, "", now)
}

// PhaseOf maps how a terminal reports an attempt ended (a
// transport.ReportRequest's Outcome and Reason) to a finished phase. A
// refusal because the terminal already runs the release is a success.
func PhaseOf(o transport.Outcome, reason transport.Reason) Phase {
	switch {
	case o == transport.OutcomeCommitted:
		return PhaseSucceeded
	case o == transport.OutcomeRefused && reason == transport.ReasonUpToDate:
		return PhaseSucceeded
	}
	return PhaseFailed
}

// PhaseOfState maps the agent state a terminal's heartbeat carries
// (update.State, such as "downloading") to an unfinished phase, for
// progress between offer and report. It reports false for states that say
// nothing about progress (idle) or that end an attempt: the report, with
// its reason code, says how it ended.
func PhaseOfState(state string) (Phase, bool) {
	switch state {
	case "offered", "gated":
		return PhaseOffered, true
	case "downloading", "downloaded":
		return PhaseDownloading, true
	case "backing-up", "installing", "migrating", "verifying", "probation", "committing", "rolling-back":
		return PhaseInstalling, true
	}
	return "", false
}

// Failures counts failed devices, in all and by reason code.
type Failures struct {
	Total    int
	ByReason map[transport.Reason]int
}

func (f Failures) clone() Failures {
	f.ByReason = maps.Clone(f.ByReason)
	return f
}

// Counts are one stage's devices by phase. Each device is in exactly one
// field: an unfinished device that is offline is counted in Offline (not
// offered yet) or Silent (holding an offer), not in Pending or the
// in-flight phases. A store can compute them with one GROUP BY; [Tally]
// computes them from device states.
type Counts struct {
	Pending     int // online, not offered yet
	Offered     int // online, offered, not downloading yet
	Downloading int // online
	Installing  int // online
	Succeeded   int
	Failed      Failures
	// Offline devices were not offered the release and are not heard
	// from: waiting, never failed, left out of the success threshold.
	Offline int
	// Silent devices hold an unfinished offer and are not heard from:
	// they may be bricked, so they hold the success threshold back and
	// keep their MaxConcurrent places until they report or are lost.
	Silent  int
	Expired int
	// Current devices already ran the release: neither successes nor
	// failures, left out of the success threshold and the failure rates.
	Current int
}

// Total returns the number of devices in the stage.
func (c Counts) Total() int {
	return c.Pending + c.InFlight() + c.Succeeded + c.Failed.Total + c.Offline + c.Expired + c.Current
}

// InFlight returns the devices holding an unfinished offer, silent ones
// included: what MaxConcurrent caps.
func (c Counts) InFlight() int { return c.Offered + c.Downloading + c.Installing + c.Silent }

// Finished returns the devices whose attempt ended: succeeded or failed.
// Expired devices did not finish, and current ones made no attempt.
func (c Counts) Finished() int { return c.Succeeded + c.Failed.Total }

// Unfinished returns the devices the rollout still waits for.
func (c Counts) Unfinished() int { return c.Pending + c.InFlight() + c.Offline }

func (c *Counts) add(d DeviceState) {
	p := d.Phase.norm()
	switch {
	case p == PhaseSucceeded:
		c.Succeeded++
	case p == PhaseFailed:
		c.Failed.Total++
		if c.Failed.ByReason == nil {
			c.Failed.ByReason = make(map[transport.Reason]int)
		}
		c.Failed.ByReason[d.Reason]++
	case p == PhaseExpired:
		c.Expired++
	case p == PhaseCurrent:
		c.Current++
	case d.Offline && p.inFlight():
		c.Silent++
	case d.Offline:
		c.Offline++
	case p == PhaseOffered:
		c.Offered++
	case p == PhaseDownloading:
		c.Downloading++
	case p == PhaseInstalling:
		c.Installing++
	default:
		c.Pending++
	}
}

// Tally counts devices by stage: element i of the result holds stage i's
// [Counts], for every stage of r. Devices in no stage of r are left out.
func Tally(r Rollout, devices []DeviceState) []Counts {
	counts := make([]Counts, r.Stages())
	for _, d := range devices {
		if d.Stage >= 0 && d.Stage < len(counts) {
			counts[d.Stage].add(d)
		}
	}
	return counts
}

// Load is what the caps of [Offer] look at, across the whole rollout.
type Load struct {
	// StartedThisMinute counts devices first offered the release in the
	// current calendar minute: OfferedAt at or after now.Truncate(time.Minute).
	StartedThisMinute int
	// InFlight counts devices holding an unfinished offer (offered,
	// downloading or installing), silent ones included.
	InFlight int
}

// LoadOf computes the [Load] at now from device states. With several
// server replicas, compute it in the store, where the count is shared;
// the caps are then as exact as the store's counts are fresh.
func LoadOf(devices []DeviceState, now time.Time) Load {
	var l Load
	minute := now.Truncate(time.Minute)
	for _, d := range devices {
		if !d.OfferedAt.IsZero() && !d.OfferedAt.Before(minute) && !d.OfferedAt.After(now) {
			l.StartedThisMinute++
		}
		if d.Phase.inFlight() {
			l.InFlight++
		}
	}
	return l
}
