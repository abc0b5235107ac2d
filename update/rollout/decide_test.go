package rollout_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

// fails counts n failures, of the kinds given as reason, count pairs.
func fails(n int, byReason ...any) rollout.Failures {
	f := rollout.Failures{Total: n, ByReason: map[transport.Reason]int{}}
	for i := 0; i+1 < len(byReason); i += 2 {
		f.ByReason[byReason[i].(transport.Reason)] = byReason[i+1].(int)
	}
	return f
}

func running(stage int) rollout.Status {
	return rollout.Status{State: rollout.StateRunning, Stage: stage, Since: t0, Started: t0, StageOpened: t0}
}

func in(s rollout.State, stage int) rollout.Status {
	st := running(stage)
	st.State = s
	return st
}

func stages(cs ...rollout.Counts) []rollout.Counts { return cs }

func kinds(events []rollout.Event) []rollout.EventKind {
	var out []rollout.EventKind
	for _, e := range events {
		out = append(out, e.Kind)
	}
	return out
}

const (
	started = rollout.EventStarted
	opened  = rollout.EventStageOpened
	halted  = rollout.EventHalted
)

func TestDecide(t *testing.T) {
	pilotDone := rollout.Counts{Succeeded: 3}
	boot, health := transport.ReasonBoot, transport.ReasonHealth
	tests := []struct {
		name   string
		mod    func(*rollout.Rollout)
		st     rollout.Status
		counts []rollout.Counts
		now    time.Time
		state  rollout.State
		stage  int
		events []rollout.EventKind
		breach rollout.Breach
	}{
		// Starting.
		{name: "scheduled, before its start", counts: stages(rollout.Counts{Pending: 3}), now: t0.Add(-time.Minute),
			state: rollout.StateScheduled},
		{name: "starts at its start", counts: stages(rollout.Counts{Pending: 3}, rollout.Counts{Pending: 100}), now: t0,
			state: rollout.StateRunning, events: []rollout.EventKind{started, opened}},
		{name: "zero start: starts at once", mod: func(r *rollout.Rollout) { r.Start = time.Time{} },
			counts: stages(rollout.Counts{Pending: 3}), now: t0.Add(-time.Hour),
			state: rollout.StateRunning, events: []rollout.EventKind{started, opened}},
		{name: "no pilot: batch 1 opens at once", counts: stages(rollout.Counts{}, rollout.Counts{Pending: 100}), now: t0,
			state: rollout.StateRunning, stage: 1, events: []rollout.EventKind{started, opened, opened}},

		// Advancing.
		{name: "pilot succeeded: batch 1 opens", st: running(0),
			counts: stages(pilotDone, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1, events: []rollout.EventKind{opened}},
		{name: "pilot still going", st: running(0),
			counts: stages(rollout.Counts{Succeeded: 2, Downloading: 1}, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateRunning},
		{name: "90% of batch 1 succeeded: batch 2 opens", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 90, Pending: 10}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "89% is not enough", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 89, Pending: 11}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "custom threshold", mod: func(r *rollout.Rollout) { r.SuccessThreshold = 50 }, st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 50, Pending: 50}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "offline devices count neither for nor against", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 80, Offline: 15, Pending: 5}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "a stage all offline waits", st: running(0),
			counts: stages(rollout.Counts{Offline: 3}, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateRunning},
		{name: "empty stages are passed through", st: running(0),
			counts: stages(pilotDone, rollout.Counts{}, rollout.Counts{}, rollout.Counts{Pending: 10}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 3, events: []rollout.EventKind{opened, opened, opened}},
		{name: "soak holds the next stage", mod: func(r *rollout.Rollout) { r.Soak = time.Hour }, st: running(0),
			counts: stages(pilotDone, rollout.Counts{Pending: 100}), now: t0.Add(59 * time.Minute),
			state: rollout.StateRunning},
		{name: "soak over", mod: func(r *rollout.Rollout) { r.Soak = time.Hour }, st: running(0),
			counts: stages(pilotDone, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1, events: []rollout.EventKind{opened}},

		// Halting.
		{name: "20% of batch 1 failed: halts before batch 2", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 40, Failed: fails(10), Pending: 950}, rollout.Counts{Pending: 9000}),
			now:    t0.Add(time.Hour), state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 10, Finished: 50, Limit: 10}},
		{name: "a halt wins over the success threshold", mod: func(r *rollout.Rollout) { r.SuccessThreshold = 50 }, st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 80, Failed: fails(20)}, rollout.Counts{Pending: 9000}),
			now:    t0.Add(time.Hour), state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 20, Finished: 100, Limit: 10}},
		{name: "too few finished to halt", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 5, Failed: fails(4), Pending: 991}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "enough finished to halt", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 6, Failed: fails(4), Pending: 990}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 4, Finished: 10, Limit: 10}},
		{name: "custom minimum", mod: func(r *rollout.Rollout) { r.MinFinished = 100 }, st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 60, Failed: fails(39), Pending: 901}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "at the limit is not past it", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 90, Failed: fails(10)}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "a small pilot is judged once all finished", st: running(0),
			counts: stages(rollout.Counts{Succeeded: 2, Failed: fails(1, health, 1)}, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 0, Failed: 1, Finished: 3, Limit: 10}},
		{name: "a small pilot still going", st: running(0),
			counts: stages(rollout.Counts{Succeeded: 1, Failed: fails(1, health, 1), Downloading: 1}), now: t0.Add(time.Hour),
			state: rollout.StateRunning},
		// One device that went offline before its offer does not keep a
		// small stage from being judged (review L2).
		{name: "a small pilot with an offline device is judged", st: running(0),
			counts: stages(rollout.Counts{Failed: fails(4), Offline: 1}, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 0, Failed: 4, Finished: 4, Limit: 10}},
		{name: "a small pilot waits for a silent device", st: running(0),
			counts: stages(rollout.Counts{Failed: fails(4), Silent: 1}, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour),
			state: rollout.StateRunning},
		{name: "offline devices are not failures", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 20, Offline: 80}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		// Devices that went silent holding an offer may be bricked: they
		// are not left out of the success threshold (review H1).
		{name: "silent devices hold the stage back", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 80, Silent: 20}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "one success among silent devices opens nothing", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 1, Silent: 99}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "silent devices within the threshold", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 95, Silent: 5}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "lost devices are failures", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 24, Failed: fails(6, rollout.ReasonLost, 6)}, rollout.Counts{Pending: 900}),
			now:    t0.Add(time.Hour), state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 6, Finished: 30, Limit: 10}},
		// Devices that already ran the release installed nothing: they
		// neither meet the threshold nor dilute the failures (review H2).
		{name: "current devices do not meet the threshold", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Current: 95, Pending: 5}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "current devices and successes", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Current: 95, Succeeded: 5}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "a stage all current is passed through", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Current: 100}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "current devices do not dilute failures", st: running(1),
			counts: stages(pilotDone, rollout.Counts{Current: 190, Failed: fails(5)}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 5, Finished: 5, Limit: 10}},
		{name: "per-reason limit", mod: func(r *rollout.Rollout) { r.ReasonRates = map[transport.Reason]float64{boot: 1} },
			st: running(1), counts: stages(pilotDone, rollout.Counts{Succeeded: 197, Failed: fails(3, boot, 3)}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Reason: boot, Failed: 3, Finished: 200, Limit: 1}},
		{name: "per-reason limit not passed", mod: func(r *rollout.Rollout) { r.ReasonRates = map[transport.Reason]float64{boot: 1} },
			st: running(1), counts: stages(pilotDone, rollout.Counts{Succeeded: 198, Failed: fails(2, boot, 2)}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "other kinds do not count toward a reason's limit", mod: func(r *rollout.Rollout) { r.ReasonRates = map[transport.Reason]float64{boot: 1} },
			st: running(1), counts: stages(pilotDone, rollout.Counts{Succeeded: 195, Failed: fails(5, health, 5)}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},
		{name: "a reason limit of 0 halts on the first such failure", mod: func(r *rollout.Rollout) {
			r.ReasonRates = map[transport.Reason]float64{transport.ReasonRollbackFailed: 0}
		}, st: running(1), counts: stages(pilotDone, rollout.Counts{Succeeded: 99, Failed: fails(1, transport.ReasonRollbackFailed, 1)}),
			now: t0.Add(time.Hour), state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Reason: transport.ReasonRollbackFailed, Failed: 1, Finished: 100, Limit: 0}},
		{name: "failure rate 100 never halts", mod: func(r *rollout.Rollout) { r.FailureRate = 100 }, st: running(1),
			counts: stages(pilotDone, rollout.Counts{Failed: fails(100)}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "late failures in an earlier stage halt", st: running(2),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 80, Failed: fails(20)}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, stage: 2, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 20, Finished: 100, Limit: 10}},

		// Accepted failures, after an operator resumed a halt.
		{name: "accepted failures do not halt again", st: func() rollout.Status {
			st := running(1)
			st.Accepted = []rollout.Failures{{}, fails(10)}
			return st
		}(), counts: stages(pilotDone, rollout.Counts{Succeeded: 40, Failed: fails(10), Pending: 950}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 1},
		{name: "new failures after acceptance halt", st: func() rollout.Status {
			st := running(1)
			st.Accepted = []rollout.Failures{{}, fails(10)}
			return st
		}(), counts: stages(pilotDone, rollout.Counts{Succeeded: 40, Failed: fails(21), Pending: 939}), now: t0.Add(time.Hour),
			state: rollout.StateHalted, stage: 1, events: []rollout.EventKind{halted},
			breach: rollout.Breach{Stage: 1, Failed: 11, Finished: 51, Limit: 10}},
		{name: "accepted failures leave the success threshold", st: func() rollout.Status {
			st := running(1)
			st.Accepted = []rollout.Failures{{}, fails(20, boot, 20)}
			return st
		}(), mod: func(r *rollout.Rollout) { r.ReasonRates = map[transport.Reason]float64{boot: 1} },
			counts: stages(pilotDone, rollout.Counts{Succeeded: 80, Failed: fails(20, boot, 20)}, rollout.Counts{Pending: 900}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 2, events: []rollout.EventKind{opened}},

		// Ending.
		{name: "last stage open, devices unfinished", st: running(4),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 10}, rollout.Counts{Succeeded: 90}, rollout.Counts{Succeeded: 400},
				rollout.Counts{Succeeded: 490, Offline: 10}), now: t0.Add(time.Hour),
			state: rollout.StateRunning, stage: 4},
		{name: "completes when every device finished", st: running(4),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 10}, rollout.Counts{Succeeded: 90}, rollout.Counts{Succeeded: 400},
				rollout.Counts{Succeeded: 495, Failed: fails(5)}), now: t0.Add(time.Hour),
			state: rollout.StateCompleted, stage: 4, events: []rollout.EventKind{rollout.EventCompleted}},
		{name: "a partial plan completes", mod: func(r *rollout.Rollout) { r.Batches = []float64{5} }, st: running(1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 50}), now: t0.Add(time.Hour),
			state: rollout.StateCompleted, stage: 1, events: []rollout.EventKind{rollout.EventCompleted}},
		{name: "expires while running", mod: func(r *rollout.Rollout) { r.Expires = t0.Add(24 * time.Hour) }, st: running(2),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 100}, rollout.Counts{Pending: 900}), now: t0.Add(24 * time.Hour),
			state: rollout.StateCompleted, stage: 2, events: []rollout.EventKind{rollout.EventExpired}},
		{name: "expires while paused", mod: func(r *rollout.Rollout) { r.Expires = t0.Add(24 * time.Hour) },
			st: in(rollout.StatePaused, 2), now: t0.Add(25 * time.Hour),
			state: rollout.StateCompleted, stage: 2, events: []rollout.EventKind{rollout.EventExpired}},
		{name: "expires before it started", mod: func(r *rollout.Rollout) { r.Start, r.Expires = t0, t0.Add(time.Hour) },
			now: t0.Add(2 * time.Hour), state: rollout.StateCompleted, events: []rollout.EventKind{rollout.EventExpired}},
		{name: "not expired a moment before", mod: func(r *rollout.Rollout) { r.Expires = t0.Add(24 * time.Hour) }, st: running(2),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 100}, rollout.Counts{Pending: 900}), now: t0.Add(24*time.Hour - time.Nanosecond),
			state: rollout.StateRunning, stage: 2},
		{name: "a halted rollout waits for its operator, expired or not", mod: func(r *rollout.Rollout) { r.Expires = t0.Add(time.Hour) },
			st: in(rollout.StateHalted, 1), now: t0.Add(2 * time.Hour), state: rollout.StateHalted, stage: 1},

		// Stopped states.
		{name: "paused stays paused", st: in(rollout.StatePaused, 0),
			counts: stages(pilotDone, rollout.Counts{Pending: 100}), now: t0.Add(time.Hour), state: rollout.StatePaused},
		{name: "halted stays halted", st: in(rollout.StateHalted, 1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 100}), now: t0.Add(time.Hour), state: rollout.StateHalted, stage: 1},
		{name: "aborted is final", st: in(rollout.StateAborted, 1),
			counts: stages(pilotDone, rollout.Counts{Succeeded: 100}), now: t0.Add(time.Hour), state: rollout.StateAborted, stage: 1},
		{name: "completed is final", mod: func(r *rollout.Rollout) { r.Expires = t0.Add(time.Hour) }, st: in(rollout.StateCompleted, 4),
			now: t0.Add(2 * time.Hour), state: rollout.StateCompleted, stage: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			if tt.mod != nil {
				tt.mod(&r)
			}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			st, events := rollout.Decide(r, tt.st, tt.counts, tt.now)
			if st.State != tt.state || st.Stage != tt.stage {
				t.Errorf("Decide = %s at stage %d, want %s at stage %d (%s)", st.State, st.Stage, tt.state, tt.stage, st.Detail)
			}
			if got := kinds(events); !slices.Equal(got, tt.events) {
				t.Errorf("events %v, want %v", got, tt.events)
			}
			if tt.breach != (rollout.Breach{}) && st.Breach != tt.breach {
				t.Errorf("breach %+v, want %+v", st.Breach, tt.breach)
			}
			for _, e := range events {
				if !e.At.Equal(tt.now) {
					t.Errorf("%s event at %v, want %v", e.Kind, e.At, tt.now)
				}
			}
			if len(events) > 0 && events[len(events)-1].To != st.State {
				t.Errorf("last event goes to %s, status is %s", events[len(events)-1].To, st.State)
			}
			// Decide is idempotent.
			again, more := rollout.Decide(r, st, tt.counts, tt.now)
			if !reflect.DeepEqual(again, st) || len(more) > 0 {
				t.Errorf("second Decide changed %+v to %+v with events %v", st, again, kinds(more))
			}
		})
	}
}

