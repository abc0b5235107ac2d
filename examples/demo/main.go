// Command demo runs a whole update on one machine: it generates keys, packs
// and signs a simulated firmware 1.1.0, starts an update server on
// 127.0.0.1, and starts 20 terminal agents at 1.0.0, each with its own state
// directory, talking to the server over real HTTP. Every terminal waits for
// two heartbeats since boot, downloads the release chunk by chunk, backs up
// its transaction data, installs by replacing its firmware file, migrates
// its data, and runs its health checks. One terminal's sign-in check fails:
// it must roll back to 1.0.0 with its data restored byte for byte. One
// loses power mid-install and must recover. One is in a sale when it could
// install: it must wait until the payment app ends its lease. One may
// install only in a maintenance window hours away in its own time zone: it
// downloads, then waits, and the server must hear why.
//
//	go run ./examples/demo
//
// It prints progress, then a table of terminal, from, to, outcome and time,
// and exits 0 only if every terminal reached the end state it should.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the windowed terminal's zone, on machines without a zone database

	"golang.org/x/sync/errgroup"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
	"github.com/upkeephq/upkeep/examples/internal/terminal"
	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/gate"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

func main() {
	var o options
	flag.IntVar(&o.terminals, "terminals", 20, "number of terminals")
	flag.IntVar(&o.failing, "fail", 7, "the terminal whose sign-in check fails (0 for none)")
	flag.IntVar(&o.powercut, "powercut", 13, "the terminal whose power is cut mid-install (0 for none)")
	flag.IntVar(&o.busy, "busy", 3, "the terminal in a sale when its install could start (0 for none)")
	flag.IntVar(&o.windowed, "windowed", 5, "the terminal whose install window is closed (0 for none)")
	flag.Int64Var(&o.size, "size", 8<<20, "firmware size in bytes")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	flag.BoolVar(&o.verbose, "v", false, "log what the server and agents do")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a temporary one, removed at the end)")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	terminals, failing, powercut int
	busy, windowed               int
	size                         int64
	timeout                      time.Duration
	verbose                      bool
	dir                          string
}

const (
	model      = "P300"
	component  = "firmware"
	enrollment = "demo-enrollment-secret"
	fromV      = "1.0.0"
	toV        = "1.1.0"
)

// sim is one simulated terminal and what the demo expects of it.
type sim struct {
	name     string
	fail     bool
	fs       durable.FS // where its files are
	dir      string
	data     string            // the data directory backed up before install
	original map[string][]byte // the data as it was before the update
	opts     terminal.Options
	term     *terminal.Terminal
	mu       sync.Mutex
	state    update.State
	ended    time.Duration
	// crash is the filesystem of the terminal whose power is cut: it holds
	// in memory what a real disk would, and forgets what was not synced.
	crash  *durabletest.CrashFS
	armed  bool
	cuts   int // power cuts that happened
	events *events
	// busy: the payment app is in a sale (holds a lease) when the install
	// could start; the sale ends a moment after the agent says it waits.
	busy      bool
	saleEnded time.Time // when the sale's lease ended
	installAt time.Time // when the install began
	// windowed: its install window is hours away; it downloads, then
	// waits and says why.
	windowed bool
	waiting  string // the reason it gave
}

// events are the moments worth a line of their own.
type events struct {
	mu    sync.Mutex
	lines []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, fmt.Sprintf(format, args...))
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.lines
	e.lines = nil
	return l
}

