package rollout

import (
	"time"

	"github.com/upkeephq/upkeep/transport"
)

// Why says why [Offer] decided as it did.
type Why string

// Offer's reasons. After WhyFinished, WhyNotInRollout, WhyExpired,
// WhyAborted and WhyCompleted nothing will come of asking again.
const (
	WhyOffer        Why = "offer"          // offered: the device's stage is open and the caps allow it
	WhyFinished     Why = "finished"       // the device has finished (or expired) in this rollout
	WhyNotInRollout Why = "not_in_rollout" // the device is in no stage (see NoBatch)
	WhyExpired      Why = "expired"        // the rollout has expired
	WhyAborted      Why = "aborted"        // the rollout was aborted
	WhyCompleted    Why = "completed"      // the rollout completed
	WhyScheduled    Why = "scheduled"      // the rollout has not started
	WhyPaused       Why = "paused"         // an operator paused the rollout
	WhyHalted       Why = "halted"         // the rollout halted on failures
	WhyStageClosed  Why = "stage_closed"   // the device's stage has not opened yet
	WhyRateCap      Why = "rate_cap"       // enough devices started this minute
	WhyConcurrency  Why = "concurrency"    // enough devices are updating now
)

// Decision is [Offer]'s answer for one device.
type Decision struct {
	// Offer is true when the server should offer the release now, with
	// Policy. The server then records the offer with
	// [DeviceState.MarkOffered].
	Offer  bool
	Why    Why
	Policy transport.Policy
	// RetryAfter, when Offer is false, is when asking again may help
	// (a check response's retry-after); zero when it will not.
	RetryAfter time.Duration
}

// Offer decides whether to offer r's release to a device now. The server
// calls it when a targeted device checks in (see [Eligible]), with the
// rollout's status, the device's state and the rollout's [Load]. It
// offers when the rollout runs, the device's stage is open, the device has
// not finished, the rollout has not expired, and, for a device not yet
// offered, fewer than MaxStartsPerMinute devices started in this minute
// and fewer than MaxConcurrent are in flight. A device already in flight
// is offered again, outside the caps: it may have lost its offer.
//
// The offer's policy carries Rollout.Deadline, and is blocking from the
// deadline on. When the answer is not now, RetryAfter is the start time,
// the next minute (rate cap), a minute (concurrency cap) or Rollout.Retry,
// each spread by the device's ID so refused devices come back spread out.
func Offer(r Rollout, st Status, d DeviceState, now time.Time, load Load) Decision {
	no := func(why Why, after time.Duration) Decision { return Decision{Why: why, RetryAfter: after} }
	wait := func(why Why, after time.Duration, window time.Duration) Decision {
		return no(why, max(after, 0)+spread(r, d.DeviceID, window))
	}
	switch {
	case d.Phase.Finished():
		return no(WhyFinished, 0)
	case d.Stage < 0 || d.Stage >= r.Stages():
		return no(WhyNotInRollout, 0)
	case !r.Expires.IsZero() && !now.Before(r.Expires):
		return no(WhyExpired, 0)
	}
	switch st.State.norm() {
	case StateAborted:
		return no(WhyAborted, 0)
	case StateCompleted:
		return no(WhyCompleted, 0)
	case StatePaused:
		return wait(WhyPaused, r.retry(), r.retry())
	case StateHalted:
		return wait(WhyHalted, r.retry(), r.retry())
	case StateScheduled:
		// Until Decide starts it, even when Start has passed.
		return wait(WhyScheduled, r.Start.Sub(now), time.Minute)
	}
	if d.Stage > st.Stage {
		return wait(WhyStageClosed, r.retry(), r.retry())
	}
	if !d.Phase.norm().inFlight() {
		if r.MaxStartsPerMinute > 0 && load.StartedThisMinute >= r.MaxStartsPerMinute {
			next := now.Truncate(time.Minute).Add(time.Minute)
			return wait(WhyRateCap, next.Sub(now), time.Minute)
		}
		if r.MaxConcurrent > 0 && load.InFlight >= r.MaxConcurrent {
			return wait(WhyConcurrency, time.Minute, time.Minute)
		}
	}
	dec := Decision{Offer: true, Why: WhyOffer}
	if !r.Deadline.IsZero() {
		dec.Policy = transport.Policy{Deadline: r.Deadline, Blocking: !now.Before(r.Deadline)}
	}
	return dec
}
