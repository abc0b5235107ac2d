package rollout

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

// State is a rollout's lifecycle state. The zero State is
// [StateScheduled].
type State string

// States. Aborted and completed are final.
const (
	// StateScheduled: not started; it starts at Rollout.Start.
	StateScheduled State = "scheduled"
	// StateRunning: offering the release to the open stages.
	StateRunning State = "running"
	// StatePaused: stopped by an operator; nothing new is offered.
	StatePaused State = "paused"
	// StateHalted: stopped by itself because failures passed a limit;
	// Status.Breach says which. An operator resumes or aborts it.
	StateHalted State = "halted"
	// StateAborted: stopped for good by an operator.
	StateAborted State = "aborted"
	// StateCompleted: every device finished, or the rollout expired.
	StateCompleted State = "completed"
)

func (s State) norm() State {
	if s == "" {
		return StateScheduled
	}
	return s
}

// Status is a rollout's progress: a plain value the server stores beside
// the [Rollout] and replaces with what [Decide], [Pause], [Resume] and
// [Abort] return. The zero Status is a scheduled rollout.
type Status struct {
	State State
	// Stage is the newest open stage: devices in stages 0 to Stage may be
	// offered the release while the rollout runs.
	Stage int
	// Since is when State last changed; Started is when the rollout first
	// ran (zero before); StageOpened is when Stage opened.
	Since       time.Time
	Started     time.Time
	StageOpened time.Time
	// Breach is the limit a halted rollout passed. It is kept after a
	// resume, as the last breach.
	Breach Breach
	// Accepted holds, per stage, the failures an operator accepted by
	// resuming a halted rollout: the failure limits and the success
	// threshold look only at what happened since.
	Accepted []Failures
	// Detail says in words why the rollout is in its state: an operator's
	// note on pause, resume or abort, the breach, the expiry.
	Detail string
}

// Breach is a failure limit a stage passed.
type Breach struct {
	Stage int
	// Reason is the failure kind whose limit was passed (see
	// Rollout.ReasonRates); empty for the overall FailureRate.
	Reason transport.Reason
	// Failed of Finished devices failed (of that kind), not counting
	// accepted failures; Limit is the rate, in percent, they passed.
	Failed, Finished int
	Limit            float64
}

// String says in words which limit was passed, and by how much.
func (b Breach) String() string {
	kind := "failures"
	if b.Reason != "" {
		kind = string(b.Reason) + " failures"
	}
	return fmt.Sprintf("stage %d: %d of %d finished devices are %s (%.1f%%), limit %g%%",
		b.Stage, b.Failed, b.Finished, kind, 100*float64(b.Failed)/float64(b.Finished), b.Limit)
}

// EventKind says what an [Event] records.
type EventKind string

// Event kinds.
const (
	EventStarted     EventKind = "started"      // the rollout began running
	EventStageOpened EventKind = "stage_opened" // a stage's devices may now be offered
	EventHalted      EventKind = "halted"       // a failure limit was passed
	EventPaused      EventKind = "paused"       // an operator paused it
	EventResumed     EventKind = "resumed"      // an operator resumed it
	EventAborted     EventKind = "aborted"      // an operator aborted it
	EventCompleted   EventKind = "completed"    // every device finished
	EventExpired     EventKind = "expired"      // it expired: unfinished devices are expired
)

// Event is one change to a rollout and why, for the audit log.
type Event struct {
	At       time.Time
	Kind     EventKind
	From, To State
	Stage    int
	// Reason is the failure kind of a halt on a per-reason limit.
	Reason transport.Reason
	Detail string
}

// Action is an operator's command.
type Action string

// Operator actions.
const (
	ActionPause  Action = "pause"
	ActionResume Action = "resume"
	ActionAbort  Action = "abort"
)

