package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

// role is how a simulated terminal behaves.
type role int

const (
	roleNormal  role = iota
	roleLab          // in the pilot: always online, never fails
	roleOffline      // registers, then never beats again
	roleCrash        // goes silent partway through its download, then comes back
)

// Simulated durations, in the server's time.
const (
	downloadMin, downloadMax = 10 * time.Second, 30 * time.Second
	installMin, installMax   = 10 * time.Second, 30 * time.Second
)

// failReasons are the reason codes failed installs report, in turn, with
// the outcome each goes with.
var failReasons = []struct {
	outcome transport.Outcome
	reason  transport.Reason
	phase   string
}{
	{transport.OutcomeRolledBack, transport.ReasonSignIn, "verifying"},
	{transport.OutcomeRolledBack, transport.ReasonHealth, "verifying"},
	{transport.OutcomeRefused, transport.ReasonDownload, "downloading"},
	{transport.OutcomeRolledBack, transport.ReasonBoot, "installing"},
}

// counters count what the terminals sent, and time it.
type counters struct {
	beats, checks, offers, reports, failed, errors atomic.Int64
	beatTime, checkTime, reportTime                latencies
}

// latencies collects how long calls took.
type latencies struct {
	mu sync.Mutex
	ds []time.Duration
}

func (l *latencies) add(since time.Time) {
	d := time.Since(since)
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

// quantiles returns the median and the 99th percentile.
func (l *latencies) quantiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ds) == 0 {
		return 0, 0
	}
	slices.Sort(l.ds)
	return l.ds[len(l.ds)/2], l.ds[len(l.ds)*99/100]
}

// reset forgets what was collected.
func (l *latencies) reset() {
	l.mu.Lock()
	l.ds = l.ds[:0]
	l.mu.Unlock()
}

// outcomes decides how each install ends: the fail share of each stage's
// reports fails, spread evenly over them in the order they are made, and
// a failure is sent only once the server has the reports before it.
type outcomes struct {
	fail    float64
	mu      sync.Mutex
	decided []int64       // per stage: reports whose outcome is decided
	acked   []int64       // per stage: reports the server acknowledged
	changed chan struct{} // closed, and replaced, when acked grows
}

func newOutcomes(stages int, fail float64) *outcomes {
	return &outcomes{fail: fail, decided: make([]int64, stages), acked: make([]int64, stages),
		changed: make(chan struct{})}
}

// verdict is how one install ends.
type verdict struct {
	outcome transport.Outcome
	reason  transport.Reason
	phase   string
	stage   int
	turn    int64 // its place among its stage's reports, from 1; 0 if not counted
}

var committed = verdict{outcome: transport.OutcomeCommitted, reason: transport.ReasonOK, phase: "committing"}

// next decides how the next install of stage ends. The k-th report of a
// stage (from 1) fails when ⌊k·fail⌋ goes up at k: with fail 0.2 the 5th,
// 10th, 15th... fail; with 0.05 the 20th, 40th... Lab terminals and the
// pilot never fail.
func (o *outcomes) next(stage int, lab bool) verdict {
	if lab || stage < 1 || stage >= len(o.decided) {
		return committed
	}
	o.mu.Lock()
	o.decided[stage]++
	k := o.decided[stage]
	o.mu.Unlock()
	v := committed
	v.stage, v.turn = stage, k
	if math.Floor(float64(k)*o.fail) > math.Floor(float64(k-1)*o.fail) {
		r := failReasons[int(k)%len(failReasons)]
		v.outcome, v.reason, v.phase = r.outcome, r.reason, r.phase
	}
	return v
}

