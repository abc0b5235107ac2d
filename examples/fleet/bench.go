package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server"
)

// Targets of the update server issue, on a 2-core machine with client and
// server on it.
const (
	targetBeatsBolt     = 10000
	targetBeatsPostgres = 5000
	targetP99           = 50 * time.Millisecond
)

// measurement is one timed stretch of one kind of request.
type measurement struct {
	due          int // open loop: requests that fell due
	done, errors int
	elapsed      time.Duration
	p50, p99     time.Duration
}

func (m measurement) rate() float64 { return float64(m.done) / m.elapsed.Seconds() }

// bench measures heartbeats and checks per second, with their latency,
// on the server: in this process (the default, with -store) on loopback
// HTTP, or at -server.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) error {
	o.conns = o.concurrency
	e, err := newEnv(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := e.close(); err != nil {
			fmt.Fprintln(stderr, "fleet: shutting down:", err)
		}
	}()
	mode := "closed loop: each client sends its next request when answered"
	if o.rate > 0 {
		mode = fmt.Sprintf("open loop: %g requests/s due on a fixed schedule, latency counted from when each was due", o.rate)
	}
	fmt.Fprintf(stdout, "fleet bench: %d terminals, %d concurrent clients on HTTP, %d runs of %v per kind\n  %s\n",
		o.terminals, o.concurrency, o.runs, o.duration, mode)
	fmt.Fprintf(stdout, "  machine: %s\n  server: %s; Run on (heartbeats batched)\n", machine(), e.desc)

	runID := randomHex(3)
	ts := roles(options{terminals: o.terminals, seed: o.seed}, runID)
	start := time.Now()
	if err := register(ctx, e, o, ts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  registered %d terminals in %.1fs\n", len(ts), time.Since(start).Seconds())
	if e.srv != nil {
		// A rollout under way, its first batch open: most checks are told
		// to wait, 1% are offered the release.
		spec := server.RolloutSpec{ID: "bench-" + runID, Release: e.release, Models: []string{e.model}}
		if _, err := e.op.createRollout(ctx, spec); err != nil {
			return err
		}
	}

	seqs := make([]atomic.Uint64, len(ts))
	components := []transport.Component{{Name: e.component, Version: e.from}}
	beat := func(ctx context.Context, i int) error {
		_, err := ts[i].api.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: seqs[i].Add(1), State: "idle",
			Components: components, Network: "wifi", Battery: &transport.Battery{Percent: 80, OnMains: true}})
		return err
	}
	check := func(ctx context.Context, i int) error {
		_, err := ts[i].api.Check(ctx, &transport.CheckRequest{Model: e.model, Components: components})
		return err
	}
	// Warm up: connections open, caches filled. Closed loop, whatever -rate.
	warm := o
	warm.rate = 0
	measure(ctx, warm, len(ts), time.Second, beat)
	measure(ctx, warm, len(ts), time.Second, check)

	type kind struct {
		name string
		call func(context.Context, int) error
		path string
	}
	var kinds []kind
	for _, m := range o.measure {
		switch m {
		case "heartbeats":
			kinds = append(kinds, kind{m, beat, transport.PathHeartbeat})
		case "checks":
			kinds = append(kinds, kind{m, check, transport.PathCheck})
		}
	}
	results := make([][]measurement, len(kinds))
	for run := 1; run <= o.runs; run++ {
		for k, kind := range kinds {
			if e.writes != nil {
				e.writes.take("heartbeats")
				e.served[kind.path].reset()
			}
			m := measure(ctx, o, len(ts), o.duration, kind.call)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			results[k] = append(results[k], m)
			fmt.Fprintf(stdout, "  run %d  %-10s %7.0f/s  p50 %6.2fms  p99 %6.2fms  errors %d",
				run, kind.name, m.rate(), ms(m.p50), ms(m.p99), m.errors)
			if e.writes != nil {
				p50, p99 := e.served[kind.path].quantiles()
				fmt.Fprintf(stdout, "  in the server p50 %.2fms p99 %.2fms", ms(p50), ms(p99))
				if w := e.writes.take("heartbeats"); w.calls > 0 && kind.name == "heartbeats" {
					fmt.Fprintf(stdout, "  (%d store writes of %.0f beats, %.2fms on average, the longest %.1fms)",
						w.calls, float64(w.records)/float64(w.calls), ms(w.took/time.Duration(w.calls)), ms(w.longest))
				}
			}
			fmt.Fprintln(stdout)
		}
	}
	fmt.Fprintf(stdout, "medians of %d runs:\n", o.runs)
	for k, kind := range kinds {
		rate, p50, p99 := medians(results[k])
		fmt.Fprintf(stdout, "  %-10s %7.0f/s  p50 %6.2fms  p99 %6.2fms\n", kind.name, rate, ms(p50), ms(p99))
	}
	if e.srv == nil || kinds[0].name != "heartbeats" {
		return nil
	}
	target := float64(targetBeatsBolt)
	if o.store == "postgres" {
		target = targetBeatsPostgres
	}
	rate, _, p99 := medians(results[0])
	if o.rate <= 0 {
		// Closed loop: the rate is the most the server answers; the
		// latency is what this many clients queue for.
		fmt.Fprintf(stdout, "target (%s store): heartbeats ≥ %.0f/s: %s\n", o.store, target, against(rate, target, true))
		return nil
	}
	kept := 0
	for _, m := range results[0] {
		if m.done == m.due && m.errors == 0 {
			kept++
		}
	}
	fmt.Fprintf(stdout, "targets (%s store) at %g heartbeats/s offered: every heartbeat answered in %d of %d runs; p99 ≤ %v: %s\n",
		o.store, o.rate, kept, len(results[0]), targetP99, against(ms(p99), ms(targetP99), false))
	if o.rate < target {
		fmt.Fprintf(stdout, "  (the offered rate is below the target's %.0f/s)\n", target)
	}
	return nil
}