func TestDecideEvents(t *testing.T) {
	r := base(func(r *rollout.Rollout) { r.ReasonRates = map[transport.Reason]float64{transport.ReasonBoot: 1} })
	now := t0.Add(time.Hour)
	st, events := rollout.Decide(r, running(2), stages(rollout.Counts{Succeeded: 3},
		rollout.Counts{Succeeded: 195, Failed: fails(5, transport.ReasonBoot, 5)}), now)
	want := rollout.Event{At: now, Kind: rollout.EventHalted, From: rollout.StateRunning, To: rollout.StateHalted,
		Stage: 1, Reason: transport.ReasonBoot,
		Detail: "halted: stage 1: 5 of 200 finished devices are boot_failed failures (2.5%), limit 1%"}
	if len(events) != 1 || events[0] != want {
		t.Fatalf("events %+v\nwant [%+v]", events, want)
	}
	if st.Detail != want.Detail || !st.Since.Equal(now) || st.Stage != 2 {
		t.Errorf("status %+v", st)
	}

	st, events = rollout.Decide(r, rollout.Status{}, stages(rollout.Counts{Pending: 1}), t0)
	if len(events) != 2 || events[0].From != rollout.StateScheduled || events[0].To != rollout.StateRunning ||
		events[1].Kind != rollout.EventStageOpened || events[1].Stage != 0 {
		t.Errorf("start events %+v", events)
	}
	if !st.Started.Equal(t0) || !st.StageOpened.Equal(t0) || !st.Since.Equal(t0) {
		t.Errorf("started status %+v", st)
	}

	exp := base(func(r *rollout.Rollout) { r.Expires = t0.Add(time.Hour) })
	_, events = rollout.Decide(exp, running(1), stages(rollout.Counts{Succeeded: 3}, rollout.Counts{Pending: 7, Offline: 2, Downloading: 1}), t0.Add(time.Hour))
	if len(events) != 1 || !strings.Contains(events[0].Detail, "with 10 devices unfinished") {
		t.Errorf("expiry events %+v", events)
	}
}