// Decide returns the status r should have at now, given the per-stage
// counts (from [Tally] or the store; a missing stage counts as empty), and
// the events that take it there, in order. It is what the server runs
// after reports arrive and on a timer. In turn it:
//
//   - leaves aborted and completed rollouts alone;
//   - completes a scheduled, running or paused rollout that has expired
//     ([EventExpired]: the server then expires every unfinished device);
//   - leaves paused and halted ones alone;
//   - starts a scheduled rollout once Start has come, opening stage 0;
//   - halts a running rollout when, in any open stage, the share of
//     finished devices that failed passes FailureRate, or a ReasonRates
//     limit, once MinFinished devices of the stage (or all the reachable
//     devices of a smaller stage: not offline, expired or current) have
//     finished; accepted failures do not count;
//   - opens the next stage when the newest open stage has met the success
//     threshold and has been open for Soak: succeeded devices are at least
//     SuccessThreshold percent of the stage's devices, leaving out the
//     offline (never offered), expired and current ones and accepted
//     failures;
//     silent devices, which hold an offer, are not left out, so they hold
//     the stage back. An empty stage, or one whose devices all run the
//     release already, is met at once; a stage with devices but none
//     reachable (all offline) waits for them;
//   - completes it once the last stage is open and no device in any stage
//     is unfinished.
//
// Decide is idempotent: called again with the same counts and time it
// returns the same status and no events.
func Decide(r Rollout, st Status, counts []Counts, now time.Time) (Status, []Event) {
	st.State = st.State.norm()
	var events []Event
	move := func(to State, kind EventKind, detail string) {
		events = append(events, Event{At: now, Kind: kind, From: st.State, To: to, Stage: st.Stage, Detail: detail})
		if to != st.State {
			st.Since = now
		}
		st.State = to
		st.Detail = detail
	}
	stage := func(i int) Counts {
		if i < len(counts) {
			return counts[i]
		}
		return Counts{}
	}

	switch st.State {
	case StateAborted, StateCompleted:
		return st, nil
	}
	if !r.Expires.IsZero() && !now.Before(r.Expires) && st.State != StateHalted {
		unfinished := 0
		for i := range r.Stages() {
			unfinished += stage(i).Unfinished()
		}
		move(StateCompleted, EventExpired, fmt.Sprintf("expired at %s with %d devices unfinished",
			r.Expires.UTC().Format(time.RFC3339), unfinished))
		return st, events
	}
	switch st.State {
	case StatePaused, StateHalted:
		return st, nil
	case StateScheduled:
		if now.Before(r.Start) {
			return st, nil
		}
		st.Stage, st.Started, st.StageOpened = 0, now, now
		move(StateRunning, EventStarted, "started")
		events = append(events, Event{At: now, Kind: EventStageOpened, From: StateRunning, To: StateRunning,
			Stage: 0, Detail: "stage 0 (pilot) opened"})
	}

	last := r.Stages() - 1
	for {
		if b, ok := breach(r, st, stage); ok {
			move(StateHalted, EventHalted, "halted: "+b.String())
			events[len(events)-1].Reason = b.Reason
			events[len(events)-1].Stage = b.Stage
			st.Breach = b
			return st, events
		}
		if st.Stage >= last {
			break
		}
		if now.Sub(st.StageOpened) < r.Soak || !met(r, stage(st.Stage), st.accepted(st.Stage)) {
			return st, events
		}
		st.Stage++
		st.StageOpened = now
		events = append(events, Event{At: now, Kind: EventStageOpened, From: StateRunning, To: StateRunning,
			Stage: st.Stage, Detail: fmt.Sprintf("stage %d opened: stage %d met its success threshold", st.Stage, st.Stage-1)})
	}
	for i := range r.Stages() {
		if stage(i).Unfinished() > 0 {
			return st, events
		}
	}
	move(StateCompleted, EventCompleted, "completed: every device finished")
	return st, events
}

func (st Status) accepted(stage int) Failures {
	if stage < len(st.Accepted) {
		return st.Accepted[stage]
	}
	return Failures{}
}

