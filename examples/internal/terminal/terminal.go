// Package terminal wires upkeep's terminal-side packages into one
// simulated payment terminal, as a vendor would in their own software. The
// demo and the terminal example run it; read it as a wiring example.
//
// A terminal here has an installed "firmware" file that updates replace
// (update/fileinstall), a data directory (its transaction journal) that a
// backup hook snapshots before each install, and health checks after it.
package terminal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/fileinstall"
	"github.com/upkeephq/upkeep/update/gate"
	"github.com/upkeephq/upkeep/verify"
)

// Options describe one terminal.
type Options struct {
	Server     string // the update server's base URL
	Keys       *verify.KeyRing
	Enrollment string
	Serial     string
	Model      string
	Hardware   string
	// StateDir holds the agent's state and the terminal's identity.
	StateDir string
	// FS is the filesystem everything above is on; nil means durable.OS.
	// The demo gives one terminal a durabletest.CrashFS to cut its power.
	FS durable.FS
	// Component and Version are what is installed at the factory.
	Component string
	Version   string
	// InstallPath is the file updates replace.
	InstallPath string
	// DataDir is backed up before every install and restored on rollback.
	DataDir string
	// Checks run after each install.
	Checks []verify.Check
	// Migrate, if set, migrates the data after the install; a rollback
	// undoes it by restoring the backup.
	Migrate func(ctx context.Context, a *update.Artifact) error
	// Policy is when the terminal may update: heartbeats and idle time
	// since boot, sales in progress (Terminal.Leases), settlement,
	// maintenance windows, battery, network, the merchant's prompt.
	Policy Policy
	// Heartbeat tunes the beat loop; Sender, Status, Counter and
	// OnDirective are filled in.
	Heartbeat heartbeat.Config
	// Observe and Progress are passed to the agent.
	Observe  func(update.Status)
	Progress func(update.Progress)
	Logger   *slog.Logger
}

// Terminal is a wired terminal.
type Terminal struct {
	DeviceID string
	Agent    *update.Agent
	Beats    *heartbeat.Counter
	// Leases is where the payment app takes a lease for each sale: no
	// install starts while one is live.
	Leases *gate.Leases
	opts   Options
	client *httptransport.Client
}

type identity struct {
	DeviceID string `json:"device_id"`
	Token    string `json:"token"`
}

// Open registers the terminal if it has no identity yet and builds its
// agent. A terminal whose state directory survived a restart (or a power
// cut) keeps its identity and resumes any update in progress.
func Open(ctx context.Context, o Options) (*Terminal, error) {
	o.FS = durable.Or(o.FS)
	if err := durable.MkdirAll(o.FS, o.StateDir, 0o700); err != nil {
		return nil, err
	}
	client, err := httptransport.New(httptransport.Config{BaseURL: o.Server, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	id, err := loadIdentity(o.FS, o.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		resp, rerr := client.Register(ctx, &transport.RegisterRequest{
			Enrollment: o.Enrollment, Serial: o.Serial, Model: o.Model, HardwareRevision: o.Hardware,
			Components: []transport.Component{{Name: o.Component, Version: o.Version}},
		})
		if rerr != nil {
			return nil, fmt.Errorf("register %s: %w", o.Serial, rerr)
		}
		id = identity{DeviceID: resp.DeviceID, Token: resp.Token}
		b, _ := json.Marshal(id)
		if err := durable.WriteFile(o.FS, filepath.Join(o.StateDir, "identity.json"), b, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	client.SetToken(id.Token)

	t := &Terminal{DeviceID: id.DeviceID, Beats: &heartbeat.Counter{}, Leases: &gate.Leases{}, opts: o, client: client}
	auto, manual, err := o.Policy.Gates(t.Beats, t.Leases)
	if err != nil {
		return nil, err
	}
	observe := t.Leases.ObserveInstalls(o.Observe) // no sale starts during an install
	var hooks []backup.Hook
	if o.DataDir != "" {
		data, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, err
		}
		h, err := backup.NewFilesOn(o.FS, "pos-data", data)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, h)
	}
	var inst update.Installer = &fileinstall.Installer{Path: o.InstallPath, FS: o.FS}
	var migrations []update.Migration
	if o.Migrate != nil {
		migrations = []update.Migration{{Name: "data", Run: o.Migrate}}
	}
	t.Agent, err = update.New(update.Config{
		Source:     client,
		Keys:       o.Keys,
		Installer:  inst,
		StateDir:   filepath.Join(o.StateDir, "agent"),
		FS:         o.FS,
		Device:     update.Device{Model: o.Model, HardwareRevision: o.Hardware},
		Installed:  map[string]string{o.Component: o.Version},
		Backups:    hooks,
		Migrations: migrations,
		Checks:     o.Checks,
		Gate:       auto,
		ManualGate: manual,
		Observe:    observe,
		Progress:   o.Policy.metered(o.Progress),
		Logger:     o.Logger,
	})
	if err != nil {
		return nil, err
	}
	// An install resumed after a power cut is no state change: refuse
	// sales from the start.
	observe(t.Agent.Status())
	return t, nil
}

// Beat sends one heartbeat now and counts it: the manual update's "heartbeat
// upload" before installing, and its sign-in check after.
func (t *Terminal) Beat(ctx context.Context) error {
	st, err := t.Agent.Heartbeat(ctx)
	if err != nil {
		return err
	}
	if _, err := t.client.Heartbeat(ctx, st); err != nil {
		return err
	}
	t.Beats.RecordSuccess(time.Now())
	return nil
}

// Run beats and updates until ctx is done.
func (t *Terminal) Run(ctx context.Context) error {
	hb := t.opts.Heartbeat
	hb.Sender, hb.Status, hb.Counter, hb.Logger = t.client, t.Agent.Heartbeat, t.Beats, t.opts.Logger
	hb.OnDirective = func(ctx context.Context, d transport.Directive) {
		if d == transport.DirectiveCheck {
			t.Agent.CheckNow()
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return heartbeat.Run(ctx, hb) })
	g.Go(func() error { return t.Agent.Run(ctx) })
	return g.Wait()
}

func loadIdentity(fsys durable.FS, dir string) (identity, error) {
	b, err := durable.ReadFile(fsys, filepath.Join(dir, "identity.json"), 4096, errors.New("too large"))
	if err != nil {
		return identity{}, err
	}
	var id identity
	if err := jsonwire.Unmarshal(b, &id); err != nil {
		return identity{}, fmt.Errorf("identity.json: %w", err)
	}
	return id, nil
}