func run(ctx context.Context, o options, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "upkeep-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fmt.Fprintf(out, "upkeep demo: %d terminals, %s %s → %s\n\n", o.terminals, component, fromV, toV)

	// Keys: a root (on every terminal) certifies a signing key (on the
	// release server).
	keys, err := sign.NewKeyDir(nil, time.Now().Add(-time.Minute), 365*24*time.Hour)
	if err != nil {
		return err
	}
	ring, err := keys.KeyRing()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  keys       root %s certifies signing key %s\n", short(string(keys.RootPublic.ID)), short(string(keys.Signing.ID)))

	// The release: a simulated firmware image, packed and signed.
	oldFW, newFW := firmware(fromV, o.size), firmware(toV, o.size)
	in := filepath.Join(dir, "firmware-"+toV+".bin")
	if err := os.WriteFile(in, newFW, 0o644); err != nil {
		return err
	}
	packed, err := sign.Pack(ctx, sign.PackConfig{
		In: in, Out: filepath.Join(dir, "release"), Key: keys.Signing, Certs: []verify.Envelope{keys.Cert}, KeyRing: ring,
		Manifest: verify.Manifest{Component: component, Version: toV, Kind: verify.KindFirmware,
			Models: []string{model}, From: []string{"~1.0"}, Floor: fromV},
	})
	if err != nil {
		return err
	}
	a := packed.Manifest.Artifact
	fmt.Fprintf(out, "  release    %s: %s in %d chunks, signed, from ~1.0 only, model %s\n",
		packed.Manifest.ID(), mib(a.Size), len(a.Chunks), model)

	// The server, on a free loopback port.
	srv, err := server.New(server.Config{Keys: ring, Enrollment: enrollment, HeartbeatInterval: time.Second, Logger: logger})
	if err != nil {
		return err
	}
	if _, err := srv.Publish(ctx, packed.Dir, server.PublishOptions{}); err != nil {
		return err
	}
	handler, err := srv.Handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "  server     %s, release published\n", base)

	// The terminals.
	ev := &events{}
	sims := make([]*sim, o.terminals)
	for i := range sims {
		s := &sim{name: fmt.Sprintf("T%02d", i+1), fail: i+1 == o.failing, fs: durable.OS{},
			dir: filepath.Join(dir, fmt.Sprintf("t%02d", i+1)), events: ev, busy: i+1 == o.busy, windowed: i+1 == o.windowed}
		if i+1 == o.powercut {
			// This terminal's disk is a CrashFS: its power can be cut.
			s.crash = durabletest.NewCrashFS(uint64(i + 1))
			s.fs, s.dir = s.crash, fmt.Sprintf("/t%02d", i+1)
		}
		s.data = filepath.Join(s.dir, "data")
		if err := s.setUp(i, oldFW); err != nil {
			return err
		}
		s.opts = terminal.Options{
			Server: base, Keys: ring, Enrollment: enrollment, Serial: fmt.Sprintf("SN%08d", 1000+i), Model: model,
			StateDir: filepath.Join(s.dir, "state"), FS: s.fs, Component: component, Version: fromV,
			InstallPath: filepath.Join(s.dir, "firmware.bin"), DataDir: s.data, Policy: s.policy(),
			Checks:  s.checks(),
			Migrate: s.migrate,
			Heartbeat: heartbeat.Config{Interval: time.Second, MinInterval: 200 * time.Millisecond,
				InitialDelay: 300 * time.Millisecond},
			Observe: func(st update.Status) { s.observe(st, start) },
			Logger:  logger,
		}
		s.term, err = terminal.Open(ctx, s.opts)
		if err != nil {
			return err
		}
		sims[i] = s
	}
	var notes []string
	if o.failing > 0 && o.failing <= o.terminals {
		notes = append(notes, sims[o.failing-1].name+"'s sign-in check will fail")
	}
	if o.powercut > 0 && o.powercut <= o.terminals {
		notes = append(notes, sims[o.powercut-1].name+" will lose power while installing")
	}
	if o.busy > 0 && o.busy <= o.terminals {
		notes = append(notes, sims[o.busy-1].name+" will be in a sale when it could install")
	}
	if o.windowed > 0 && o.windowed <= o.terminals {
		w := sims[o.windowed-1].opts.Policy.Windows
		notes = append(notes, fmt.Sprintf("%s may install only in %s (%s time): not during this demo",
			sims[o.windowed-1].name, w.Install[0], w.Location))
	}
	fmt.Fprintf(out, "  terminals  %d registered at %s, each with its own state directory\n", o.terminals, fromV)
	for _, n := range notes {
		fmt.Fprintf(out, "             %s\n", n)
	}
	fmt.Fprintln(out)

	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	for _, s := range sims {
		g.Go(func() error {
			if err := s.run(gctx, start); !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
	}
	waitErr := progress(ctx, out, sims, srv, start, ev)
	stop()
	if err := g.Wait(); err != nil {
		return err
	}
	if waitErr != nil {
		return waitErr
	}
	return results(out, sims, srv, oldFW, newFW)
}

// progress prints the count of terminals in each state as it changes, until
// every terminal has ended and the server has every report.
func progress(ctx context.Context, out io.Writer, sims []*sim, srv *server.Server, start time.Time, ev *events) error {
	order := []update.State{update.StateIdle, update.StateGated, update.StateDownloading, update.StateDownloaded,
		update.StateBackingUp, update.StateInstalling, update.StateMigrating, update.StateVerifying,
		update.StateCommitting, update.StateRollingBack, update.StateCommitted, update.StateRolledBack}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		counts := map[update.State]int{}
		ended := 0
		for _, s := range sims {
			s.mu.Lock()
			counts[s.state]++
			if s.ended > 0 {
				ended++
			}
			s.mu.Unlock()
		}
		var parts []string
		for _, st := range order {
			if counts[st] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", st, counts[st]))
			}
		}
		for _, e := range ev.take() {
			fmt.Fprintf(out, "  [%5.2fs] %s\n", time.Since(start).Seconds(), e)
		}
		if line := strings.Join(parts, " · "); line != last {
			fmt.Fprintf(out, "  [%5.2fs] %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		if ended == len(sims) && reported(srv, sims) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every terminal finished in time (%d of %d): %w", ended, len(sims), ctx.Err())
		case <-tick.C:
		}
	}
}

