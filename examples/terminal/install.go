package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/examples/internal/terminal"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/maint"
	"github.com/upkeephq/upkeep/verify"
)

const installUsage = `usage: terminal install -package DIR -keys KEYS -state DIR -password PW [flags]

The manual update (主控维护密码): a technician installs a signed release
directory from local storage (a USB stick) with the maintenance password.
The flow: authorise, register if needed, heartbeat, install (verified exactly
as a download), restart, sign in; the report, naming the credential used,
reaches the server at once or at the next heartbeat.

There is no factory password: the first use sets one with -set-password NEW
(and -password "" or left out); changing it needs the old one in -password.
Wrong passwords lock further tries out for a wait that doubles.

`

// install is `terminal install`: the manual update from a local package.
func install(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, installUsage); fs.PrintDefaults() }
	pkg := fs.String("package", "", "the release directory `release pack` wrote (manifest.json and the artifact)")
	var d device
	d.register(fs)
	password := fs.String("password", os.Getenv("UPKEEP_MAINT_PASSWORD"), "the maintenance password (default $UPKEEP_MAINT_PASSWORD)")
	setPassword := fs.String("set-password", "", "set the maintenance password to this (first use), or change it (with -password), and exit")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || d.state == "" {
		if err == nil {
			fs.Usage()
		}
		return exitError(2)
	}
	ctx, stop := cli.Context()
	defer stop()
	pw, err := maint.NewPassword(maint.PasswordConfig{Path: filepath.Join(d.state, "maintenance-password.json"), Logger: cli.Logger(d.level)})
	if err != nil {
		return err
	}
	if *setPassword != "" {
		if err := pw.SetPassword(ctx, *password, *setPassword); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "maintenance password set")
		return nil
	}
	if *pkg == "" || d.keys == "" {
		fs.Usage()
		return exitError(2)
	}

	// 1. Authorise.
	auth, err := pw.Authorize(ctx, *password)
	if errors.Is(err, maint.ErrNotSet) {
		return errors.New("no maintenance password is set on this terminal: set one first with -set-password NEW")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "authorised: %s\n", auth.Credential)
	ring, err := d.prepare()
	if err != nil {
		return err
	}
	// 2. Register if needed; 3. heartbeat.
	var t *terminal.Terminal
	opts := d.options(ring)
	// 5. Sign in after the restart: here, the server answers a heartbeat.
	opts.Checks = []verify.Check{verify.SignIn(func(ctx context.Context) error { return t.Beat(ctx) },
		verify.Retry{Attempts: 3, Wait: 2 * time.Second})}
	t, err = terminal.Open(ctx, opts)
	if err != nil {
		return err
	}
	if err := t.Beat(ctx); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	fmt.Fprintf(stdout, "registered as %s; heartbeat sent\n", t.DeviceID)
	// 4. Install, restart, check: the agent's manual path.
	res, err := t.Agent.InstallPackage(ctx, *pkg, update.Technician{Method: auth.Method, Credential: auth.Credential})
	if err != nil {
		return err
	}
	flushCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := t.Agent.Flush(flushCtx); err != nil {
		fmt.Fprintf(stdout, "the report stays queued for the next heartbeat: %v\n", err)
	}
	fmt.Fprintf(stdout, "%s: %s (%s); now on %s\n", res.Release, res.Outcome, res.Reason, versions(t.Agent.Status().Components))
	if res.Outcome != transport.OutcomeCommitted {
		return exitError(1)
	}
	return nil
}