// measure runs call for d with o.concurrency clients, each call for the
// next of n terminals in turn: as fast as answered, or at o.rate.
func measure(ctx context.Context, o options, n int, d time.Duration, call func(context.Context, int) error) measurement {
	var next atomic.Int64
	pick := func() int { return int(next.Add(1)-1) % n }
	lat := make([][]time.Duration, o.concurrency)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	var lastDone atomic.Int64 // nanoseconds after start
	record := func(w int, due time.Time, err error) {
		now := time.Now()
		if err != nil {
			errs.Add(1)
			return
		}
		lat[w] = append(lat[w], now.Sub(due))
		for {
			old := lastDone.Load()
			if int64(now.Sub(start)) <= old || lastDone.CompareAndSwap(old, int64(now.Sub(start))) {
				break
			}
		}
	}
	if o.rate <= 0 {
		stop := start.Add(d)
		for w := range o.concurrency {
			wg.Go(func() {
				for ctx.Err() == nil {
					t0 := time.Now()
					if !t0.Before(stop) {
						return
					}
					record(w, t0, call(ctx, pick()))
				}
			})
		}
		wg.Wait()
	} else {
		// Requests fall due every 1/rate; a late one waits in the queue,
		// and its wait counts in its latency. Whatever is not sent by
		// twice the duration is dropped.
		total := int(o.rate * d.Seconds())
		due := make(chan time.Time, total)
		hard, cancel := context.WithDeadline(ctx, start.Add(2*d))
		defer cancel()
		for w := range o.concurrency {
			wg.Go(func() {
				for t := range due {
					if hard.Err() != nil {
						continue
					}
					if wait := time.Until(t); wait > 0 {
						time.Sleep(wait)
					}
					record(w, t, call(hard, pick()))
				}
			})
		}
		for i := range total {
			due <- start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
		}
		close(due)
		wg.Wait()
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	// Open loop: the rate is over the schedule, or until the last
	// answer when the server fell behind.
	m := measurement{done: len(all), errors: int(errs.Load()), elapsed: max(d, time.Duration(lastDone.Load()))}
	if o.rate > 0 {
		m.due = int(o.rate * d.Seconds())
	}
	if len(all) > 0 {
		m.p50, m.p99 = all[len(all)*50/100], all[min(len(all)-1, len(all)*99/100)]
	}
	return m
}

func medians(ms []measurement) (rate float64, p50, p99 time.Duration) {
	rates := make([]float64, len(ms))
	p50s := make([]time.Duration, len(ms))
	p99s := make([]time.Duration, len(ms))
	for i, m := range ms {
		rates[i], p50s[i], p99s[i] = m.rate(), m.p50, m.p99
	}
	slices.Sort(rates)
	slices.Sort(p50s)
	slices.Sort(p99s)
	return rates[len(ms)/2], p50s[len(ms)/2], p99s[len(ms)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// against says whether v meets target (at least it when atLeast, at most
// it otherwise) and by how much.
func against(v, target float64, atLeast bool) string {
	ratio := v / target
	if atLeast == (v >= target) || v == target {
		return fmt.Sprintf("met (%.2f× the target)", ratio)
	}
	return fmt.Sprintf("MISSED (%.2f× the target)", ratio)
}

// machine describes the machine: CPU model, CPUs, Go, and the load when
// the run began (these machines are shared).
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimLeft(name, " \t:"))
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load " + strings.Join(f[:3], " ") + " at start"
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s%s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
}
