package rollout_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

// FuzzDecide checks Decide's invariants on arbitrary counts: stages only
// open forward, one at a time and in order; a halt names a limit really
// passed; stopped rollouts stay put; a second call changes nothing.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(1), uint8(1), uint16(60), []byte{0, 3, 0, 0, 0, 5, 40, 10, 0, 0})
	f.Add(uint8(0), uint8(0), uint16(0), []byte{})
	f.Add(uint8(4), uint8(1), uint16(600), []byte{0, 3, 0, 0, 0, 0, 100, 0, 3, 0, 9, 9, 9, 9, 9})
	f.Add(uint8(2), uint8(3), uint16(10), []byte{255, 255, 255, 255, 255})
	states := []rollout.State{"", rollout.StateScheduled, rollout.StateRunning, rollout.StatePaused,
		rollout.StateHalted, rollout.StateAborted, rollout.StateCompleted}
	r := base(func(r *rollout.Rollout) {
		r.ReasonRates = map[transport.Reason]float64{transport.ReasonBoot: 2}
		r.Soak = 30 * time.Minute
	})
	f.Fuzz(func(t *testing.T, stage, state uint8, minutes uint16, data []byte) {
		counts := make([]rollout.Counts, r.Stages())
		for i := range counts {
			b := func(j int) int {
				if k := 5*i + j; k < len(data) {
					return int(data[k])
				}
				return 0
			}
			other, boot := b(2), b(3)
			counts[i] = rollout.Counts{Pending: b(0), Succeeded: b(1), Offline: b(4), Failed: rollout.Failures{
				Total: other + boot, ByReason: map[transport.Reason]int{transport.ReasonHealth: other, transport.ReasonBoot: boot}}}
		}
		st := rollout.Status{State: states[int(state)%len(states)], Stage: int(stage) % r.Stages(), Started: t0, StageOpened: t0}
		if st.State == "" || st.State == rollout.StateScheduled {
			st.Stage = 0 // a rollout that has not started has no open stage
		}
		now := t0.Add(time.Duration(minutes) * time.Minute)

		got, events := rollout.Decide(r, st, counts, now)

		if got.Stage < st.Stage || got.Stage >= r.Stages() {
			t.Fatalf("stage %d → %d", st.Stage, got.Stage)
		}
		switch st.State {
		case rollout.StatePaused, rollout.StateHalted, rollout.StateAborted, rollout.StateCompleted:
			if !reflect.DeepEqual(got, st) || len(events) > 0 {
				t.Fatalf("a %s rollout changed: %+v, %v", st.State, got, kinds(events))
			}
		}
		next := st.Stage + 1
		for _, e := range events {
			if !e.At.Equal(now) {
				t.Fatalf("event at %v, now is %v", e.At, now)
			}
			if e.Kind == rollout.EventStageOpened && e.Stage != 0 {
				if e.Stage != next {
					t.Fatalf("stage %d opened, want %d next", e.Stage, next)
				}
				next++
			}
		}
		if len(events) > 0 && events[len(events)-1].To != got.State {
			t.Fatalf("last event to %s, status %s", events[len(events)-1].To, got.State)
		}
		if got.State == rollout.StateHalted && st.State != rollout.StateHalted {
			b := got.Breach
			if b.Finished <= 0 || float64(b.Failed)*100 <= b.Limit*float64(b.Finished) || b.Stage > got.Stage {
				t.Fatalf("halted on %+v, which passes no limit", b)
			}
		}
		again, more := rollout.Decide(r, got, counts, now)
		if !reflect.DeepEqual(again, got) || len(more) > 0 {
			t.Fatalf("second Decide: %+v → %+v, %v", got, again, kinds(more))
		}
	})
}
