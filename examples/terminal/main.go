// Command terminal runs one simulated payment terminal against an upkeep
// update server: it registers (once; its identity is kept in its state
// directory), beats, and takes the releases offered to it, installing each
// by replacing a file. Its state survives restarts and power cuts.
//
//	go run ./examples/terminal -server http://127.0.0.1:8080 -keys KEYS -state DIR \
//	    -enrollment SECRET -serial SN0001 -model P300 [-once] [-config policy.json] [-sale 20s]
//
// KEYS needs only root.pub. The installed file is DIR/firmware.bin unless
// -install says otherwise; -data names a directory snapshotted before every
// install and restored on rollback. With -once the terminal exits after its
// first update ends: 0 if it committed, 1 otherwise. -config names an update
// policy file (time zone, maintenance windows, freezes, idle time, battery,
// network, lease TTL, a merchant prompt on stdin: see config.go); -sale
// simulates a sale in progress, during which no install starts.
//
// Manual update, by a technician with the maintenance password, from a
// release directory on local storage (see install.go):
//
//	go run ./examples/terminal install -package DIR -keys KEYS -state DIR -password PW
//
// Fetch-only mode downloads and verifies a release without installing it,
// from any HTTP server with Range support that serves the release
// directory (the engine timed like any other download tool):
//
//	go run ./examples/terminal fetch -keys KEYS -manifest FILE -from URL -out FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the policy file's time zone, on terminals without a zone database

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/examples/internal/terminal"
	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "fetch":
		err = fetch(os.Args[2:], os.Stdout, os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "install":
		err = install(os.Args[2:], os.Stdout, os.Stderr)
	default:
		err = run(os.Args[1:])
	}
	var exit exitError
	switch {
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case err != nil:
		fmt.Fprintln(os.Stderr, "terminal:", err)
		os.Exit(1)
	}
}

