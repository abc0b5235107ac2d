package rollout_test

import (
	"fmt"
	"log"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

// A payment app goes to a pilot of two lab terminals, then half the
// fleet, then the rest. One failure in the first batch halts it; the
// operator looks, accepts it and resumes; the last batch, a week on, is
// past the deadline and gets a blocking offer.
func Example() {
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	r := rollout.Rollout{
		ID:                 "payapp-2.4.0",
		Release:            "payapp@2.4.0",
		Target:             rollout.Target{Models: []string{"P300"}},
		Pilot:              []string{"lab-1", "lab-2"},
		Batches:            []float64{50, 100},
		Start:              start,
		MaxStartsPerMinute: 100,
		Deadline:           start.Add(7 * 24 * time.Hour),
	}
	if err := r.Validate(); err != nil {
		log.Fatal(err)
	}

	// The server tracks every terminal the rollout targets and stores
	// their states and the rollout's status.
	var devices []rollout.DeviceState
	for _, id := range []string{"lab-1", "lab-2", "t-0001", "t-0002", "t-0003", "t-0004", "t-0005", "t-0006"} {
		if rollout.Eligible(r, rollout.Device{ID: id, Model: "P300"}) {
			devices = append(devices, rollout.Track(r, id))
		}
	}
	var st rollout.Status
	decide := func(now time.Time) {
		var events []rollout.Event
		st, events = rollout.Decide(r, st, rollout.Tally(r, devices), now)
		for _, e := range events {
			fmt.Printf("%s  %-12s %s\n", e.At.Format("Jan 2 15:04"), e.Kind, e.Detail)
		}
	}
	// check is a terminal checking in: offer it the release or not.
	check := func(i int, now time.Time) {
		d := rollout.Offer(r, st, devices[i], now, rollout.LoadOf(devices, now))
		fmt.Printf("%s  %s (stage %d): %s", now.Format("Jan 2 15:04"), devices[i].DeviceID, devices[i].Stage, d.Why)
		if d.Offer {
			devices[i] = devices[i].MarkOffered(now)
			fmt.Printf(", blocking %v", d.Policy.Blocking)
		}
		fmt.Println()
	}
	report := func(i int, outcome transport.Outcome, reason transport.Reason, now time.Time) {
		devices[i] = devices[i].Observe(rollout.PhaseOf(outcome, reason), reason, now)
	}

	decide(start)
	now := start.Add(time.Minute)
	for i := range devices {
		check(i, now)
	}

	now = start.Add(time.Hour)
	report(0, transport.OutcomeCommitted, transport.ReasonOK, now)
	report(1, transport.OutcomeCommitted, transport.ReasonOK, now)
	decide(now)
	check(4, now) // t-0003, in batch 1
	check(6, now) // t-0005, in batch 1

	now = start.Add(3 * time.Hour)
	report(4, transport.OutcomeCommitted, transport.ReasonOK, now)
	report(6, transport.OutcomeRolledBack, transport.ReasonHealth, now)
	decide(now)
	check(2, now)

	now = start.Add(8 * 24 * time.Hour)
	st, ev, err := rollout.Resume(st, rollout.Tally(r, devices), now, "t-0005 had a bad SIM; accepted")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s  %-12s %s\n", ev.At.Format("Jan 2 15:04"), ev.Kind, ev.Detail)
	decide(now)
	for _, i := range []int{2, 3, 5, 7} {
		check(i, now)
		report(i, transport.OutcomeCommitted, transport.ReasonOK, now.Add(time.Hour))
	}
	decide(now.Add(time.Hour))

	// Output:
	// Mar 1 02:00  started      started
	// Mar 1 02:00  stage_opened stage 0 (pilot) opened
	// Mar 1 02:01  lab-1 (stage 0): offer, blocking false
	// Mar 1 02:01  lab-2 (stage 0): offer, blocking false
	// Mar 1 02:01  t-0001 (stage 2): stage_closed
	// Mar 1 02:01  t-0002 (stage 2): stage_closed
	// Mar 1 02:01  t-0003 (stage 1): stage_closed
	// Mar 1 02:01  t-0004 (stage 2): stage_closed
	// Mar 1 02:01  t-0005 (stage 1): stage_closed
	// Mar 1 02:01  t-0006 (stage 2): stage_closed
	// Mar 1 03:00  stage_opened stage 1 opened: stage 0 met its success threshold
	// Mar 1 03:00  t-0003 (stage 1): offer, blocking false
	// Mar 1 03:00  t-0005 (stage 1): offer, blocking false
	// Mar 1 05:00  halted       halted: stage 1: 1 of 2 finished devices are failures (50.0%), limit 10%
	// Mar 1 05:00  t-0001 (stage 2): halted
	// Mar 9 02:00  resumed      t-0005 had a bad SIM; accepted
	// Mar 9 02:00  stage_opened stage 2 opened: stage 1 met its success threshold
	// Mar 9 02:00  t-0001 (stage 2): offer, blocking true
	// Mar 9 02:00  t-0002 (stage 2): offer, blocking true
	// Mar 9 02:00  t-0004 (stage 2): offer, blocking true
	// Mar 9 02:00  t-0006 (stage 2): offer, blocking true
	// Mar 9 03:00  completed    completed: every device finished
}