func TestTransitions(t *testing.T) {
	const fail = rollout.State("error")
	all := []rollout.State{rollout.StateScheduled, rollout.StateRunning, rollout.StatePaused, rollout.StateHalted,
		rollout.StateAborted, rollout.StateCompleted}
	want := map[rollout.Action][]rollout.State{ // result per state in all's order
		rollout.ActionPause:  {rollout.StatePaused, rollout.StatePaused, fail, fail, fail, fail},
		rollout.ActionResume: {fail, fail, rollout.StateRunning, rollout.StateRunning, fail, fail},
		rollout.ActionAbort:  {rollout.StateAborted, rollout.StateAborted, rollout.StateAborted, rollout.StateAborted, fail, fail},
	}
	now := t0.Add(time.Hour)
	do := func(a rollout.Action, st rollout.Status) (rollout.Status, rollout.Event, error) {
		switch a {
		case rollout.ActionPause:
			return rollout.Pause(st, now, "by ops")
		case rollout.ActionResume:
			return rollout.Resume(st, nil, now, "by ops")
		}
		return rollout.Abort(st, now, "by ops")
	}
	for action, results := range want {
		for i, from := range all {
			t.Run(string(action)+" "+string(from), func(t *testing.T) {
				st := in(from, 2)
				got, ev, err := do(action, st)
				if results[i] == fail {
					var te *rollout.TransitionError
					if !errors.Is(err, rollout.ErrTransition) || !errors.As(err, &te) || te.From != from || te.Action != action {
						t.Fatalf("err = %v, want a TransitionError from %s", err, from)
					}
					if want := "rollout: cannot " + string(action) + " a rollout that is " + string(from); err.Error() != want {
						t.Errorf("message %q, want %q", err, want)
					}
					if !reflect.DeepEqual(got, st) {
						t.Errorf("status changed on error: %+v", got)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.State != results[i] || got.Stage != 2 || !got.Since.Equal(now) || got.Detail != "by ops" {
					t.Errorf("status %+v, want %s at stage 2 since %v", got, results[i], now)
				}
				if ev.From != from || ev.To != results[i] || !ev.At.Equal(now) || ev.Stage != 2 || ev.Detail != "by ops" {
					t.Errorf("event %+v", ev)
				}
			})
		}
	}
}

func TestPauseBeforeStart(t *testing.T) {
	r := base()
	st, _, err := rollout.Pause(rollout.Status{}, t0.Add(-time.Hour), "hold")
	if err != nil || st.State != rollout.StatePaused {
		t.Fatalf("Pause = %+v, %v", st, err)
	}
	// A paused rollout does not start at its start time.
	if st2, events := rollout.Decide(r, st, stages(rollout.Counts{Pending: 3}), t0); st2.State != rollout.StatePaused || len(events) > 0 {
		t.Fatalf("Decide started a paused rollout: %+v %v", st2, events)
	}
	st, ev, err := rollout.Resume(st, nil, t0.Add(time.Hour), "go")
	if err != nil || st.State != rollout.StateScheduled || ev.To != rollout.StateScheduled {
		t.Fatalf("Resume before any start = %+v, %+v, %v; want scheduled", st, ev, err)
	}
	if st, _ = rollout.Decide(r, st, stages(rollout.Counts{Pending: 3}), t0.Add(time.Hour)); st.State != rollout.StateRunning {
		t.Errorf("after resume, Decide = %s, want running", st.State)
	}
}

func TestHaltResumeFlow(t *testing.T) {
	r := base()
	counts := stages(rollout.Counts{Succeeded: 3}, rollout.Counts{Succeeded: 40, Failed: fails(10, transport.ReasonDownload, 10), Pending: 950})
	st, _ := rollout.Decide(r, running(1), counts, t0.Add(time.Hour))
	if st.State != rollout.StateHalted {
		t.Fatalf("Decide = %s, want halted", st.State)
	}
	// The operator fixes the mirror and resumes: the ten failures are accepted.
	st, ev, err := rollout.Resume(st, counts, t0.Add(2*time.Hour), "mirror fixed")
	if err != nil || st.State != rollout.StateRunning || ev.Kind != rollout.EventResumed {
		t.Fatalf("Resume = %+v, %+v, %v", st, ev, err)
	}
	if len(st.Accepted) != 2 || st.Accepted[1].Total != 10 || st.Accepted[1].ByReason[transport.ReasonDownload] != 10 {
		t.Fatalf("accepted %+v", st.Accepted)
	}
	counts[1].Failed.ByReason[transport.ReasonDownload] = 99 // the status holds its own copy
	if st.Accepted[1].ByReason[transport.ReasonDownload] != 10 {
		t.Fatal("Resume kept the caller's map")
	}
	counts[1] = rollout.Counts{Succeeded: 300, Failed: fails(12, transport.ReasonDownload, 12), Pending: 688}
	st, events := rollout.Decide(r, st, counts, t0.Add(3*time.Hour))
	if st.State != rollout.StateRunning || len(events) > 0 {
		t.Fatalf("two new failures in 302 halted it again: %+v %v", st, kinds(events))
	}
	counts[1] = rollout.Counts{Succeeded: 301, Failed: fails(50, transport.ReasonDownload, 50), Pending: 649}
	if st, _ = rollout.Decide(r, st, counts, t0.Add(4*time.Hour)); st.State != rollout.StateHalted ||
		st.Breach != (rollout.Breach{Stage: 1, Failed: 40, Finished: 341, Limit: 10}) {
		t.Fatalf("40 new failures in 341: %+v", st)
	}
}