type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func run(args []string) error {
	fs := flag.NewFlagSet("terminal", flag.ContinueOnError)
	var d device
	d.register(fs)
	data := fs.String("data", "", "directory backed up before each install and restored on rollback")
	beats := fs.Int("beats", 2, "heartbeats since boot before an automatic update")
	policyFile := fs.String("config", "", "update policy file (JSON): time zone, windows, freezes, idle, battery, network, lease TTL, prompt (see config.go)")
	sale := fs.Duration("sale", 0, "simulate a sale in progress for this long from the start: the payment app holds a lease, and no install starts meanwhile")
	once := fs.Bool("once", false, "exit after the first update ends: 0 if committed, 1 otherwise")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if d.state == "" {
		return errors.New("-state is required")
	}
	ring, err := d.prepare()
	if err != nil {
		return err
	}
	policy := terminal.Policy{MinBeats: *beats}
	leaseTTL := time.Duration(0)
	if *policyFile != "" {
		c, err := readConfig(*policyFile)
		if err != nil {
			return err
		}
		if policy, err = c.policy(*beats, d.state, os.Stdin, os.Stdout); err != nil {
			return fmt.Errorf("%s: %w", *policyFile, err)
		}
		leaseTTL = time.Duration(c.LeaseTTL)
	}
	ctx, stop := cli.Context()
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	var last *transport.Result
	bar := cli.NewBar(os.Stderr)
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("[%6.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	opts := d.options(ring)
	opts.DataDir, opts.Policy = *data, policy
	// The server directs the interval; allow short ones for evaluation.
	opts.Heartbeat = heartbeat.Config{InitialDelay: time.Second, MinInterval: time.Second}
	opts.Observe = func(s update.Status) {
		if s.State == update.StateIdle && s.Last != nil {
			say("%s ended: %s (%s)", s.Last.Release, s.Last.Outcome, s.Last.Reason)
			mu.Lock()
			last = s.Last
			mu.Unlock()
			if *once {
				cancel() // Run returns; the report is flushed below
			}
			return
		}
		line := fmt.Sprintf("%s: %s", s.Release, s.State)
		if s.Waiting != "" {
			line += " — waiting: " + s.Waiting
		}
		say("%s", line)
	}
	opts.Progress = func(p update.Progress) {
		bar.Update(p.Release, p.Done, p.Total, p.Rate, p.ETA)
		if p.Done == p.Total {
			bar.Done()
		}
	}
	t, err := terminal.Open(ctx, opts)
	if err != nil {
		return err
	}
	st := t.Agent.Status()
	say("terminal %s (%s, %s) on %s; state %s", d.serial, t.DeviceID, d.model, versions(st.Components), st.State)
	if *sale > 0 {
		if err := simulateSale(ctx, t, *sale, leaseTTL, say); err != nil {
			return err
		}
	}
	err = t.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		return err
	}
	// Leave nothing in the outbox that could be sent now.
	flushCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := t.Agent.Flush(flushCtx); err != nil {
		say("reports stay queued for the next start: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if *once {
		if last == nil {
			return exitError(1) // interrupted before an update ended
		}
		if last.Outcome != transport.OutcomeCommitted {
			return exitError(1)
		}
		say("now on %s", versions(t.Agent.Status().Components))
	}
	return nil
}

// device is what every subcommand that runs the terminal is told about it.
type device struct {
	server, keys, state, enrollment    string
	serial, model, hardware            string
	component, version, install, level string
}

func (d *device) register(fs *flag.FlagSet) {
	fs.StringVar(&d.server, "server", "http://127.0.0.1:8080", "update server base URL")
	fs.StringVar(&d.keys, "keys", "", "key directory from `release keygen`, or its root.pub (required)")
	fs.StringVar(&d.state, "state", "", "state directory: identity, journal, downloads, backups (required)")
	fs.StringVar(&d.enrollment, "enrollment", os.Getenv("UPKEEP_ENROLLMENT"), "enrollment credential for the first registration (default $UPKEEP_ENROLLMENT)")
	fs.StringVar(&d.serial, "serial", "", "serial number (default: derived from the state directory)")
	fs.StringVar(&d.model, "model", "P300", "terminal model")
	fs.StringVar(&d.hardware, "hardware", "", "hardware revision")
	fs.StringVar(&d.component, "component", "firmware", "the installed component updates replace")
	fs.StringVar(&d.version, "version", "1.0.0", "factory version of the component (read on first start only)")
	fs.StringVar(&d.install, "install", "", "file updates replace (default STATE/firmware.bin)")
	fs.StringVar(&d.level, "log", "warn", "log level: debug, info, warn, error")
}

// prepare reads the root key, fills in the defaults that derive from the
// state directory, and gives a fresh terminal its factory image.
func (d *device) prepare() (*verify.KeyRing, error) {
	ring, err := cli.KeyRing(d.keys)
	if err != nil {
		return nil, err
	}
	if d.serial == "" {
		d.serial = serialOf(d.state)
	}
	if d.install == "" {
		d.install = filepath.Join(d.state, "firmware.bin")
	}
	return ring, factoryImage(d.install, d.component, d.version)
}

// options are the terminal's options as the flags give them.
func (d *device) options(ring *verify.KeyRing) terminal.Options {
	return terminal.Options{
		Server: d.server, Keys: ring, Enrollment: d.enrollment, Serial: d.serial, Model: d.model, Hardware: d.hardware,
		StateDir: d.state, Component: d.component, Version: d.version, InstallPath: d.install, Logger: cli.Logger(d.level),
	}
}

// serialOf derives a serial number from the state directory's name.
func serialOf(state string) string {
	abs, _ := filepath.Abs(state)
	return "SN-" + strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, filepath.Base(abs)), "-")
}

// factoryImage gives a fresh terminal its factory version at path.
func factoryImage(path, component, version string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return os.WriteFile(path, []byte("factory "+component+" "+version+"\n"), 0o755)
	}
	return nil
}

// simulateSale is the payment app in a sale: it takes a lease, renews it
// while the sale lasts, and ends it.
func simulateSale(ctx context.Context, t *terminal.Terminal, d, ttl time.Duration, say func(string, ...any)) error {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	lease, err := t.Leases.Begin("pos-app", ttl)
	if err != nil {
		return err
	}
	say("sale in progress for %s (lease held by pos-app)", d)
	go func() {
		defer lease.End()
		end := time.NewTimer(d)
		defer end.Stop()
		renew := time.NewTicker(ttl / 3)
		defer renew.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-end.C:
				say("sale done: lease ended")
				return
			case <-renew.C:
				if err := lease.Renew(ttl); err != nil {
					say("sale: %v", err)
					return
				}
			}
		}
	}()
	return nil
}

func versions(cs []transport.Component) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+" "+c.Version)
	}
	return strings.Join(parts, ", ")
}
