package update

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/download"
	"github.com/upkeephq/upkeep/verify"
)

// Source is the part of the protocol the agent speaks. A transport.Client
// satisfies it.
type Source interface {
	Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error)
	OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error)
	Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error)
}

// Artifact is a verified artifact handed to an [Installer].
type Artifact struct {
	// Manifest is the verified manifest of the release.
	Manifest *verify.Manifest
	// Path is the artifact's file, verified chunk by chunk. It stays in
	// place until the update ends.
	Path string
	// From is the version installed before, "" if none.
	From string
}

// Installer does the platform's part: an A/B slot switch, a package
// manager, a file swap. Both methods must be idempotent: after a power cut
// the agent calls the one that was running again, from the start. Install
// must not reboot the terminal itself: it returns [ErrRebootRequired] and
// the agent reboots once the next step is journaled (a reboot inside
// Install would run Install again on the new slot). Install must leave the
// data that Backups cover to Migrations.
type Installer interface {
	// Install puts the artifact in place of the installed version.
	Install(ctx context.Context, a *Artifact) error
	// Rollback puts back the version that was installed before Install.
	Rollback(ctx context.Context, a *Artifact) error
}

// Booter is an optional ability of an [Installer] whose installs take
// effect at a reboot: after the reboot the agent asks which version runs,
// and a terminal whose bootloader fell back to the old one is rolled back
// instead of having the old version's health checked as the new one's.
type Booter interface {
	Running(ctx context.Context, component string) (version string, err error)
}

// Committer is an optional ability of an [Installer]: Commit makes an
// install permanent once health checks passed (mark the A/B slot good,
// drop the previous version). It must be idempotent.
type Committer interface {
	Commit(ctx context.Context, a *Artifact) error
}

// Stage is the step a [Gate] is asked about, or that waits.
type Stage string

const (
	StageDownload  Stage = "download"
	StageInstall   Stage = "install"
	StageProbation Stage = "probation"
)

// Migration converts the terminal's data for the new version (a schema
// change in the transaction journal). Migrations run in order after the
// install and before the health checks. A migration that fails rolls the
// update back, and restoring the backup undoes what it did; after a power
// cut during migrations the backup is restored before they run again, so
// each run starts from the data as it was before the update.
type Migration struct {
	Name string
	Run  func(ctx context.Context, a *Artifact) error
}

// Probation keeps a new version on trial after its health checks passed:
// it is committed only once every condition set holds, and rolled back if
// [Agent.MarkBad] is called, if Deadline passes first, or if the terminal
// restarts StepAttempts times in a row without the checks passing again.
// A rollback from probation first keeps the data the new version wrote
// (sales taken meanwhile) in a snapshot of its own, named in the report,
// since restoring the backup replaces it. The zero Probation commits at
// once.
type Probation struct {
	// Beats is how many successful heartbeats the new version must see,
	// counted from Config.Beats, across reboots.
	Beats int
	// For is how long the new version must run on probation, from when
	// its checks first passed.
	For time.Duration
	// UntilMarkedGood waits for [Agent.MarkGood]: after the first
	// successful sign-in, or the first sale.
	UntilMarkedGood bool
	// Deadline, if set, rolls back an update still on probation this long
	// after its probation began.
	Deadline time.Duration
}

func (p Probation) enabled() bool { return p.Beats > 0 || p.For > 0 || p.UntilMarkedGood }

// Counter counts successful heartbeats since the terminal booted;
// *heartbeat.Counter is one.
type Counter interface{ Count() int }

// GateRequest is what a [Gate] is asked: may the agent start Stage of this
// release now?
type GateRequest struct {
	Stage    Stage
	Manifest *verify.Manifest
	Policy   transport.Policy
}

// Gate decides whether the terminal may act now. It returns nil to go, or a
// [*NotNowError] (see [NotNow]) to wait: the agent records the reason in
// its status and asks again after the given time, which Run keeps between
// [MinWait] and CheckInterval. Any other error holds the update back too,
// and is logged. Gates must not block for long.
type Gate func(ctx context.Context, req GateRequest) error

// Device is what the terminal is, as checks report it.
type Device struct {
	Model            string
	HardwareRevision string
	// Channel is the release channel; empty means the default.
	Channel string
}