// reported says whether the server has every terminal's report, and the
// waiting terminal's reason from its heartbeats.
func reported(srv *server.Server, sims []*sim) bool {
	byID := map[string]server.Terminal{}
	for _, t := range srv.Terminals() {
		byID[t.DeviceID] = t
	}
	for _, s := range sims {
		t := byID[s.term.DeviceID]
		if s.windowed && !strings.Contains(t.Waiting, "outside the install window") ||
			!s.windowed && (t.LastResult == nil || t.LastResult.Release != component+"@"+toV) {
			return false
		}
	}
	return true
}

// run runs the terminal until ctx is done. The terminal whose power is
// cut is started again, as after a reboot, on what its disk kept.
func (s *sim) run(ctx context.Context, start time.Time) error {
	if s.busy {
		if err := s.sell(ctx); err != nil {
			return err
		}
	}
	for {
		if s.crash == nil {
			return s.term.Run(ctx)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.term.Run(runCtx) }()
		tick := time.NewTicker(10 * time.Millisecond)
		var err error
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-tick.C:
				if s.crash.Crashed() {
					cancel() // the processor stops with the power
				}
			}
		}
		tick.Stop()
		cancel()
		if !s.crash.Crashed() {
			return err
		}
		at := ""
		for _, op := range s.crash.Trace() { // "#161 write /t13/..." then "#161 crash after write"
			if n, rest, ok := strings.Cut(strings.TrimPrefix(op, "#"), " "); ok && !strings.HasPrefix(rest, "crash") {
				at = fmt.Sprintf("operation %s: %s", n, rest)
			}
		}
		s.cuts++
		s.events.add("%s: power cut while installing, at %s; everything not synced is lost", s.name, at)
		s.crash.Restart(durabletest.LoseUnsynced)
		if s.term, err = terminal.Open(ctx, s.opts); err != nil {
			return err
		}
		s.events.add("%s: power back; the agent resumes from its journal in state %s", s.name, s.term.Agent.Status().State)
	}
}

