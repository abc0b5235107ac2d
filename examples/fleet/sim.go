package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
	"github.com/upkeephq/upkeep/update/server"
)

// verdictError is a rollout that did not do what the flags imply; the
// verdict is already printed.
type verdictError struct{ msg string }

func (e *verdictError) Error() string { return e.msg }

// simulate runs a fleet through a staged rollout and prints it.
func simulate(ctx context.Context, o options, stdout, stderr io.Writer) error {
	e, err := newEnv(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := e.close(); err != nil {
			fmt.Fprintln(stderr, "fleet: shutting down:", err)
		}
	}()
	runID := randomHex(3)
	ts := roles(o, runID)
	nOffline, nCrash := 0, 0
	for _, t := range ts {
		switch t.role {
		case roleOffline:
			nOffline++
		case roleCrash:
			nCrash++
		}
	}
	transportDesc := "HTTP"
	if o.direct {
		transportDesc = "the Go API (no HTTP)"
	}
	fmt.Fprintf(stdout, "fleet: %d terminals over %s against the %s; clock ×%g\n", o.terminals, transportDesc, e.desc, o.speed)
	fmt.Fprintf(stdout, "  %d lab terminals in the pilot, %d offline (never beat), %d crash mid-update and come back; %g%% of each batch's installs fail\n",
		o.pilot, nOffline, nCrash, 100*o.fail)

	start := time.Now()
	if err := register(ctx, e, o, ts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  registered %d terminals in %.1fs\n", len(ts), time.Since(start).Seconds())

	spec := server.RolloutSpec{ID: "fleet-" + runID, Release: e.release, Models: []string{e.model},
		Batches: o.batches, FailureRate: o.limit, SoakSeconds: int64(o.soak / time.Second),
		RetrySeconds: int64(heartbeatInterval / time.Second)}
	for _, t := range ts[:o.pilot] {
		spec.Pilot = append(spec.Pilot, t.id)
	}
	def := rollout.Rollout{ID: spec.ID, Pilot: spec.Pilot, Batches: spec.Batches}
	for _, t := range ts {
		t.stage = rollout.Batch(def, t.id)
	}
	st, err := e.op.createRollout(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rollout %s of %s: %s; halts when more than %g%% of a stage's finished installs fail (once %d have)\n",
		spec.ID, spec.Release, plan(o), o.limit, rollout.DefaultMinFinished)
	expectHalt := o.fail*100 > o.limit
	if len(o.batches) > 0 {
		if first := float64(o.terminals-o.pilot) * o.batches[0] / 100 * (1 - o.offline); first < rollout.DefaultMinFinished {
			fmt.Fprintf(stdout, "  note: batch 1 holds about %.0f terminals that beat, fewer than the %d the failure limit waits for: a failure share may not show in it\n",
				first, rollout.DefaultMinFinished)
		}
	}
	if expectHalt {
		fmt.Fprintf(stdout, "  expect: %g%% failures pass the %g%% limit: it must halt in batch 1, before batch 2 opens\n", 100*o.fail, o.limit)
	} else {
		fmt.Fprintf(stdout, "  expect: %g%% failures stay within the %g%% limit: it must open every batch, until only offline terminals wait\n", 100*o.fail, o.limit)
	}

	runCtx, stop := context.WithCancel(ctx)
	s := &sim{e: e, release: e.release, outcomes: newOutcomes(len(st.Stages), o.fail), count: &counters{}}
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Go(func() { t.run(runCtx, s, o.seed) })
	}
	simStart := time.Now()
	takePart := int64(0)
	for _, t := range ts {
		if t.role != roleOffline && t.stage != rollout.NoBatch {
			takePart++
		}
	}
	w := &watcher{out: stdout, o: o, start: simStart, unreported: func() int64 { return takePart - s.count.reports.Load() }}
	verdict, ok, err := w.watch(ctx, e, spec.ID, expectHalt)
	stop()
	wg.Wait()
	if err != nil {
		return err
	}
	elapsed := time.Since(simStart)
	c := s.count
	fmt.Fprintf(stdout, "  terminals sent %d heartbeats, %d checks (%d offers), %d reports (%d failed) in %.1fs: %.0f requests/s; %d errors\n",
		c.beats.Load(), c.checks.Load(), c.offers.Load(), c.reports.Load(), c.failed.Load(), elapsed.Seconds(),
		float64(c.beats.Load()+c.checks.Load()+c.reports.Load())/elapsed.Seconds(), c.errors.Load())
	b50, b99 := c.beatTime.quantiles()
	c50, c99 := c.checkTime.quantiles()
	r50, r99 := c.reportTime.quantiles()
	fmt.Fprintf(stdout, "  latency p50 / p99: heartbeats %.1f / %.1f ms, checks %.1f / %.1f ms, reports %.1f / %.1f ms\n",
		ms(b50), ms(b99), ms(c50), ms(c99), ms(r50), ms(r99))
	if e.writes != nil {
		fmt.Fprintf(stdout, "  store writes (calls, records each, mean time): %v\n", e.writes)
	}
	if !ok {
		fmt.Fprintln(stdout, "FAIL:", verdict)
		return &verdictError{verdict}
	}
	fmt.Fprintln(stdout, "PASS:", verdict)
	return nil
}