// Progress is a download's progress, for a progress bar.
type Progress struct {
	Release    string
	Done       int64 // bytes verified, including any found on disk
	Total      int64
	Chunks     int // chunks verified
	ChunkTotal int
	Fetched    int64         // bytes received from the network this pass
	Rate       float64       // bytes per second, recently
	ETA        time.Duration // -1 while unknown
}

// Defaults for zero Config fields.
const (
	DefaultCheckInterval   = time.Hour
	DefaultMaxArtifactSize = 8 << 30
	DefaultChunkAttempts   = 3
	DefaultKeepBackups     = 3
	DefaultMaxDiskFullRuns = 3
	DefaultStepAttempts    = 3
	DefaultMaxAttempts     = 2
	// MaxWait bounds any wait of Run's, whatever a gate or server says.
	MaxWait = 24 * time.Hour
	// MinWait is the shortest wait of Run's between passes.
	MinWait = time.Second
)

// Config configures an [Agent]. Source, Keys, Installer, StateDir and
// Device.Model are required; every other zero value has a default.
type Config struct {
	// Source is the update server's protocol client.
	Source Source
	// Keys holds the root keys releases must chain to.
	Keys *verify.KeyRing
	// Installer installs and rolls back artifacts.
	Installer Installer
	// StateDir holds the journal, downloads, backups and the report outbox.
	// It must be on storage that survives a reboot, and exist.
	StateDir string
	// FS is the filesystem StateDir is on; nil means durable.OS. Tests
	// give a durabletest.CrashFS to cut the power.
	FS durable.FS
	// Device describes the terminal.
	Device Device
	// Installed maps each component to its factory version. It is read
	// only when the state directory has no journal yet; afterwards the
	// journal is the record of what is installed.
	Installed map[string]string
	// Backups are the hooks that snapshot what must survive an update
	// (transaction journal, e-signatures, parameters). Nil means none.
	Backups []backup.Hook
	// KeepBackups is how many snapshots to keep; 0 means DefaultKeepBackups.
	KeepBackups int
	// Migrations convert data after install; they need Backups that cover
	// the data they change. Nil means none.
	Migrations []Migration
	// Checks run after install; all must pass within their timeouts or the
	// update rolls back. Nil means none.
	Checks []verify.Check
	// Probation is the trial a new version stands after its checks pass;
	// the zero value commits at once.
	Probation Probation
	// Beats counts heartbeats, for Probation.Beats.
	Beats Counter
	// Reboot reboots the terminal when an Installer returns
	// ErrRebootRequired; it should not return on success. Nil means Update
	// returns a Result with RebootRequired set and Run returns
	// ErrRebootRequired: the caller reboots.
	Reboot func(ctx context.Context) error
	// MaxAttempts is how many times a release may be installed and rolled
	// back before the agent stops taking it (and reports
	// attempts_exhausted); 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Gate says when the agent may download and install; nil means always.
	// The update/gate package has the POS gates and composes them.
	Gate Gate
	// ManualGate replaces Gate for manual updates from a local package
	// ([Agent.InstallPackage]): a technician is at the terminal, so the
	// automatic update's idle time, heartbeats, windows and prompts do
	// not apply, but a sale in progress still should. Nil means always.
	ManualGate Gate
	// CheckInterval is how often Run checks for updates without a nudge;
	// 0 means DefaultCheckInterval. Each wait is jittered by ±10%.
	CheckInterval time.Duration
	// MaxArtifactSize refuses larger artifacts; 0 means DefaultMaxArtifactSize.
	MaxArtifactSize int64
	// ChunkAttempts is how often a chunk whose hash differs is fetched
	// before the download fails; 0 means DefaultChunkAttempts.
	ChunkAttempts int
	// Parallel is how many Range requests a download runs at once; 0 means
	// download.DefaultParallel.
	Parallel int
	// RateLimit caps a download's bandwidth in bytes per second (a metered
	// link); 0 means none. The download gate is asked again before every
	// piece of a download, so a gate can pause it too.
	RateLimit int64
	// MaxDiskFullRuns is how many passes may fail to download a release
	// for lack of disk space before it is given up (reported disk_full,
	// and taken again if offered again); 0 means DefaultMaxDiskFullRuns.
	// Network and server failures never give a release up: the agent
	// retries, with backoff, until the release expires.
	MaxDiskFullRuns int
	// StepAttempts is how many times a step that changes the terminal
	// (backup, install, health checks) may start for one update. A step
	// interrupted that often (a new version that crashes the terminal
	// during its checks, an install that trips the watchdog) is not
	// retried again: the update rolls back. 0 means DefaultStepAttempts.
	StepAttempts int
	// Progress, if set, is called a few times a second while downloading,
	// and at the end. It must not block.
	Progress func(Progress)
	// Observe, if set, is called with the agent's status after every
	// journaled state change (for a screen that says "updating, do not
	// power off") and whenever the reason it waits for changes (Status's
	// Waiting: a gate said not now, or go again), on the goroutine that made the change (usually the one
	// running Update), with no lock held. It must not block for long.
	Observe func(Status)
	// NewHash returns the hash for chunks; nil means verify.NewHash.
	NewHash func() hash.Hash
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Logger receives the agent's log; nil discards.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	var errs []error
	if c.Source == nil {
		errs = append(errs, errors.New("Source is required"))
	}
	if c.Keys == nil {
		errs = append(errs, errors.New("Keys is required: the agent never installs unverified releases"))
	}
	if c.Installer == nil {
		errs = append(errs, errors.New("Installer is required"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("StateDir is required"))
	}
	if err := verify.CheckName("model", c.Device.Model); err != nil {
		errs = append(errs, fmt.Errorf("Device.Model: %w", err))
	}
	for what, v := range map[string]string{"Device.HardwareRevision": c.Device.HardwareRevision, "Device.Channel": c.Device.Channel} {
		if v != "" {
			if err := verify.CheckName(what, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for name, v := range c.Installed {
		if err := verify.CheckName("component", name); err != nil {
			errs = append(errs, fmt.Errorf("Installed: %w", err))
		}
		if err := version.Check(v); err != nil {
			errs = append(errs, fmt.Errorf("Installed[%s]: %w", name, err))
		}
	}
	if c.MaxArtifactSize < 0 || c.KeepBackups < 0 || c.ChunkAttempts < 0 || c.CheckInterval < 0 ||
		c.Parallel < 0 || c.Parallel > download.MaxParallel || c.RateLimit < 0 ||
		c.MaxDiskFullRuns < 0 || c.StepAttempts < 0 || c.MaxAttempts < 0 ||
		c.Probation.Beats < 0 || c.Probation.For < 0 || c.Probation.Deadline < 0 {
		errs = append(errs, errors.New("negative limits are not allowed"))
	}
	if len(c.Migrations) > 0 && len(c.Backups) == 0 {
		errs = append(errs, errors.New("Migrations need Backups covering the data they change: restoring them undoes a migration"))
	}
	seen := map[string]bool{}
	for _, m := range c.Migrations {
		if m.Name == "" || m.Run == nil || seen[m.Name] {
			errs = append(errs, errors.New("each Migration needs a unique Name and a Run function"))
			break
		}
		seen[m.Name] = true
	}
	if c.Probation.Beats > 0 && c.Beats == nil {
		errs = append(errs, errors.New("Probation.Beats needs Beats to count heartbeats"))
	}
	names := map[string]bool{}
	for _, h := range c.Backups {
		if h == nil || names[h.Name()] {
			errs = append(errs, errors.New("backup hooks must be non-nil with unique names"))
			break
		}
		names[h.Name()] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("update: invalid config: %w", err)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.MaxArtifactSize == 0 {
		c.MaxArtifactSize = DefaultMaxArtifactSize
	}
	if c.ChunkAttempts == 0 {
		c.ChunkAttempts = DefaultChunkAttempts
	}
	if c.KeepBackups == 0 {
		c.KeepBackups = DefaultKeepBackups
	}
	if c.MaxDiskFullRuns == 0 {
		c.MaxDiskFullRuns = DefaultMaxDiskFullRuns
	}
	if c.StepAttempts == 0 {
		c.StepAttempts = DefaultStepAttempts
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.NewHash == nil {
		c.NewHash = verify.NewHash
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.FS = durable.Or(c.FS)
}