func (s *sim) observe(st update.Status, start time.Time) {
	if s.crash != nil && st.State == update.StateInstalling && !s.armed {
		// Cut the power a few operations into the install: while the old
		// firmware is kept aside or the new one written.
		s.armed = true
		s.crash.CrashAfter(12)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.State == update.StateBackingUp && s.installAt.IsZero() {
		s.installAt = time.Now()
	}
	if s.busy && s.saleEnded.IsZero() && strings.Contains(st.Waiting, "lease held by pos-app") && s.waiting == "" {
		s.waiting = st.Waiting
		s.events.add("%s: in a sale; the agent waits: %s", s.name, st.Waiting)
	}
	if s.windowed && strings.Contains(st.Waiting, "outside the install window") && s.ended == 0 {
		s.waiting, s.state, s.ended = st.Waiting, update.StateDownloaded, time.Since(start)
		s.events.add("%s: downloaded; %s", s.name, st.Waiting)
		return
	}
	switch {
	case s.windowed && s.ended > 0:
	case st.State == update.StateIdle && st.Last != nil:
		// The update ended: show how.
		if st.Last.Outcome == transport.OutcomeCommitted {
			s.state = update.StateCommitted
		} else {
			s.state = update.StateRolledBack
		}
		s.ended = time.Since(start)
	case st.State == update.StateCommitted || st.State == update.StateRolledBack:
	case st.State == update.StateOffered:
		s.state = update.StateGated
	default:
		s.state = st.State
	}
}

// policy is the terminal's update policy: two heartbeats since boot, no
// sale in progress, and for the windowed terminal an install window one to
// two hours from now in Shanghai's time.
func (s *sim) policy() terminal.Policy {
	p := terminal.Policy{MinBeats: 2}
	if s.windowed {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			loc = time.FixedZone("CST", 8*3600)
		}
		h := time.Now().In(loc).Hour()
		w, err := gate.ParseWindow(fmt.Sprintf("daily %02d:00-%02d:00", (h+2)%24, (h+4)%24))
		if err != nil {
			panic(err) // the format above is always valid
		}
		p.Windows = gate.WindowsConfig{Location: loc, Install: []gate.Window{w}}
	}
	return p
}

// sell is the busy terminal's payment app: it takes a lease for a sale
// before the terminal starts, renews it while the sale runs, and ends it
// a second after the agent says it is waiting for it.
func (s *sim) sell(ctx context.Context) error {
	lease, err := s.term.Leases.Begin("pos-app", 2*time.Second)
	if err != nil {
		return err
	}
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		var seen time.Time
		for {
			select {
			case <-ctx.Done():
				lease.End()
				return
			case <-tick.C:
			}
			s.mu.Lock()
			waiting := s.waiting != ""
			s.mu.Unlock()
			if waiting && seen.IsZero() {
				seen = time.Now()
			}
			if !seen.IsZero() && time.Since(seen) >= time.Second {
				s.mu.Lock()
				lease.End()
				s.saleEnded = time.Now()
				s.mu.Unlock()
				s.events.add("%s: sale done, lease ended", s.name)
				return
			}
			if err := lease.Renew(2 * time.Second); err != nil {
				s.events.add("%s: lease lost: %v", s.name, err)
				return
			}
		}
	}()
	return nil
}

