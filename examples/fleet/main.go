// Command fleet simulates a fleet of terminals against an update server and
// prints a staged rollout as it advances stage by stage, or halts by
// itself:
//
//	go run ./examples/fleet [-terminals 10000] [-offline 0.1] [-fail 0.05] [-crash 0.01]
//		[-store memory|bolt|postgres] [-postgres DSN] [-server URL]
//
// By default it starts an update server in its own process on a free
// loopback port (the real HTTP handler, fleet store and background work,
// [server.Server.Run]), generates release keys and packs and publishes a
// small firmware 1.1.0 for model P300. Then it registers N simulated
// terminals at firmware 1.0.0 over HTTP with the real protocol client
// (transport/httptransport), creates a staged rollout through the operator
// API (a pilot of lab terminals, then batches of 1%, 10%, 50% and 100% of
// the fleet, halting when more than 10% of a stage's finished installs
// fail), and watches it.
//
// A simulated terminal is the protocol client alone, no agent: it beats at
// the interval the server directs, checks when the server says to, and
// when it is offered the release "downloads" and "installs" it for a
// simulated while (its heartbeats saying so), then reports it committed or
// failed with a reason code. The -fail share of each batch's installs
// fails, spread evenly over the batch's reports in the order they are made
// (with -fail 0.2 every fifth report fails, and a failure is sent only once
// the server has the reports before it), so the rollout's verdict follows
// from the flags, not from luck or from the order reports arrive in. The pilot's lab terminals never fail, go offline or
// crash. The -offline share of the fleet registers and never beats again:
// the server counts those offline, waiting, never failed. The -crash share
// goes silent partway through its download for long enough to be judged
// silent (holding its offer, it holds its stage back until it returns or
// is counted lost after a day of the server's time), then comes back and
// finishes.
//
// Time is compressed: the in-process server's clock runs -speed times as
// fast as the wall clock (Config.Now), and terminals divide every interval
// and retry-after the server gives them by -speed. The server directs
// 60-second heartbeats and judges a terminal offline after two missed
// beats and its minute of grace; installs take 20 to 60 seconds, and
// terminals a rollout holds back ask again after 60 to 120 seconds, all of
// the server's time. Rollouts are reconciled (offline devices swept,
// decided again) every half heartbeat by the simulator calling
// [server.Server.Reconcile]; [server.Server.Run] writes heartbeats in
// batches.
//
// It prints the rollout's counts per stage whenever they change (pending,
// in progress, installed, failed, offline and silent terminals, the newest
// open stage and the state) and ends with a verdict: the rollout must advance
// through every batch until only offline terminals wait, when -fail is at
// most the failure limit, or halt by itself in its first batch before the
// second opens, when -fail is above it. The exit status is 0 only if it
// did.
//
// With -server URL the terminals run against a remote server instead: it
// needs -enrollment, -operator-token (an admin's) and -release, published
// there for -model and upgradable from -from. Its own clock then decides
// when a silent terminal is offline, so -speed defaults to 1. Run it on a
// fresh server or with a fresh release: an earlier rollout of the same
// release that reached everyone would offer it around the new one.
//
// -direct skips HTTP: terminals call the in-process server's Go API (the
// transport.Service behind the handler) instead, for fleets larger than
// loopback HTTP and this machine can carry at the chosen speed.
//
// With -bench it measures the server instead of simulating a rollout:
// heartbeats and checks per second and their latency on loopback HTTP,
// with -terminals registered and a pool of -concurrency clients each
// sending as fast as it is answered (closed loop) or, with -rate, at a
// fixed total rate (open loop, latency counted from when each request was
// due). See bench.go and docs/PERFORMANCE.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line's.
type options struct {
	terminals int
	offline   float64 // share of terminals that never beat
	fail      float64 // share of each batch's installs that fail
	crash     float64 // share of terminals that go silent mid-update
	pilot     int     // lab terminals in the pilot stage
	batches   []float64
	limit     float64 // the rollout's failure rate limit, percent
	soak      time.Duration

	store    string // memory, bolt or postgres
	postgres string // DSN
	pgConns  int    // pgstore's pool size; 0 is its default
	dataDir  string // bolt's directory; empty means a temporary one

	server     string // remote server URL; empty runs one in process
	enrollment string
	opToken    string
	release    string
	model      string
	from       string

	speed   float64
	direct  bool
	conns   int
	timeout time.Duration
	every   time.Duration
	seed    uint64
	verbose bool

	bench       bool
	concurrency int
	duration    time.Duration
	runs        int
	rate        float64
	measure     []string // heartbeats, checks
	noBatch     bool
	cpuprofile  string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.terminals, "terminals", 10000, "simulated terminals")
	fs.Float64Var(&o.offline, "offline", 0.1, "share of terminals that register and never beat again")
	fs.Float64Var(&o.fail, "fail", 0.05, "share of each batch's installs that fail")
	fs.Float64Var(&o.crash, "crash", 0.01, "share of terminals that go silent mid-update, then come back")
	fs.IntVar(&o.pilot, "pilot", 5, "lab terminals in the pilot stage (they never fail)")
	batches := fs.String("batches", "1,10,50,100", "the rollout's batches: cumulative percentages of the fleet")
	fs.Float64Var(&o.limit, "limit", 10, "the rollout halts when more than this percentage of a stage's finished installs fail")
	fs.DurationVar(&o.soak, "soak", 0, "least time, in the server's clock, a stage stays the newest before the next opens")
	fs.StringVar(&o.store, "store", "memory", "fleet store of the in-process server: memory, bolt or postgres")
	fs.StringVar(&o.postgres, "postgres", cmpOr(os.Getenv("UPKEEP_POSTGRES"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL DSN for -store postgres (a fresh schema per run, dropped after; default $UPKEEP_POSTGRES)")
	fs.IntVar(&o.pgConns, "pg-conns", 0, "connections of -store postgres's pool (default pgstore's: 4, or the number of CPUs if more)")
	fs.StringVar(&o.dataDir, "data", "", "directory of -store bolt (default a temporary one, removed after)")
	fs.StringVar(&o.server, "server", "", "URL of a remote update server; empty runs one in this process")
	fs.StringVar(&o.enrollment, "enrollment", os.Getenv("UPKEEP_ENROLLMENT"), "enrollment credential of -server (default $UPKEEP_ENROLLMENT)")
	fs.StringVar(&o.opToken, "operator-token", os.Getenv("UPKEEP_OPERATOR_TOKEN"), "admin token of -server's operator API (default $UPKEEP_OPERATOR_TOKEN)")
	fs.StringVar(&o.release, "release", "firmware@1.1.0", "release to roll out (published on -server)")
	fs.StringVar(&o.model, "model", "P300", "terminals' model")
	fs.StringVar(&o.from, "from", "1.0.0", "terminals' installed version of the release's component")
	fs.Float64Var(&o.speed, "speed", 0, "how many times faster than the wall clock the simulation runs (default 30 in process, up to 300 for small fleets; 1 with -server)")
	fs.BoolVar(&o.direct, "direct", false, "terminals call the in-process server's Go API instead of HTTP")
	fs.IntVar(&o.conns, "conns", 256, "most HTTP connections to the server")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "give up after this long")
	fs.DurationVar(&o.every, "every", 500*time.Millisecond, "how often to read the rollout's counts")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the terminals' roles and delays")
	fs.BoolVar(&o.verbose, "v", false, "log the in-process server's warnings")
	fs.BoolVar(&o.bench, "bench", false, "measure heartbeats and checks per second instead of simulating a rollout")
	fs.IntVar(&o.concurrency, "concurrency", 256, "-bench: concurrent clients")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "-bench: length of each measurement")
	fs.IntVar(&o.runs, "runs", 3, "-bench: measurements of each kind; medians are printed")
	fs.Float64Var(&o.rate, "rate", 0, "-bench: requests per second to send (open loop); 0 sends as fast as answered")
	measure := fs.String("measure", "heartbeats,checks", "-bench: what to measure, heartbeats and/or checks")
	fs.BoolVar(&o.noBatch, "no-batch", false, "-bench: leave Server.Run off, so each heartbeat is a transaction of its own (for comparison)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole process to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.batches, err = parseBatches(*batches); err != nil {
		return o, err
	}
	for m := range strings.SplitSeq(*measure, ",") {
		if m = strings.TrimSpace(m); m != "heartbeats" && m != "checks" {
			return o, fmt.Errorf("-measure %q: want heartbeats, checks or both", *measure)
		}
		o.measure = append(o.measure, strings.TrimSpace(m))
	}
	switch {
	case o.terminals < 1:
		return o, errors.New("-terminals: want 1 or more")
	case !share(o.offline) || !share(o.fail) || !share(o.crash) || o.offline+o.crash > 1:
		return o, errors.New("-offline, -fail and -crash are shares from 0 to 1; -offline and -crash together at most 1")
	case o.pilot < 0 || o.pilot > o.terminals:
		return o, errors.New("-pilot: want 0 to -terminals")
	case o.limit <= 0 || o.limit > 100:
		return o, errors.New("-limit: want a percentage above 0, at most 100")
	case o.speed < 0:
		return o, errors.New("-speed: want more than 0")
	case o.pgConns < 0:
		return o, errors.New("-pg-conns: want 0 (the default) or more")
	case o.conns < 1 || o.concurrency < 1 || o.runs < 1 || o.duration <= 0 || o.rate < 0 || o.every <= 0:
		return o, errors.New("-conns, -concurrency, -runs, -duration and -every must be positive, -rate not negative")
	}
	switch o.store {
	case "memory", "bolt", "postgres":
	default:
		return o, fmt.Errorf("-store %q: want memory, bolt or postgres", o.store)
	}
	if o.noBatch && !o.bench {
		return o, errors.New("-no-batch is for -bench: a simulated rollout needs Server.Run")
	}
	if o.server != "" {
		if o.enrollment == "" || (o.opToken == "" && !o.bench) {
			return o, errors.New("-server needs -enrollment and, to create the rollout, -operator-token")
		}
		if o.direct {
			return o, errors.New("-direct needs the server in this process: drop -server")
		}
	}
	if o.speed == 0 {
		o.speed = defaultSpeed(o)
	}
	return o, nil
}

// defaultSpeed is 1 against a remote server, whose clock is the wall's,
// and for -bench;
// in process, 30 for 10,000 terminals (about 8,000 requests a second) and
// faster for smaller fleets, up to 300.
func defaultSpeed(o options) float64 {
	if o.server != "" || o.bench {
		return 1
	}
	return min(300, max(30, 300000/float64(o.terminals)))
}

func share(f float64) bool { return f >= 0 && f <= 1 }

func parseBatches(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("-batches %q: %v", s, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// run runs the command and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "fleet:", err)
		return 2
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if o.bench {
		err = bench(ctx, o, stdout, stderr)
	} else {
		err = simulate(ctx, o, stdout, stderr)
	}
	var v *verdictError
	switch {
	case errors.As(err, &v):
		return 1 // the verdict is printed
	case err != nil:
		fmt.Fprintln(stderr, "fleet:", err)
		return 1
	}
	return 0
}