// wait returns once v may be sent: at once for a success; for a failure,
// once the server has acknowledged as many of its stage's reports as
// come before it. Reports travel concurrently and arrive in any order; a
// failure that overtook the successes before it would let the server see
// a failure rate above the share, and halt a rollout whose share is
// within its limit.
func (o *outcomes) wait(ctx context.Context, v verdict) error {
	if v.outcome == transport.OutcomeCommitted || v.turn == 0 {
		return nil
	}
	for {
		o.mu.Lock()
		ok, changed := o.acked[v.stage] >= v.turn-1, o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ack records that the server acknowledged v.
func (o *outcomes) ack(v verdict) {
	if v.turn == 0 {
		return
	}
	o.mu.Lock()
	o.acked[v.stage]++
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

// terminal is one simulated terminal: the protocol client alone.
type terminal struct {
	index  int
	serial string
	role   role
	api    protocol
	id     string // device ID, once registered
	stage  int    // its stage in the rollout
}

// What a terminal does next.
const (
	doBeat = iota
	doCheck
	doStep // the next step of an install, or its report
)

// step is a stretch of a simulated install: a state the heartbeats
// report, for a while; "" is silence (crashed: no beats).
type step struct {
	state string
	until time.Time
}

// job is an offer being "installed".
type job struct {
	steps   []step
	verdict verdict
	decided bool
}

func (j *job) state() string {
	if len(j.steps) == 0 {
		return "committing"
	}
	return j.steps[0].state
}

// sim is what the terminals share.
type sim struct {
	e        *env
	release  string
	outcomes *outcomes
	count    *counters
}

// run simulates t until ctx ends: beats at the interval the server
// directs, checks when it says to, installs an offer and reports.
func (t *terminal) run(ctx context.Context, s *sim, seed uint64) {
	if t.role == roleOffline {
		return
	}
	rng := rand.New(rand.NewPCG(seed, uint64(t.index)))
	e := s.e
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	components := []transport.Component{{Name: e.component, Version: e.from}}
	var (
		seq       uint64
		directed  = heartbeatInterval // as the server says, in its time
		interval  = e.wall(directed)
		jitter    = interval / 10
		now       = time.Now()
		nextBeat  = now.Add(between(0, interval))
		nextCheck = now.Add(between(0, interval))
		work      *job
		last      *transport.Result
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// The earliest of what is due: when the server is slow and
		// everything is late, beats must not starve checks.
		next, do := nextBeat, doBeat
		if work != nil && !work.steps[0].until.After(next) {
			next, do = work.steps[0].until, doStep
		}
		if work == nil && nextCheck.Before(next) {
			next, do = nextCheck, doCheck
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now = time.Now()
		switch do {
		case doStep:
			if work.steps[0].state == "" {
				seq = 0 // it rebooted
				nextBeat = now
			}
			if len(work.steps) > 1 {
				work.steps = work.steps[1:]
				continue
			}
			if !work.decided {
				work.verdict = s.outcomes.next(t.stage, t.role == roleLab)
				work.decided = true
			}
			v := work.verdict
			if err := s.outcomes.wait(ctx, v); err != nil {
				return
			}
			to := e.from
			if v.outcome == transport.OutcomeCommitted {
				to = versionOf(s.release)
			}
			at := e.clock()
			t0 := time.Now()
			_, err := t.api.Report(ctx, &transport.ReportRequest{ID: "fleet-" + s.release, Release: s.release,
				From: e.from, To: to, Phase: v.phase, Outcome: v.outcome, Reason: v.reason, At: at})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.count.errors.Add(1)
				work.steps[0].until = now.Add(e.wall(10 * time.Second)) // try again
				continue
			}
			s.outcomes.ack(v)
			s.count.reports.Add(1)
			s.count.reportTime.add(t0)
			if v.outcome != transport.OutcomeCommitted {
				s.count.failed.Add(1)
			} else {
				components[0].Version = to
			}
			last = &transport.Result{Release: s.release, Outcome: v.outcome, Reason: v.reason, At: at}
			work = nil
			nextCheck = now.Add(between(0, interval))
		case doBeat:
			if work != nil && work.state() == "" {
				nextBeat = work.steps[0].until // silent
				continue
			}
			seq++
			req := &transport.HeartbeatRequest{Seq: seq, State: "idle", Components: components, LastResult: last,
				Network: "wifi", Battery: &transport.Battery{Percent: 80, OnMains: true}}
			if work != nil {
				req.State, req.Release = work.state(), s.release
			}
			t0 := time.Now()
			resp, err := t.api.Heartbeat(ctx, req)
			nextBeat = now.Add(interval + between(-jitter, jitter))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.count.errors.Add(1)
				continue
			}
			s.count.beats.Add(1)
			s.count.beatTime.add(t0)
			if resp.IntervalSeconds > 0 {
				directed = time.Duration(resp.IntervalSeconds) * time.Second
				interval = e.wall(directed)
				jitter = e.wall(time.Duration(resp.JitterSeconds) * time.Second)
			}
			for _, d := range resp.Directives {
				if d == transport.DirectiveCheck {
					nextCheck = now
				}
			}
		case doCheck:
			t0 := time.Now()
			resp, err := t.api.Check(ctx, &transport.CheckRequest{Model: e.model, Components: components})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.count.errors.Add(1)
				nextCheck = now.Add(interval)
				continue
			}
			s.count.checks.Add(1)
			s.count.checkTime.add(t0)
			if len(resp.Offers) == 0 {
				wait := e.wall(time.Duration(max(1, resp.RetryAfterSeconds)) * time.Second)
				nextCheck = now.Add(wait + between(0, wait/10))
				continue
			}
			// The offer is the release being rolled out: a simulated
			// terminal neither verifies nor downloads it.
			s.count.offers.Add(1)
			dl, inst := e.wall(between(downloadMin, downloadMax)), e.wall(between(installMin, installMax))
			work = &job{}
			if t.role == roleCrash {
				// Silent long enough to be judged so and swept.
				silence := e.offlineAfter(directed)
				work.steps = []step{{"downloading", now.Add(dl / 2)}, {"", now.Add(dl/2 + silence)},
					{"downloading", now.Add(dl + silence)}, {"installing", now.Add(dl + inst + silence)}}
			} else {
				work.steps = []step{{"downloading", now.Add(dl)}, {"installing", now.Add(dl + inst)}}
			}
			nextBeat = now // tell the server at once
		}
	}
}

// versionOf returns the version of a release ID (component@version).
func versionOf(release string) string {
	for i := len(release) - 1; i >= 0; i-- {
		if release[i] == '@' {
			return release[i+1:]
		}
	}
	return release
}

// serial names the i-th terminal of a run.
func serial(run string, i int) string { return fmt.Sprintf("SIM-%s-%06d", run, i) }
