package rollout_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

// fleet simulates terminals checking in against a rollout and working
// through their offers, one simulated minute per tick, in a plain loop:
// what a server does, with the policy functions in their places.
type fleet struct {
	t       *testing.T
	r       rollout.Rollout
	st      rollout.Status
	devices []rollout.DeviceState
	// fails says whether device i's attempt fails, and why.
	fails func(i int) (bool, transport.Reason)

	now    time.Time
	tick   int
	checks map[int][]int32 // tick → devices that check in then
	work   map[int][]int32 // tick → devices whose update moves on then
	events []rollout.Event

	offeredStage  int // highest stage of a device offered the release
	offersStopped int // offers made while the rollout was not running
}

func newFleet(t *testing.T, r rollout.Rollout, n int, offline func(i int) bool, fails func(i int) (bool, transport.Reason)) *fleet {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, r: r, fails: fails, now: r.Start, checks: map[int][]int32{}, work: map[int][]int32{}, offeredStage: -1}
	f.devices = make([]rollout.DeviceState, n)
	for i := range n {
		f.devices[i] = rollout.Track(r, simID(i))
		if offline(i) {
			f.devices[i].Offline = true // silent all along: never checks in
			continue
		}
		f.at(f.checks, i%10, i) // first check-ins spread over ten minutes
	}
	return f
}

func simID(i int) string { return fmt.Sprintf("t-%06d", i) }

func (f *fleet) at(m map[int][]int32, tick, i int) { m[tick] = append(m[tick], int32(i)) }

// step runs one simulated minute.
func (f *fleet) step() {
	// Updates in progress move on: downloading, installing, then done.
	for _, i := range f.work[f.tick] {
		d := &f.devices[i]
		switch d.Phase {
		case rollout.PhaseOffered:
			*d = d.Observe(rollout.PhaseDownloading, "", f.now)
			f.at(f.work, f.tick+2, int(i))
		case rollout.PhaseDownloading:
			*d = d.Observe(rollout.PhaseInstalling, "", f.now)
			f.at(f.work, f.tick+2, int(i))
		case rollout.PhaseInstalling:
			outcome, reason := transport.OutcomeCommitted, transport.ReasonOK
			if bad, why := f.fails(int(i)); bad {
				outcome, reason = transport.OutcomeRolledBack, why
			}
			*d = d.Observe(rollout.PhaseOf(outcome, reason), reason, f.now)
		}
	}
	delete(f.work, f.tick)

	// The server's timer: decide on fresh counts.
	st, events := rollout.Decide(f.r, f.st, rollout.Tally(f.r, f.devices), f.now)
	f.st, f.events = st, append(f.events, events...)

	// Terminals check in.
	load := rollout.LoadOf(f.devices, f.now)
	starts := 0
	for _, i := range f.checks[f.tick] {
		d := &f.devices[i]
		dec := rollout.Offer(f.r, f.st, *d, f.now, load)
		if !dec.Offer {
			if dec.RetryAfter > 0 {
				f.at(f.checks, f.tick+max(1, int((dec.RetryAfter+time.Minute-1)/time.Minute)), int(i))
			}
			continue
		}
		if f.st.State != rollout.StateRunning {
			f.offersStopped++
		}
		f.offeredStage = max(f.offeredStage, d.Stage)
		if d.Phase == rollout.PhasePending {
			starts++
			load.StartedThisMinute++
			load.InFlight++
			*d = d.MarkOffered(f.now)
			f.at(f.work, f.tick+1, int(i))
		}
	}
	delete(f.checks, f.tick)

	if c := f.r.MaxStartsPerMinute; c > 0 && starts > c {
		f.t.Fatalf("tick %d: %d starts, cap %d", f.tick, starts, c)
	}
	if c := f.r.MaxConcurrent; c > 0 && load.InFlight > c {
		f.t.Fatalf("tick %d: %d in flight, cap %d", f.tick, load.InFlight, c)
	}
	f.tick++
	f.now = f.now.Add(time.Minute)
}

// idle reports whether nothing is left to happen but time passing.
func (f *fleet) idle() bool { return len(f.checks) == 0 && len(f.work) == 0 }

func (f *fleet) opened() []int {
	var stages []int
	for _, e := range f.events {
		if e.Kind == rollout.EventStageOpened {
			stages = append(stages, e.Stage)
		}
	}
	return stages
}