// results prints the table and checks every terminal against what it
// should have ended as.
func results(out io.Writer, sims []*sim, srv *server.Server, oldFW, newFW []byte) error {
	byID := map[string]server.Terminal{}
	for _, t := range srv.Terminals() {
		byID[t.DeviceID] = t
	}
	fmt.Fprintf(out, "\n  %-8s  %-5s  %-5s  %-11s  %-13s  %6s  %s\n", "TERMINAL", "FROM", "TO", "OUTCOME", "REASON", "TIME", "DATA")
	var problems []string
	committed, rolledBack, recovered, afterSale, waiting := 0, 0, 0, 0, 0
	for _, s := range sims {
		st := s.term.Agent.Status()
		fw, _ := durable.ReadFile(s.fs, filepath.Join(s.dir, "firmware.bin"), 1<<30, errTooLarge)
		data, err := snapshot(s.fs, s.data)
		if err != nil {
			return err
		}
		installed := ""
		for _, c := range st.Components {
			if c.Name == component {
				installed = c.Version
			}
		}
		var outcome transport.Outcome
		var reason transport.Reason
		if st.Last != nil {
			outcome, reason = st.Last.Outcome, st.Last.Reason
		}
		dataNote := "migrated"
		if s.cuts > 0 {
			dataNote = "migrated; power cut mid-install, recovered"
		}
		if s.busy {
			dataNote = "migrated; installed after its sale ended"
			if s.saleEnded.IsZero() || s.installAt.Before(s.saleEnded) {
				problems = append(problems, fmt.Sprintf("%s: installed during its sale (sale ended %v, install began %v)", s.name, s.saleEnded, s.installAt))
			}
		}
		if s.windowed {
			dataNote = "untouched; " + s.waiting
			t := byID[s.term.DeviceID]
			switch {
			case st.State != update.StateDownloaded || installed != fromV || !bytes.Equal(fw, oldFW):
				problems = append(problems, fmt.Sprintf("%s: state %s on %s, want downloaded and waiting on %s", s.name, st.State, installed, fromV))
			case !sameData(data, s.original):
				problems = append(problems, fmt.Sprintf("%s: data changed while waiting", s.name))
			case !strings.Contains(t.Waiting, "outside the install window"):
				problems = append(problems, fmt.Sprintf("%s: the server does not know why it waits (%q)", s.name, t.Waiting))
			default:
				waiting++
			}
			fmt.Fprintf(out, "  %-8s  %-5s  %-5s  %-11s  %-13s  %5.2fs  %s\n", s.name, fromV, installed, "waiting", "window", s.ended.Seconds(), dataNote)
			continue
		}
		if s.fail {
			dataNote = "restored byte for byte"
			switch {
			case outcome != transport.OutcomeRolledBack || reason != transport.ReasonSignIn:
				problems = append(problems, fmt.Sprintf("%s: outcome %s (%s), want rolled_back (sign_in_failed)", s.name, outcome, reason))
			case installed != fromV || !bytes.Equal(fw, oldFW):
				problems = append(problems, fmt.Sprintf("%s: not back on %s", s.name, fromV))
			case !sameData(data, s.original):
				dataNote = "NOT RESTORED"
				problems = append(problems, fmt.Sprintf("%s: data differs from the backup", s.name))
			default:
				rolledBack++
			}
		} else {
			switch {
			case outcome != transport.OutcomeCommitted:
				problems = append(problems, fmt.Sprintf("%s: outcome %s (%s), want committed", s.name, outcome, reason))
			case installed != toV || !bytes.Equal(fw, newFW):
				problems = append(problems, fmt.Sprintf("%s: not on %s", s.name, toV))
			case !sameData(data, migrated(s.original)):
				dataNote = "NOT MIGRATED EXACTLY ONCE"
				problems = append(problems, fmt.Sprintf("%s: data not migrated exactly once", s.name))
			default:
				committed++
				if s.cuts > 0 {
					recovered++
				}
				if s.busy {
					afterSale++
				}
			}
		}
		if t, ok := byID[s.term.DeviceID]; !ok || t.LastResult == nil || t.LastResult.Outcome != outcome {
			problems = append(problems, fmt.Sprintf("%s: the server has no matching report", s.name))
		}
		fmt.Fprintf(out, "  %-8s  %-5s  %-5s  %-11s  %-13s  %5.2fs  %s\n", s.name, fromV, installed, outcome, reason, s.ended.Seconds(), dataNote)
	}
	online := 0
	for _, t := range byID {
		if t.Online {
			online++
		}
	}
	fmt.Fprintf(out, "\n  server: %d terminals enrolled, %d online, a report from each that updated, the reason of each that waits\n", len(byID), online)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(out, "  FAIL", p)
		}
		return fmt.Errorf("%d terminals did not end as they should", len(problems))
	}
	var notes []string
	if recovered > 0 {
		notes = append(notes, fmt.Sprintf("%d through a power cut mid-install", recovered))
	}
	if afterSale > 0 {
		notes = append(notes, fmt.Sprintf("%d only after its sale ended", afterSale))
	}
	through := ""
	if len(notes) > 0 {
		through = " (" + strings.Join(notes, ", ") + ")"
	}
	waits := ""
	if waiting > 0 {
		waits = fmt.Sprintf("; %d downloaded and waiting for its install window, saying why", waiting)
	}
	fmt.Fprintf(out, "  PASS: %d committed on %s%s; %d rolled back to %s with data restored byte for byte%s\n",
		committed, toV, through, rolledBack, fromV, waits)
	return nil
}

