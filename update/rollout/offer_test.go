package rollout_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

func TestOffer(t *testing.T) {
	now := t0.Add(3*time.Hour + 20*time.Second) // 20 s into a minute
	deadline := t0.Add(48 * time.Hour)
	dev := func(stage int, p rollout.Phase) rollout.DeviceState {
		return rollout.DeviceState{DeviceID: "t-000042", Stage: stage, Phase: p}
	}
	capped := func(r *rollout.Rollout) { r.MaxStartsPerMinute, r.MaxConcurrent = 100, 500 }
	const retry = rollout.DefaultRetry
	tests := []struct {
		name     string
		mod      func(*rollout.Rollout)
		st       rollout.Status
		dev      rollout.DeviceState
		load     rollout.Load
		now      time.Time // zero means now
		why      rollout.Why
		min, max time.Duration // RetryAfter within [min, max)
		policy   transport.Policy
	}{
		{name: "stage open", st: running(1), dev: dev(1, rollout.PhasePending), why: rollout.WhyOffer},
		{name: "the zero phase is pending", st: running(1), dev: dev(1, ""), why: rollout.WhyOffer},
		{name: "earlier stages stay open", st: running(3), dev: dev(0, rollout.PhasePending), why: rollout.WhyOffer},
		{name: "stage not open yet", st: running(1), dev: dev(2, rollout.PhasePending), why: rollout.WhyStageClosed,
			min: retry, max: 2 * retry},
		{name: "custom retry", mod: func(r *rollout.Rollout) { r.Retry = time.Minute }, st: running(1), dev: dev(2, rollout.PhasePending),
			why: rollout.WhyStageClosed, min: time.Minute, max: 2 * time.Minute},
		{name: "in no stage", st: running(4), dev: dev(rollout.NoBatch, rollout.PhasePending), why: rollout.WhyNotInRollout},
		{name: "beyond the plan", st: running(4), dev: dev(5, rollout.PhasePending), why: rollout.WhyNotInRollout},
		{name: "succeeded", st: running(1), dev: dev(1, rollout.PhaseSucceeded), why: rollout.WhyFinished},
		{name: "failed", st: running(1), dev: dev(1, rollout.PhaseFailed), why: rollout.WhyFinished},
		{name: "expired device", st: running(1), dev: dev(1, rollout.PhaseExpired), why: rollout.WhyFinished},

		// The rollout's state.
		{name: "scheduled: come back at the start", mod: func(r *rollout.Rollout) { r.Start = now.Add(time.Hour) },
			dev: dev(0, rollout.PhasePending), why: rollout.WhyScheduled, min: time.Hour, max: time.Hour + time.Minute},
		{name: "scheduled, start passed, not yet decided", dev: dev(0, rollout.PhasePending), why: rollout.WhyScheduled,
			min: 0, max: time.Minute},
		{name: "paused", st: in(rollout.StatePaused, 1), dev: dev(1, rollout.PhasePending), why: rollout.WhyPaused, min: retry, max: 2 * retry},
		{name: "paused: no re-offer either", st: in(rollout.StatePaused, 1), dev: dev(1, rollout.PhaseDownloading), why: rollout.WhyPaused,
			min: retry, max: 2 * retry},
		{name: "halted", st: in(rollout.StateHalted, 1), dev: dev(1, rollout.PhasePending), why: rollout.WhyHalted, min: retry, max: 2 * retry},
		{name: "aborted", st: in(rollout.StateAborted, 1), dev: dev(1, rollout.PhasePending), why: rollout.WhyAborted},
		{name: "completed", st: in(rollout.StateCompleted, 4), dev: dev(1, rollout.PhasePending), why: rollout.WhyCompleted},
		{name: "expired rollout", mod: func(r *rollout.Rollout) { r.Expires = now }, st: running(1), dev: dev(1, rollout.PhasePending),
			why: rollout.WhyExpired},
		{name: "expired rollout: no re-offer", mod: func(r *rollout.Rollout) { r.Expires = now }, st: running(1),
			dev: dev(1, rollout.PhaseOffered), why: rollout.WhyExpired},
		{name: "a moment before expiry", mod: func(r *rollout.Rollout) { r.Expires = now.Add(time.Nanosecond) }, st: running(1),
			dev: dev(1, rollout.PhasePending), why: rollout.WhyOffer},

		// Caps.
		{name: "under the rate cap", mod: capped, st: running(1), dev: dev(1, rollout.PhasePending),
			load: rollout.Load{StartedThisMinute: 99, InFlight: 10}, why: rollout.WhyOffer},
		{name: "rate cap reached: next minute", mod: capped, st: running(1), dev: dev(1, rollout.PhasePending),
			load: rollout.Load{StartedThisMinute: 100, InFlight: 10}, why: rollout.WhyRateCap, min: 40 * time.Second, max: 100 * time.Second},
		{name: "under the concurrency cap", mod: capped, st: running(1), dev: dev(1, rollout.PhasePending),
			load: rollout.Load{StartedThisMinute: 5, InFlight: 499}, why: rollout.WhyOffer},
		{name: "concurrency cap reached", mod: capped, st: running(1), dev: dev(1, rollout.PhasePending),
			load: rollout.Load{StartedThisMinute: 5, InFlight: 500}, why: rollout.WhyConcurrency, min: time.Minute, max: 2 * time.Minute},
		{name: "no caps set", st: running(1), dev: dev(1, rollout.PhasePending),
			load: rollout.Load{StartedThisMinute: 1 << 20, InFlight: 1 << 20}, why: rollout.WhyOffer},
		{name: "in flight: offered again outside the caps", mod: capped, st: running(1), dev: dev(1, rollout.PhaseOffered),
			load: rollout.Load{StartedThisMinute: 100, InFlight: 500}, why: rollout.WhyOffer},
		{name: "downloading: offered again", mod: capped, st: running(1), dev: dev(1, rollout.PhaseDownloading),
			load: rollout.Load{StartedThisMinute: 100, InFlight: 500}, why: rollout.WhyOffer},
		{name: "offline flag does not matter to a device that asks", st: running(1),
			dev: rollout.DeviceState{DeviceID: "t-1", Stage: 1, Offline: true}, why: rollout.WhyOffer},

		// Deadline.
		{name: "before the deadline: deferrable until it", mod: func(r *rollout.Rollout) { r.Deadline = deadline }, st: running(1),
			dev: dev(1, rollout.PhasePending), why: rollout.WhyOffer, policy: transport.Policy{Deadline: deadline}},
		{name: "at the deadline: blocking", mod: func(r *rollout.Rollout) { r.Deadline = deadline }, st: running(1),
			dev: dev(1, rollout.PhasePending), now: deadline, why: rollout.WhyOffer,
			policy: transport.Policy{Deadline: deadline, Blocking: true}},
		{name: "after the deadline: blocking", mod: func(r *rollout.Rollout) { r.Deadline = deadline }, st: running(1),
			dev: dev(1, rollout.PhaseDownloading), now: deadline.Add(time.Hour), why: rollout.WhyOffer,
			policy: transport.Policy{Deadline: deadline, Blocking: true}},
		{name: "no deadline: deferrable", st: running(1), dev: dev(1, rollout.PhasePending), why: rollout.WhyOffer},
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
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			d := rollout.Offer(r, tt.st, tt.dev, at, tt.load)
			if d.Why != tt.why || d.Offer != (tt.why == rollout.WhyOffer) {
				t.Fatalf("Offer = %+v, want %s", d, tt.why)
			}
			if d.Offer || tt.max == 0 {
				if d.RetryAfter != 0 {
					t.Errorf("RetryAfter %v, want 0", d.RetryAfter)
				}
			} else if d.RetryAfter < tt.min || d.RetryAfter >= tt.max {
				t.Errorf("RetryAfter %v, want [%v, %v)", d.RetryAfter, tt.min, tt.max)
			}
			if !d.Policy.Deadline.Equal(tt.policy.Deadline) || d.Policy.Blocking != tt.policy.Blocking {
				t.Errorf("policy %+v, want %+v", d.Policy, tt.policy)
			}
		})
	}
}

// TestOfferRetrySpread checks that refused devices are told different
// waits, each the same on every ask, so they do not return as one.
func TestOfferRetrySpread(t *testing.T) {
	r := base()
	waits := map[time.Duration]bool{}
	for i := range 200 {
		d := rollout.DeviceState{DeviceID: fmt.Sprintf("t-%06d", i), Stage: 3}
		a := rollout.Offer(r, running(1), d, t0, rollout.Load{})
		b := rollout.Offer(r, running(1), d, t0, rollout.Load{})
		if a.RetryAfter != b.RetryAfter || a.Why != rollout.WhyStageClosed {
			t.Fatalf("%s: told %v, then %v", d.DeviceID, a.RetryAfter, b.RetryAfter)
		}
		waits[a.RetryAfter/time.Minute] = true
	}
	if len(waits) < 8 {
		t.Errorf("200 devices told to wait only %d different whole minutes, want them spread over 10", len(waits))
	}
}