// TestSimulationHaltsBeforeSecondBatch: 100,000 terminals, of which a fifth
// of the first batch fail their health checks. The rollout halts in batch
// 1; no terminal of batch 2 is ever offered the release.
func TestSimulationHaltsBeforeSecondBatch(t *testing.T) {
	r := rollout.Rollout{
		ID: "fw-2.0.0", Release: "firmware@2.0.0", Start: t0,
		Pilot:              []string{simID(1), simID(2), simID(3), simID(4), simID(5)},
		MaxStartsPerMinute: 500, MaxConcurrent: 2000, Retry: 5 * time.Minute,
	}
	var f *fleet
	f = newFleet(t, r, 100_000, func(i int) bool { return i%33 == 0 }, func(i int) (bool, transport.Reason) {
		return f.devices[i].Stage == 1 && i%5 == 0, transport.ReasonHealth
	})
	haltedAt := -1
	for f.tick < 240 && (haltedAt < 0 || f.tick < haltedAt+15) {
		f.step()
		if haltedAt < 0 && f.st.State == rollout.StateHalted {
			haltedAt = f.tick
		}
	}

	if f.st.State != rollout.StateHalted || f.st.Breach.Stage != 1 || f.st.Stage != 1 {
		t.Fatalf("after %d minutes: %s at stage %d (%s), want halted in stage 1", f.tick, f.st.State, f.st.Stage, f.st.Detail)
	}
	if got := f.opened(); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf("stages opened %v, want [0 1]", got)
	}
	if f.offeredStage != 1 {
		t.Errorf("a device of stage %d was offered the release", f.offeredStage)
	}
	if f.offersStopped > 0 {
		t.Errorf("%d offers made after the halt", f.offersStopped)
	}
	b := f.st.Breach
	if b.Finished < r.MinFinished || 100*b.Failed <= 10*b.Finished {
		t.Errorf("breach %+v: want at least the minimum finished and more than 10%% failed", b)
	}
	counts := rollout.Tally(r, f.devices)
	if counts[0].Succeeded != 5 {
		t.Errorf("pilot %+v, want 5 succeeded", counts[0])
	}
	for s := 2; s < len(counts); s++ {
		if c := counts[s]; c.Pending+c.Offline != c.Total() {
			t.Errorf("stage %d was touched: %+v", s, c)
		}
	}
	t.Logf("halted after %d simulated minutes: %s; stage 1: %+v", haltedAt, f.st.Detail, counts[1])
}

// TestSimulationCompletes: 20,000 terminals, 2% failing downloads, 3% never
// online. Every stage opens in turn under the caps; the offline terminals
// wait, never fail, and expire with the rollout.
func TestSimulationCompletes(t *testing.T) {
	r := rollout.Rollout{
		ID: "pay-2.4.0", Release: "payapp@2.4.0", Start: t0,
		Pilot:              []string{simID(1), simID(2), simID(3)},
		MaxStartsPerMinute: 400, MaxConcurrent: 1500, Retry: 5 * time.Minute,
		Expires: t0.Add(24 * time.Hour),
	}
	offline := func(i int) bool { return i%33 == 0 }
	f := newFleet(t, r, 20_000, offline, func(i int) (bool, transport.Reason) { return i%50 == 7, transport.ReasonDownload })
	for f.tick < 1000 && !f.idle() {
		f.step()
	}
	if !f.idle() {
		t.Fatalf("still busy after %d minutes: %s at stage %d", f.tick, f.st.State, f.st.Stage)
	}
	if f.st.State != rollout.StateRunning || f.st.Stage != r.Stages()-1 {
		t.Fatalf("with every online device done: %s at stage %d (%s), want running at the last stage, waiting for the offline ones",
			f.st.State, f.st.Stage, f.st.Detail)
	}
	if got := f.opened(); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Errorf("stages opened %v, want [0 1 2 3 4]", got)
	}
	f.now = r.Expires
	st, events := rollout.Decide(r, f.st, rollout.Tally(r, f.devices), f.now)
	if st.State != rollout.StateCompleted || len(events) != 1 || events[0].Kind != rollout.EventExpired {
		t.Fatalf("at expiry: %+v %+v", st, events)
	}
	for i := range f.devices {
		f.devices[i] = f.devices[i].Expire(f.now)
	}
	var total rollout.Counts
	for _, c := range rollout.Tally(r, f.devices) {
		total.Succeeded += c.Succeeded
		total.Failed.Total += c.Failed.Total
		total.Expired += c.Expired
		total.Offline += c.Offline
	}
	offlineN, failN := 0, 0
	for i := range 20_000 {
		switch {
		case offline(i):
			offlineN++
		case i%50 == 7:
			failN++
		}
	}
	if total.Expired != offlineN || total.Failed.Total != failN || total.Succeeded != 20_000-offlineN-failN || total.Offline != 0 {
		t.Errorf("final counts %+v, want %d expired, %d failed, %d succeeded", total, offlineN, failN, 20_000-offlineN-failN)
	}
	t.Logf("every online device done after %d simulated minutes", f.tick)
}