// setUp gives a terminal its factory firmware and its data: a transaction
// journal, e-signature files and parameters, different on every terminal.
func (s *sim) setUp(i int, fw []byte) error {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	files := map[string][]byte{
		"transactions.db":      randomBytes(r, 64<<10),
		"esign/000123.sig":     randomBytes(r, 3000),
		"esign/000124.sig":     randomBytes(r, 2800),
		"params/terminal.json": []byte(fmt.Sprintf(`{"merchant":"M%06d","batch":%d,"trace":%d}`, 4000+i, 17, 900+i)),
	}
	for name, b := range files {
		p := filepath.Join(s.data, name)
		if err := durable.MkdirAll(s.fs, filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := durable.WriteFile(s.fs, p, b, 0o644); err != nil {
			return err
		}
	}
	s.original = files
	if err := durable.WriteFile(s.fs, filepath.Join(s.dir, "firmware.bin"), fw, 0o755); err != nil {
		return err
	}
	if s.crash != nil {
		s.crash.Persist() // the factory image is on the disk for good
	}
	return nil
}

// migrate is the new version's data migration: it rewrites the journal in
// a new schema and adds an index. A rollback must undo it.
func (s *sim) migrate(ctx context.Context, a *update.Artifact) error {
	db := filepath.Join(s.data, "transactions.db")
	b, err := durable.ReadFile(s.fs, db, 1<<30, errTooLarge)
	if err != nil {
		return err
	}
	// Each file is replaced atomically. The agent restores the backup
	// before running migrations again after a power cut, so they always
	// start from the old schema.
	if err := durable.WriteFile(s.fs, filepath.Join(s.data, "esign", "index.v2"), []byte("000123\n000124\n"), 0o644); err != nil {
		return err
	}
	return durable.WriteFile(s.fs, db, append([]byte("schema=2\n"), b...), 0o644)
}

// migrated is what migrate makes of the original data, once.
func migrated(original map[string][]byte) map[string][]byte {
	m := map[string][]byte{}
	for k, v := range original {
		m[k] = v
	}
	m["transactions.db"] = append([]byte("schema=2\n"), original["transactions.db"]...)
	m["esign/index.v2"] = []byte("000123\n000124\n")
	return m
}

// checks are run after the install: the firmware starts, sign-in (签到)
// succeeds, the echo test passes. The failing terminal's host refuses its
// sign-in.
func (s *sim) checks() []verify.Check {
	return []verify.Check{
		{Name: "firmware-starts", Timeout: 5 * time.Second, Run: func(ctx context.Context) error {
			b, err := durable.ReadFile(s.fs, filepath.Join(s.dir, "firmware.bin"), 1<<30, errTooLarge)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(b, []byte("SIMFW ")) {
				return errors.New("not a firmware image")
			}
			return nil
		}},
		verify.SignIn(func(ctx context.Context) error {
			if s.fail {
				return errors.New("host refused sign-in: working-key check value mismatch (simulated)")
			}
			return nil
		}, verify.Retry{Attempts: 1, Timeout: 5 * time.Second}),
		verify.Echo(func(ctx context.Context) error { return nil }, verify.Retry{Attempts: 1, Timeout: 5 * time.Second}),
	}
}

func firmware(v string, size int64) []byte {
	b := make([]byte, size)
	var seed [32]byte
	copy(seed[:], "upkeep demo firmware "+v)
	rand.NewChaCha8(seed).Read(b)
	copy(b, "SIMFW "+v+"\n")
	return b
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// snapshot reads every file under dir.
func snapshot(fsys durable.FS, dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	var walk func(string) error
	walk = func(d string) error {
		entries, err := fsys.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			b, err := durable.ReadFile(fsys, p, 1<<30, errTooLarge)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files[filepath.ToSlash(rel)] = b
		}
		return nil
	}
	return files, walk(dir)
}

var errTooLarge = errors.New("demo: file too large")

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !bytes.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}

func short(s string) string { return s[:min(12, len(s))] }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