// roles makes the terminals of a run: the pilot's lab terminals first,
// then the offline and crashing ones drawn at random (by -seed) from the
// rest.
func roles(o options, runID string) []*terminal {
	ts := make([]*terminal, o.terminals)
	for i := range ts {
		ts[i] = &terminal{index: i, serial: serial(runID, i)}
		if i < o.pilot {
			ts[i].role = roleLab
		}
	}
	rest := ts[o.pilot:]
	order := rand.New(rand.NewPCG(o.seed, 0)).Perm(len(rest))
	nOffline := min(len(rest), int(math.Round(o.offline*float64(o.terminals))))
	nCrash := min(len(rest)-nOffline, int(math.Round(o.crash*float64(o.terminals))))
	for i, j := range order {
		switch {
		case i < nOffline:
			rest[j].role = roleOffline
		case i < nOffline+nCrash:
			rest[j].role = roleCrash
		}
	}
	return ts
}

// register registers every terminal, many at a time.
func register(ctx context.Context, e *env, o options, ts []*terminal) error {
	work := make(chan *terminal)
	errs := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(64, o.conns, len(ts)) {
		wg.Go(func() {
			for t := range work {
				api, err := e.client(o.direct)
				if err == nil {
					var resp *transport.RegisterResponse
					resp, err = api.Register(ctx, &transport.RegisterRequest{Enrollment: e.enrollment, Serial: t.serial,
						Model: e.model, Components: []transport.Component{{Name: e.component, Version: e.from}}})
					if err == nil {
						t.api, t.id = api, resp.DeviceID
						continue
					}
				}
				select {
				case errs <- fmt.Errorf("register %s: %w", t.serial, err):
				default:
				}
				cancel()
			}
		})
	}
	for _, t := range ts {
		select {
		case work <- t:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

func plan(o options) string {
	var b strings.Builder
	if o.pilot > 0 {
		fmt.Fprintf(&b, "pilot of %d, then ", o.pilot)
	}
	b.WriteString("batches ")
	for i, p := range o.batches {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%g%%", p)
	}
	return b.String()
}

// watcher reads the rollout's counts, prints them when they change, and
// decides whether the rollout did what the flags imply.
type watcher struct {
	out   io.Writer
	o     options
	start time.Time
	// unreported returns how many of the simulated terminals that take
	// part (online, in a stage) have not reported yet.
	unreported func() int64

	last     string
	maxStage int
	header   bool
}

// watch returns the verdict, and whether the rollout did as expected.
func (w *watcher) watch(ctx context.Context, e *env, id string, expectHalt bool) (string, bool, error) {
	tick := time.NewTicker(w.o.every)
	defer tick.Stop()
	deadline := time.After(w.o.timeout)
	var st server.RolloutStatus
	for {
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-deadline:
			w.print(st, true)
			return fmt.Sprintf("no verdict after %v: %s in stage %d (%s)", w.o.timeout, st.State, st.Stage, st.Detail), false, nil
		case <-tick.C:
		}
		var err error
		st, err = e.op.rollout(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return "", false, ctx.Err()
			}
			return "", false, err
		}
		w.maxStage = max(w.maxStage, st.Stage)
		if v, ok, done := w.judge(st, expectHalt); done {
			w.print(st, true)
			return v, ok, nil
		}
		w.print(st, false)
	}
}

// judge decides, from one reading, whether the run is over and how.
func (w *watcher) judge(st server.RolloutStatus, expectHalt bool) (verdict string, ok, done bool) {
	elapsed := time.Since(w.start).Seconds()
	last := len(st.Stages) - 1
	switch st.State {
	case "halted":
		later := 0 // devices of batch 2 and after that were ever offered
		for _, c := range st.Stages[min(2, len(st.Stages)):] {
			later += c.Offered + c.Downloading + c.Installing + c.Silent + c.Installed + c.Failed
		}
		b := st.Breach
		if b == nil {
			return "halted without a breach: " + st.Detail, false, true
		}
		pct := 100 * float64(b.Failed) / float64(max(1, b.Finished))
		v := fmt.Sprintf("halted by itself in %s after %.1fs: %d of %d finished installs failed (%.1f%%, limit %g%%); %d terminals of later batches offered",
			stageName(w.o, b.Stage), elapsed, b.Failed, b.Finished, pct, b.Limit, later)
		switch {
		case !expectHalt:
			return "expected no halt, but it " + v, false, true
		case b.Stage != 1 || w.maxStage > 1 || later > 0:
			return "expected a halt in batch 1 before batch 2 opened, but it " + v, false, true
		}
		return v, true, true
	case "running", "completed":
		if st.Stage < last {
			return "", false, false
		}
		t := st.Total
		waiting := t.Pending + t.Offered + t.Downloading + t.Installing + t.Silent
		if waiting > 0 || w.unreported() > 0 {
			return "", false, false // still installing, or crashed terminals not back yet
		}
		v := fmt.Sprintf("advanced through every batch in %.1fs, %s: %d installed, %d failed (%.1f%% of finished), %d offline and waiting (never failed)",
			elapsed, st.State, t.Installed, t.Failed, 100*float64(t.Failed)/float64(max(1, t.Installed+t.Failed)), t.Offline)
		if expectHalt {
			return "expected a halt in batch 1, but it " + v, false, true
		}
		return v, true, true
	case "aborted", "paused":
		return "the rollout was " + string(st.State) + " (" + st.Detail + ")", false, true
	}
	return "", false, false
}

// print prints a line of counts when they changed (or when final).
func (w *watcher) print(st server.RolloutStatus, final bool) {
	if len(st.Stages) == 0 {
		return
	}
	if !w.header {
		w.header = true
		fmt.Fprintln(w.out, "counts per stage: pending / in progress / installed / failed / offline (never offered) / silent (mid-update)")
		var b strings.Builder
		fmt.Fprintf(&b, "  %6s  %-9s %5s", "time", "state", "open")
		for i := range st.Stages {
			fmt.Fprintf(&b, "  %-24s", stageName(w.o, i))
		}
		fmt.Fprintln(w.out, strings.TrimRight(b.String(), " "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %5d", st.State, st.Stage)
	for _, c := range st.Stages {
		fmt.Fprintf(&b, "  %-24s", fmt.Sprintf("%d/%d/%d/%d/%d/%d", c.Pending, c.Offered+c.Downloading+c.Installing,
			c.Installed, c.Failed, c.Offline, c.Silent))
	}
	line := strings.TrimRight(b.String(), " ")
	if line == w.last {
		return
	}
	w.last = line
	fmt.Fprintf(w.out, "  %5.1fs  %s\n", time.Since(w.start).Seconds(), line)
}

// stageName names stage i: the pilot, or a batch with its percentage.
func stageName(o options, i int) string {
	switch {
	case i == 0:
		return "pilot"
	case i <= len(o.batches):
		return fmt.Sprintf("batch %d (%g%%)", i, o.batches[i-1])
	}
	return fmt.Sprintf("stage %d", i)
}