// breach finds the first failure limit an open stage passes: stages in
// order, and in each the per-reason limits, by reason, before the overall
// one.
func breach(r Rollout, st Status, stage func(int) Counts) (Breach, bool) {
	reasons := slices.Sorted(maps.Keys(r.ReasonRates))
	for i := 0; i <= st.Stage; i++ {
		c, acc := stage(i), st.accepted(i)
		// A stage smaller than MinFinished is judged once its reachable
		// devices have finished: one that went offline before its offer
		// must not keep the others' failures from ever halting it.
		finished := c.Finished() - acc.Total
		reachable := c.Total() - c.Offline - c.Expired - c.Current - acc.Total
		if finished <= 0 || finished < min(r.minFinished(), reachable) {
			continue
		}
		passes := func(failed int, limit float64) bool { return float64(failed)*100 > limit*float64(finished) }
		for _, reason := range reasons {
			// A failure later overridden by a success can leave fewer
			// failures than were accepted.
			failed := max(0, c.Failed.ByReason[reason]-acc.ByReason[reason])
			if limit := r.ReasonRates[reason]; passes(failed, limit) {
				return Breach{Stage: i, Reason: reason, Failed: failed, Finished: finished, Limit: limit}, true
			}
		}
		if failed := max(0, c.Failed.Total-acc.Total); passes(failed, r.failureRate()) {
			return Breach{Stage: i, Failed: failed, Finished: finished, Limit: r.failureRate()}, true
		}
	}
	return Breach{}, false
}

// met reports whether a stage has met r's success threshold. Devices
// already current are not part of it.
func met(r Rollout, c Counts, acc Failures) bool {
	if c.Total()-c.Current == 0 {
		return true
	}
	reachable := c.Total() - c.Offline - c.Expired - c.Current - acc.Total
	if reachable <= 0 {
		return c.Offline == 0
	}
	return float64(c.Succeeded)*100 >= r.successThreshold()*float64(reachable)
}

// Pause stops a scheduled or running rollout from offering the release,
// even again to a device that lost its offer; devices already working on
// it carry on (the protocol cannot recall an offer). note says why, for
// the audit log.
func Pause(st Status, now time.Time, note string) (Status, Event, error) {
	st.State = st.State.norm()
	if st.State != StateScheduled && st.State != StateRunning {
		return st, Event{}, &TransitionError{Action: ActionPause, From: st.State}
	}
	return st.to(StatePaused, now, note), st.event(StatePaused, EventPaused, now, note), nil
}

// Resume restarts a paused or halted rollout. A paused rollout goes back
// to running, or to scheduled if it had not started. A halted rollout runs
// again at the same stage, and the failures so far, read from counts, are
// accepted: the limits and the success threshold count only what happens
// next, so the rollout does not halt again at once on the same failures.
// (To give failed devices another attempt, set their states back to
// pending as well.)
func Resume(st Status, counts []Counts, now time.Time, note string) (Status, Event, error) {
	st.State = st.State.norm()
	var to State
	switch {
	case st.State == StatePaused && st.Started.IsZero():
		to = StateScheduled
	case st.State == StatePaused:
		to = StateRunning
	case st.State == StateHalted:
		to = StateRunning
		st.Accepted = make([]Failures, len(counts))
		for i, c := range counts {
			st.Accepted[i] = c.Failed.clone()
		}
	default:
		return st, Event{}, &TransitionError{Action: ActionResume, From: st.State}
	}
	return st.to(to, now, note), st.event(to, EventResumed, now, note), nil
}

// Abort stops a rollout for good. Devices already offered carry on;
// nothing more is offered.
func Abort(st Status, now time.Time, note string) (Status, Event, error) {
	st.State = st.State.norm()
	if st.State == StateAborted || st.State == StateCompleted {
		return st, Event{}, &TransitionError{Action: ActionAbort, From: st.State}
	}
	return st.to(StateAborted, now, note), st.event(StateAborted, EventAborted, now, note), nil
}

func (st Status) to(s State, now time.Time, note string) Status {
	st.State, st.Since, st.Detail = s, now, note
	return st
}

func (st Status) event(to State, kind EventKind, now time.Time, note string) Event {
	return Event{At: now, Kind: kind, From: st.State, To: to, Stage: st.Stage, Detail: note}
}
