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
	"os"
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
	// Component and Version are what is installed at the factory.
	Component string
	Version   string
	// InstallPath is the file updates replace.
	InstallPath string
	// DataDir is backed up before every install and restored on rollback.
	DataDir string
	// Checks run after each install.
	Checks []verify.Check
	// Install, if set, runs after the file is replaced (a data migration).
	Install func(ctx context.Context, a *update.Artifact) error
	// MinBeats is how many heartbeats since boot the terminal waits for
	// before it updates (the domain's "two heartbeats").
	MinBeats int
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
	opts     Options
	client   *httptransport.Client
}

type identity struct {
	DeviceID string `json:"device_id"`
	Token    string `json:"token"`
}

// Open registers the terminal if it has no identity yet and builds its
// agent. A terminal whose state directory survived a restart (or a power
// cut) keeps its identity and resumes any update in progress.
func Open(ctx context.Context, o Options) (*Terminal, error) {
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	client, err := httptransport.New(httptransport.Config{BaseURL: o.Server, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	id, err := loadIdentity(o.StateDir)
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
		if err := durable.WriteFile(durable.OS{}, filepath.Join(o.StateDir, "identity.json"), b, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	client.SetToken(id.Token)

	t := &Terminal{DeviceID: id.DeviceID, Beats: &heartbeat.Counter{}, opts: o, client: client}
	var hooks []backup.Hook
	if o.DataDir != "" {
		data, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, err
		}
		h, err := backup.NewFiles("pos-data", data)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, h)
	}
	var inst update.Installer = &fileinstall.Installer{Path: o.InstallPath}
	if o.Install != nil {
		inst = &migrating{Installer: &fileinstall.Installer{Path: o.InstallPath}, migrate: o.Install}
	}
	t.Agent, err = update.New(update.Config{
		Source:    client,
		Keys:      o.Keys,
		Installer: inst,
		StateDir:  filepath.Join(o.StateDir, "agent"),
		Device:    update.Device{Model: o.Model, HardwareRevision: o.Hardware},
		Installed: map[string]string{o.Component: o.Version},
		Backups:   hooks,
		Checks:    o.Checks,
		Gate:      t.bootGate,
		Observe:   o.Observe,
		Progress:  o.Progress,
		Logger:    o.Logger,
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// bootGate holds automatic updates until the terminal has completed
// MinBeats heartbeats since boot.
func (t *Terminal) bootGate(ctx context.Context, req update.GateRequest) error {
	if n := t.Beats.Count(); n < t.opts.MinBeats {
		return update.NotNow(250*time.Millisecond,
			fmt.Sprintf("%d of %d heartbeats since boot", n, t.opts.MinBeats))
	}
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

// migrating runs a data migration after the file install; on rollback the
// backup restore undoes it.
type migrating struct {
	update.Installer
	migrate func(ctx context.Context, a *update.Artifact) error
}

func (m *migrating) Install(ctx context.Context, a *update.Artifact) error {
	if err := m.Installer.Install(ctx, a); err != nil {
		return err
	}
	return m.migrate(ctx, a)
}

func (m *migrating) Commit(ctx context.Context, a *update.Artifact) error {
	if c, ok := m.Installer.(update.Committer); ok {
		return c.Commit(ctx, a)
	}
	return nil
}

func loadIdentity(dir string) (identity, error) {
	f, err := os.Open(filepath.Join(dir, "identity.json"))
	if err != nil {
		return identity{}, err
	}
	defer f.Close()
	var id identity
	if err := jsonwire.Decode(f, 4096, &id); err != nil {
		return identity{}, fmt.Errorf("identity.json: %w", err)
	}
	return id, nil
}
