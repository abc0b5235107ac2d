package update

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/download"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

// maxOffers bounds the offers one check is allowed to make the agent
// verify: a server cannot make a terminal chew through junk.
const maxOffers = 8

// Agent is the terminal's update agent. Create it with [New].
type Agent struct {
	cfg     Config
	fs      durable.FS
	log     *slog.Logger
	box     *outbox
	store   *backup.Store
	dir     string // downloads
	bundles string // stored bundles

	pass  sync.Mutex // held by the running Update pass
	cause error      // why the update in this pass is ending; guarded by pass

	jmu     sync.Mutex // held through each journal change: clone, save, swap
	mu      sync.Mutex // guards j and waiting
	j       *journal
	waiting string

	// started is the state the journal was in when this process began, to
	// tell a restart on probation; probationBase is the heartbeat count
	// when probation began in this process (0 after a restart).
	started       State
	probationSeen bool
	probationBase int
	// bootChecked is the update whose running version this process has
	// asked the Booter about.
	bootChecked string

	nudge chan struct{}
}

// Result is what one [Agent.Update] pass did.
type Result struct {
	// Release is the release the pass worked on ("component@version"),
	// empty when nothing was offered.
	Release  string
	From, To string
	// State is where the update stands after the pass: StateIdle once it
	// has ended.
	State State
	// Outcome is set when the update ended during this pass.
	Outcome transport.Outcome
	// Reason is the outcome's reason code, or why nothing was offered.
	Reason transport.Reason
	// Err is the cause of an outcome other than committed.
	Err error
	// Waiting is set when a gate held the update back.
	Waiting *NotNowError
	// RetryAfter is the server's advice on when to check again.
	RetryAfter time.Duration
	// RebootRequired is set when the install takes effect at a reboot and
	// Config.Reboot is nil: the caller reboots, and the update resumes.
	RebootRequired bool
}

// Status is the agent's state for heartbeats and screens.
type Status struct {
	State      State
	Release    string // the release in progress
	Waiting    string // why the agent is waiting, if it is
	Components []transport.Component
	Last       *transport.Result
}

// New validates cfg, prepares the state directory and loads the journal.
// It does no network I/O; an update interrupted by a power cut resumes at
// the next [Agent.Update].
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	a := &Agent{
		cfg:     cfg,
		fs:      cfg.FS,
		log:     cfg.Logger,
		dir:     filepath.Join(cfg.StateDir, "downloads"),
		bundles: filepath.Join(cfg.StateDir, "bundles"),
		box:     &outbox{fs: cfg.FS, dir: filepath.Join(cfg.StateDir, "outbox"), log: cfg.Logger},
		nudge:   make(chan struct{}, 1),
	}
	for _, d := range []string{cfg.StateDir, a.dir, a.bundles, a.box.dir} {
		if err := durable.MkdirAll(a.fs, d, 0o700); err != nil {
			return nil, fmt.Errorf("update: state directory: %w", err)
		}
		// A power cut during an atomic write leaves its temporary file.
		if _, err := durable.CleanTemp(a.fs, d); err != nil {
			return nil, fmt.Errorf("update: state directory: %w", err)
		}
	}
	store, err := backup.OpenStore(filepath.Join(cfg.StateDir, "backups"), backup.StoreConfig{
		Keep: cfg.KeepBackups, NewHash: cfg.NewHash, Logger: cfg.Logger, FS: cfg.FS,
	})
	if err != nil {
		return nil, fmt.Errorf("update: backup store: %w", err)
	}
	a.store = store
	j, err := loadJournal(a.fs, cfg.StateDir, cfg.Installed)
	if err != nil {
		return nil, err
	}
	if err := j.save(a.fs, cfg.StateDir); err != nil {
		return nil, err
	}
	a.j = j
	a.started = stateOf(j)
	a.dropStrays()
	return a, nil
}

// Status returns the agent's current state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{State: StateIdle, Waiting: a.waiting, Components: a.j.componentList()}
	if u := a.j.Update; u != nil {
		s.State, s.Release = u.State, u.Release
	}
	if a.j.Last != nil {
		l := *a.j.Last
		s.Last = &l
	}
	return s
}

// Heartbeat returns the agent's status as a heartbeat request; it has the
// shape heartbeat.Config's Status function takes.
func (a *Agent) Heartbeat(ctx context.Context) (*transport.HeartbeatRequest, error) {
	s := a.Status()
	return &transport.HeartbeatRequest{
		State: string(s.State), Release: s.Release, Waiting: s.Waiting,
		Components: s.Components, LastResult: s.Last,
	}, nil
}

// CheckNow asks a running [Agent.Run] to check for an update without
// waiting for its interval, e.g. on a heartbeat's check directive. It
// never blocks.
func (a *Agent) CheckNow() {
	select {
	case a.nudge <- struct{}{}:
	default:
	}
}

// Run checks for updates and carries them through until ctx is done, then
// returns ctx.Err(). It waits CheckInterval between checks (jittered), less
// when the server or a gate says when to ask again, backs off after
// failures, and checks at once after [Agent.CheckNow]. Every wait lies
// between [MinWait] and [MaxWait]. If an install needs a reboot and
// Config.Reboot is nil, Run returns an error matching [ErrRebootRequired]:
// the caller reboots, and the update resumes after.
func (a *Agent) Run(ctx context.Context) error {
	failures := 0
	for {
		res, err := a.Update(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.RebootRequired {
			// Nothing more can happen on this boot: the install waits for it.
			return fmt.Errorf("%w for %s", ErrRebootRequired, res.Release)
		}
		wait := a.cfg.CheckInterval
		switch {
		case err != nil:
			failures++
			wait = min(time.Duration(1<<min(failures, 10))*time.Second, wait)
			a.log.Warn("update: pass failed", "err", err, "retry_in", wait)
		case res.Waiting != nil:
			failures = 0
			wait = min(res.Waiting.After, wait)
		case res.Outcome != "":
			// Something ended: there may be a next release to take.
			failures = 0
			wait = min(wait, 5*time.Second)
		case res.RetryAfter > 0:
			failures = 0
			wait = res.RetryAfter
		default:
			failures = 0
		}
		t := time.NewTimer(jitter(min(max(wait, MinWait), MaxWait)))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-a.nudge:
			t.Stop()
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return d - d/10 + mrand.N(d/5+1)
}

// Update runs one pass: it sends pending reports, resumes an update left
// in progress, or checks for a new one, and carries the update as far as
// it can go now. It returns [ErrBusy] if a pass is already running.
//
// An update that ends, whatever its outcome, is a nil error with the
// outcome in the Result; the error is for passes that could not do their
// work (the server unreachable, ctx done, the journal unwritable, a
// commit or rollback that failed).
func (a *Agent) Update(ctx context.Context) (Result, error) {
	if !a.pass.TryLock() {
		return Result{}, ErrBusy
	}
	defer a.pass.Unlock()
	a.cause = nil
	if u := a.current(); u != nil {
		if !u.State.installed() {
			a.flush(ctx)
		}
		// An install in progress comes first: a slow server must not hold
		// back a rollback. drive flushes when the update ends.
		return a.drive(ctx, true)
	}
	a.flush(ctx)
	resp, err := a.cfg.Source.Check(ctx, a.checkRequest())
	if err != nil {
		return Result{State: StateIdle}, fmt.Errorf("update: check: %w", err)
	}
	res := Result{State: StateIdle, Reason: resp.Reason, RetryAfter: seconds(resp.RetryAfterSeconds)}
	offers := resp.Offers
	if len(offers) > maxOffers {
		a.log.Warn("update: server offered too many releases; looking at the first ones", "offers", len(offers), "limit", maxOffers)
		offers = offers[:maxOffers]
	}
	for _, offer := range offers {
		accepted, r, err := a.accept(ctx, offer, "", nil)
		if err != nil {
			return r, err
		}
		if accepted {
			return a.drive(ctx, false)
		}
		if r.Outcome != "" || res.Release == "" {
			res = r
		}
	}
	return res, nil
}

// seconds converts a server's count of seconds, bounded by MaxWait.
func seconds(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(min(int64(n), int64(MaxWait/time.Second))) * time.Second
}

func (a *Agent) current() *inflight {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.j.Update == nil {
		return nil
	}
	u := *a.j.Update
	return &u
}

func (a *Agent) checkRequest() *transport.CheckRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &transport.CheckRequest{
		Model: a.cfg.Device.Model, HardwareRevision: a.cfg.Device.HardwareRevision,
		Channel: a.cfg.Device.Channel, Components: a.j.componentList(),
	}
}

func (a *Agent) device() release.Device {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := release.Device{Model: a.cfg.Device.Model, HardwareRevision: a.cfg.Device.HardwareRevision,
		Channel: a.cfg.Device.Channel, Components: make(map[string]release.Installed, len(a.j.Components))}
	for name, c := range a.j.Components {
		d.Components[name] = release.Installed{Version: c.Version, Floor: c.Floor}
	}
	return d
}

// accept verifies an offer and, if the terminal should take it, stores its
// bundle and journals it as offered. A refused offer is reported and
// remembered, so that the same bundle is not fetched and refused again
// every pass. The error is for a journal or outbox that cannot be written.
func (a *Agent) accept(ctx context.Context, offer transport.Offer, pkg string, manual *transport.Manual) (bool, Result, error) {
	bundleHash := hashHex(offer.Bundle)
	a.mu.Lock()
	junk := slices.Contains(a.j.Junk, bundleHash)
	a.mu.Unlock()
	if junk {
		return false, Result{State: StateIdle}, nil
	}
	m, err := a.cfg.Keys.Open(offer.Bundle, a.cfg.Now())
	if err != nil {
		// Unverified: nothing in it can be believed, not even its name.
		r, err := a.refuseOffer(ctx, bundleHash, func(j *journal) { j.Junk = remember(j.Junk, bundleHash, maxJunk) }, "unverified", "", manual, err)
		return false, r, err
	}
	err = release.Compatible(a.device(), release.FromManifest(m, ""))
	if err == nil && m.Artifact.Size > a.cfg.MaxArtifactSize {
		err = fmt.Errorf("%w: artifact of %d bytes, limit %d", verify.ErrTooLarge, m.Artifact.Size, a.cfg.MaxArtifactSize)
	}
	if errors.Is(err, release.ErrUpToDate) {
		return false, Result{State: StateIdle, Reason: transport.ReasonUpToDate}, nil
	}
	if errors.Is(err, release.ErrRequirementUnmet) {
		// Not yet: once what it needs is installed (the server offers
		// that first) it may fit, so it is never remembered as refused.
		if manual == nil {
			a.log.Info("update: release skipped until its requirements are met", "release", m.ID(), "err", err)
			return false, Result{State: StateIdle, Release: m.ID(), Reason: transport.ReasonRequirementUnmet}, nil
		}
		// A technician's package is refused at once, and reported.
		r, err := a.refuseOffer(ctx, bundleHash, func(*journal) {}, m.ID(), m.Version, manual, err)
		return false, r, err
	}
	key := releaseKey(m.ID(), m.Artifact.Digest)
	a.mu.Lock()
	refused := slices.Contains(a.j.Refused, key)
	attempt := a.j.attempted(key) + 1
	from := a.j.Components[m.Component].Version
	a.mu.Unlock()
	if refused {
		// Tried before and it failed: the server must publish a new one.
		return false, Result{State: StateIdle, Release: m.ID()}, nil
	}
	if err != nil {
		r, err := a.refuseOffer(ctx, bundleHash, func(j *journal) { j.Refused = remember(j.Refused, key, maxRefused) }, m.ID(), m.Version, manual, err)
		return false, r, err
	}
	if err := durable.WriteFile(a.fs, a.bundlePath(bundleHash), offer.Bundle, 0o600); err != nil {
		return false, Result{State: StateIdle, Release: m.ID()}, fmt.Errorf("update: storing the bundle: %w", err)
	}
	u := &inflight{
		ID: newID(), State: StateOffered, BundleHash: bundleHash, ArtifactURL: offer.ArtifactURL, Policy: offer.Policy,
		Mirrors: slices.Clone(offer.Mirrors),
		Release: m.ID(), Kind: m.Kind, Digest: m.Artifact.Digest, Component: m.Component, From: from, To: m.Version,
		Floor: m.Floor, Accepted: a.cfg.Now(), Attempt: attempt,
	}
	u.Package, u.Manual = pkg, manual
	if err := a.update(func(j *journal) { j.Update = u }); err != nil {
		return false, Result{State: StateIdle, Release: m.ID()}, err
	}
	a.log.Info("update: release offered", "release", m.ID(), "from", from)
	return true, Result{}, nil
}

// refuseOffer reports an offer refused before it was accepted and records
// the refusal with remember. If the report cannot be queued, nothing is
// recorded: the offer is refused, and reported, again next pass.
func (a *Agent) refuseOffer(ctx context.Context, bundleHash string, remember func(*journal), id, to string, manual *transport.Manual, cause error) (Result, error) {
	reason := reasonOf(cause)
	a.log.Warn("update: release refused", "release", id, "reason", reason, "err", cause)
	// The ID comes from the bundle: refused again after a power cut, it is
	// the same report.
	rep := &transport.ReportRequest{
		ID: bundleHash + "-" + string(transport.OutcomeRefused), Release: id, To: to, Phase: string(StateOffered),
		Outcome: transport.OutcomeRefused, Reason: reason, Detail: detail(cause), At: a.cfg.Now(), Manual: manual,
	}
	res := Result{State: StateIdle, Release: id, To: to, Outcome: transport.OutcomeRefused, Reason: reason, Err: cause}
	if err := a.box.add(rep); err != nil {
		return res, fmt.Errorf("update: queueing a report: %w", err)
	}
	last := &transport.Result{Release: id, Outcome: transport.OutcomeRefused, Reason: reason, At: rep.At}
	if err := a.update(func(j *journal) { remember(j); j.Last = last }); err != nil {
		return res, err
	}
	a.flush(ctx)
	return res, nil
}

// drive carries the update in the journal from its state as far as it can
// go in this pass.
func (a *Agent) drive(ctx context.Context, resumed bool) (Result, error) {
	var artifact string // set once this pass has verified the artifact on disk
	if u := a.current(); resumed {
		a.log.Info("update: resuming", "release", u.Release, "state", u.State)
	}
	for {
		u := a.current()
		res := Result{Release: u.Release, From: u.From, To: u.To, State: u.State}
		switch u.State {
		case StateCommitted, StateRolledBack, StateFailed:
			// The end is known; it needs no bundle to be reported.
			return a.finish(ctx, u)
		}
		m, err := a.open(u)
		if err != nil {
			if !u.State.installed() {
				if err := a.fail(u, err); err != nil {
					return res, err
				}
				continue
			}
			// Past the install the journal is the record: finish or undo
			// the update from it, whatever became of the bundle (a new
			// firmware may trust other roots).
			a.log.Error("update: stored bundle unreadable; going on from the journal", "release", u.Release, "err", err)
			m = u.manifest()
		}
		switch u.State {
		case StateMigrating, StateVerifying, StateProbation, StateCommitting:
			// After every start, before anything runs on the new version:
			// is it the one running? A bootloader may have fallen back.
			if ok, err := a.checkBoot(ctx, u); err != nil || !ok {
				if err != nil {
					return res, err
				}
				continue
			}
		}
		switch u.State {
		case StateOffered, StateGated:
			if wait := a.gate(ctx, StageDownload, m, u); wait != nil {
				if u.State != StateGated {
					if err := a.setState(StateGated, nil); err != nil {
						return res, err
					}
				}
				res.State, res.Waiting = StateGated, wait
				return res, nil
			}
			if err := a.setState(StateDownloading, nil); err != nil {
				return res, err
			}

		case StateDownloading:
			path, ended, err := a.download(ctx, u, m)
			var wait *NotNowError
			if errors.As(err, &wait) {
				res.Waiting = wait
				return res, nil
			}
			if err != nil {
				return res, err
			}
			if ended {
				continue
			}
			artifact = path
			a.log.Info("update: downloaded and verified", "release", u.Release, "bytes", m.Artifact.Size)
			if err := a.setState(StateDownloaded, nil); err != nil {
				return res, err
			}

		case StateDownloaded:
			if wait := a.gate(ctx, StageInstall, m, u); wait != nil {
				res.Waiting = wait
				return res, nil
			}
			if artifact == "" {
				// Resumed: what is on disk is verified again before use.
				path, ended, err := a.download(ctx, u, m)
				var wait *NotNowError
				if errors.As(err, &wait) {
					res.Waiting = wait
					return res, nil
				}
				if err != nil {
					return res, err
				}
				if ended {
					continue
				}
				artifact = path
				// That took a while, in which a sale may have begun: the
				// gate is asked again, so nothing slow comes between its
				// go and the backup.
				if wait := a.gate(ctx, StageInstall, m, u); wait != nil {
					res.Waiting = wait
					return res, nil
				}
			}
			if err := a.setState(StateBackingUp, nil); err != nil {
				return res, err
			}

		case StateBackingUp:
			if again, err := a.startStep(u); err != nil || !again {
				if err == nil {
					err = a.fail(u, &StepError{State: StateBackingUp, Err: a.interrupted(u)})
				}
				if err != nil {
					return res, err
				}
				continue
			}
			snap, err := a.backup(ctx, u)
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if err := a.fail(u, &StepError{State: StateBackingUp, Err: err}); err != nil {
					return res, err
				}
				continue
			}
			if err := a.setState(StateInstalling, func(u *inflight) { u.Snapshot = snap }); err != nil {
				return res, err
			}

		case StateInstalling:
			if again, err := a.startStep(u); err != nil || !again {
				if err == nil {
					err = a.rollBack(u, transport.ReasonInstall, a.interrupted(u))
				}
				if err != nil {
					return res, err
				}
				continue
			}
			if artifact == "" {
				path, err := a.fetch(ctx, u, m, nil)
				if err != nil {
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					// The verified artifact is gone and cannot be had
					// again now: what Install already did must be undone.
					if err := a.rollBack(u, transport.ReasonDownload, err); err != nil {
						return res, err
					}
					continue
				}
				artifact = path
			}
			next := StateVerifying
			if len(a.cfg.Migrations) > 0 {
				next = StateMigrating
			}
			err := a.cfg.Installer.Install(ctx, &Artifact{Manifest: m, Path: artifact, From: u.From})
			reboot := errors.Is(err, ErrRebootRequired)
			if err != nil && !reboot {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if err := a.rollBack(u, transport.ReasonInstall, err); err != nil {
					return res, err
				}
				continue
			}
			if err := a.setState(next, nil); err != nil {
				return res, err
			}
			if reboot {
				// The next step is journaled; it runs after the reboot.
				res.State = next
				if a.cfg.Reboot == nil {
					res.RebootRequired = true
					return res, nil
				}
				a.log.Info("update: rebooting into the new version", "release", u.Release)
				return res, a.cfg.Reboot(ctx)
			}

		case StateMigrating:
			again, err := a.startStep(u)
			if err != nil || !again {
				if err == nil {
					err = a.rollBack(u, transport.ReasonMigration, a.interrupted(u))
				}
				if err != nil {
					return res, err
				}
				continue
			}
			if err := a.migrate(ctx, u, m, artifact); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if err := a.rollBack(u, transport.ReasonMigration, err); err != nil {
					return res, err
				}
				continue
			}
			if err := a.setState(StateVerifying, nil); err != nil {
				return res, err
			}

		case StateVerifying:
			if again, err := a.startStep(u); err != nil || !again {
				if err == nil {
					err = a.rollBack(u, transport.ReasonHealth, a.interrupted(u))
				}
				if err != nil {
					return res, err
				}
				continue
			}
			results, err := verify.RunChecks(ctx, a.cfg.Checks)
			if err != nil {
				return res, err // ctx done: the checks run again on resume
			}
			if err := results.Err(); err != nil {
				reason := transport.ReasonHealth
				var failed *verify.CheckError
				if errors.Is(err, verify.ErrSignIn) || errors.As(err, &failed) && failed.Name == verify.CheckSignIn {
					reason = transport.ReasonSignIn
				}
				if err := a.rollBack(u, reason, err); err != nil {
					return res, err
				}
				continue
			}
			if a.cfg.Probation.enabled() {
				a.probationSeen, a.probationBase = true, a.beats()
				err = a.setState(StateProbation, func(v *inflight) { v.ProbationStart = a.cfg.Now() })
			} else {
				err = a.toCommitting(u)
			}
			if err != nil {
				return res, err
			}

		case StateProbation:
			wait, err := a.probation(ctx, u)
			if err != nil {
				return res, err
			}
			if wait != nil {
				res.Waiting = wait
				return res, nil
			}

		case StateCommitting:
			if c, ok := a.cfg.Installer.(Committer); ok {
				if err := c.Commit(ctx, a.artifactFor(u, m)); err != nil {
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					res.Outcome, res.Reason, res.Err = transport.OutcomeNeedsAttention, transport.ReasonInstall, err
					return res, a.attention(ctx, u, transport.ReasonInstall, fmt.Errorf("commit: %w", err))
				}
			}
			err := a.update(func(j *journal) {
				c := j.Components[u.Component]
				floor := c.Floor
				if f, err := version.Max(floor, u.Floor); err == nil {
					floor = f
				}
				j.Components[u.Component] = component{Version: u.To, Floor: floor}
				j.Update.State, j.Update.StepRuns = StateCommitted, 0
				j.Update.Outcome, j.Update.Reason = transport.OutcomeCommitted, transport.ReasonOK
			})
			if err != nil {
				return res, err
			}

		case StateRollingBack:
			if err := a.rollBackNow(ctx, u, m); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				res.Outcome, res.Reason, res.Err = transport.OutcomeNeedsAttention, transport.ReasonRollbackFailed, err
				return res, err
			}

		default:
			return res, fmt.Errorf("%w: unknown state %q", ErrJournal, u.State)
		}
	}
}

// download fetches and verifies the artifact. A failure the network may
// cure is returned as an error, with the state left to resume; one it
// cannot cure ends the update (ended is true, and the journal says failed).
// A download paused by the gate returns its *NotNowError.
func (a *Agent) download(ctx context.Context, u *inflight, m *verify.Manifest) (path string, ended bool, err error) {
	var gate func(context.Context) error
	if a.cfg.Gate != nil && u.Manual == nil || a.cfg.ManualGate != nil && u.Manual != nil {
		// The download gate is asked again before every piece: a terminal
		// that leaves Wi-Fi, or a window that closes, pauses the download.
		gate = func(ctx context.Context) error {
			if wait := a.gate(ctx, StageDownload, m, u); wait != nil {
				return wait
			}
			return nil
		}
	}
	path, err = a.fetch(ctx, u, m, gate)
	var wait *NotNowError
	switch {
	case err == nil:
		return path, false, nil
	case ctx.Err() != nil:
		return "", false, ctx.Err()
	case errors.As(err, &wait):
		return "", false, wait
	case errors.Is(err, syscall.ENOSPC) && u.DiskFullRuns+1 < a.cfg.MaxDiskFullRuns:
		if jerr := a.update(func(j *journal) { j.Update.DiskFullRuns++ }); jerr != nil {
			return "", false, jerr
		}
		return "", false, &StepError{State: u.State, Err: err}
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, verify.ErrDigestMismatch), errors.Is(err, transport.ErrRange),
		u.Package != "":
		// A local package that cannot be read (a stick pulled out, a
		// truncated file) fails too: the technician is there to retry.
		// Bytes that are not the release's, an artifact shorter than
		// announced, or no room: retrying now will not help.
		return "", true, a.fail(u, err)
	}
	// The network or the server: retried with backoff until it comes back
	// or the release expires (checked at every resume).
	return "", false, &StepError{State: u.State, Err: err}
}

// fetch runs the download engine for the update's artifact: from the
// offer's URL and mirrors, then the update server.
func (a *Agent) fetch(ctx context.Context, u *inflight, m *verify.Manifest, allow func(context.Context) error) (string, error) {
	var mirrors []string
	for _, url := range append([]string{u.ArtifactURL}, u.Mirrors...) {
		if url != "" && !slices.Contains(mirrors, url) {
			mirrors = append(mirrors, url)
		}
	}
	mirrors = append(mirrors, "") // the update server, last
	var progress func(download.Progress)
	if a.cfg.Progress != nil {
		progress = func(p download.Progress) {
			a.cfg.Progress(Progress{Release: u.Release, Done: p.Done, Total: p.Total, Chunks: p.Chunks,
				ChunkTotal: p.ChunkTotal, Fetched: p.Fetched, Rate: p.Rate, ETA: p.ETA})
		}
	}
	final, _ := artifactPaths(a.dir, u.Digest)
	cfg := download.Config{
		Source: a.cfg.Source, Mirrors: mirrors, Artifact: &m.Artifact, Path: final, FS: a.fs,
		Parallel: a.cfg.Parallel, ChunkAttempts: a.cfg.ChunkAttempts, RateLimit: a.cfg.RateLimit,
		Allow: allow, Progress: progress, NewHash: a.cfg.NewHash, Logger: a.log,
	}
	if u.Package != "" {
		// A manual update copies from the package through the same
		// engine: every chunk verified against the signed list.
		cfg.Source, cfg.Mirrors = packageSource{}, []string{filepath.Join(u.Package, m.Artifact.Name)}
		cfg.RateLimit, cfg.Retries, cfg.RetryWait = 0, 1, time.Millisecond
	}
	res, err := download.Fetch(ctx, cfg)
	if err != nil {
		return "", err
	}
	return res.Path, nil
}

// artifactPaths names the artifact's files in the download directory: the
// verified artifact, and the engine's partial and resume files.
func artifactPaths(dir string, d verify.Digest) (final string, others []string) {
	final = filepath.Join(dir, d.Hex()+".bin")
	return final, []string{final + ".partial", final + ".partial.resume"}
}

// startStep journals one more start of the current state's step, and
// reports whether it may start at all.
func (a *Agent) startStep(u *inflight) (bool, error) {
	if u.StepRuns >= a.cfg.StepAttempts {
		return false, nil
	}
	return true, a.update(func(j *journal) { j.Update.StepRuns++ })
}

func (a *Agent) interrupted(u *inflight) error {
	return fmt.Errorf("update: %s was interrupted %d times; not trying again", u.State, u.StepRuns)
}

// checkBoot asks a Booter, once per process for each update, whether the
// new version is the one running. It returns false, having journaled a
// rollback, if it is not.
func (a *Agent) checkBoot(ctx context.Context, u *inflight) (bool, error) {
	b, ok := a.cfg.Installer.(Booter)
	if !ok || a.bootChecked == u.ID {
		return true, nil
	}
	running, err := b.Running(ctx, u.Component)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err == nil && running != u.To {
		err = fmt.Errorf("the terminal runs %s %q, not %s: the new version did not boot", u.Component, running, u.To)
	}
	if err != nil {
		return false, a.rollBack(u, transport.ReasonBoot, err)
	}
	a.bootChecked = u.ID
	return true, nil
}

// toCommitting moves a healthy update to committing, from where the only
// way is forward, unless it was marked bad meanwhile: the verdict and the
// move are decided in one journal write, so a MarkBad cannot be lost.
func (a *Agent) toCommitting(u *inflight) error {
	var bad string
	err := a.update(func(j *journal) {
		v := j.Update
		if bad = v.MarkedBad; bad != "" {
			v.Reason, v.Detail, v.FailedIn = transport.ReasonHealth, "marked bad: "+bad, v.State
			v.State, v.StepRuns, v.Outcome = StateRollingBack, 0, transport.OutcomeRolledBack
			return
		}
		v.State, v.StepRuns = StateCommitting, 0
	})
	if bad != "" {
		a.cause = fmt.Errorf("marked bad: %s", bad)
		a.log.Warn("update: rolling back", "release", u.Release, "reason", "marked bad: "+bad)
	}
	return err
}

// migrate runs the migrations. Unless this is their first run for the
// update, the backup is restored first, so that a run cut short by a power
// cut is undone before they run again.
func (a *Agent) migrate(ctx context.Context, u *inflight, m *verify.Manifest, artifact string) error {
	if u.StepRuns > 0 && u.Snapshot != "" {
		a.log.Info("update: restoring the backup before running migrations again", "release", u.Release)
		if err := a.store.Restore(ctx, u.Snapshot, a.cfg.Backups); err != nil {
			return fmt.Errorf("restoring the backup before migrating again: %w", err)
		}
	}
	art := a.artifactFor(u, m)
	if artifact != "" {
		art.Path = artifact
	}
	for _, mig := range a.cfg.Migrations {
		if err := mig.Run(ctx, art); err != nil {
			return fmt.Errorf("migration %q: %w", mig.Name, err)
		}
	}
	return nil
}

// beats returns the heartbeats counted since this process began.
func (a *Agent) beats() int {
	if a.cfg.Beats == nil {
		return 0
	}
	return a.cfg.Beats.Count()
}

// probation decides the trial of an installed version: it returns nil
// and moves on (to committing or rolling-back), or says why it waits. A
// restart on probation runs the health checks again; only restarts whose
// checks never passed count against StepAttempts, so a terminal switched
// off every night is not taken for a crashing one.
func (a *Agent) probation(ctx context.Context, u *inflight) (*NotNowError, error) {
	p := a.cfg.Probation
	if u.MarkedBad != "" {
		return nil, a.rollBack(u, transport.ReasonHealth, fmt.Errorf("marked bad on probation: %s", u.MarkedBad))
	}
	if !a.probationSeen {
		a.probationSeen = true
		a.probationBase = a.beats()
		if a.started == StateProbation {
			// Restarted on probation: this boot's beats all count.
			a.probationBase = 0
			again, err := a.startStep(u)
			if err != nil {
				return nil, err
			}
			if !again {
				return nil, a.rollBack(u, transport.ReasonBoot,
					fmt.Errorf("restarted %d times on probation without passing its checks", u.StepRuns))
			}
			results, err := verify.RunChecks(ctx, a.cfg.Checks)
			if err != nil {
				return nil, err
			}
			if err := results.Err(); err != nil {
				return nil, a.rollBack(u, transport.ReasonHealth, err)
			}
			if err := a.update(func(j *journal) { j.Update.StepRuns = 0 }); err != nil {
				return nil, err
			}
			u = a.current()
		}
	}
	now := a.cfg.Now()
	elapsed := now.Sub(u.ProbationStart)
	if elapsed < 0 {
		// The clock went back (a terminal's clock is often reset): start
		// the trial's time again rather than wait for a date long past.
		if err := a.update(func(j *journal) { j.Update.ProbationStart = now }); err != nil {
			return nil, err
		}
		elapsed = 0
	}
	beats := u.ProbationBeats + max(0, a.beats()-a.probationBase)
	var missing []string
	if beats < p.Beats {
		missing = append(missing, fmt.Sprintf("%d of %d heartbeats", beats, p.Beats))
	}
	if elapsed < p.For {
		missing = append(missing, fmt.Sprintf("%s of %s", elapsed.Round(time.Second), p.For))
	}
	if p.UntilMarkedGood && !u.MarkedGood {
		missing = append(missing, "waiting to be marked good")
	}
	if len(missing) == 0 {
		return nil, a.toCommitting(u)
	}
	if p.Deadline > 0 && elapsed >= p.Deadline {
		return nil, a.rollBack(u, transport.ReasonHealth,
			fmt.Errorf("probation not passed within %s (%s)", p.Deadline, strings.Join(missing, ", ")))
	}
	if beats > u.ProbationBeats {
		// Keep what was counted, for after a reboot; count on from here.
		base := a.beats()
		if err := a.update(func(j *journal) { j.Update.ProbationBeats = beats }); err != nil {
			return nil, err
		}
		a.probationBase = base
	}
	after := time.Minute
	if p.For > elapsed {
		after = min(after, p.For-elapsed)
	}
	wait := &NotNowError{Stage: StageProbation, After: after, Reason: "on probation: " + strings.Join(missing, ", ")}
	a.mu.Lock()
	a.waiting = string(StageProbation) + ": " + wait.Reason
	a.mu.Unlock()
	return wait, nil
}

// MarkGood ends a probation that waits for the vendor's word: the new
// version is good (it signed in, it took a sale). The verdict is journaled
// and acted on at the next pass, which it brings forward.
func (a *Agent) MarkGood(ctx context.Context) error {
	return a.verdict(func(u *inflight) { u.MarkedGood = true })
}

// MarkBad rolls back the update on probation at the next pass, which it
// brings forward: the new version failed in use. reason is reported.
func (a *Agent) MarkBad(ctx context.Context, reason string) error {
	if reason == "" {
		reason = "marked bad"
	}
	return a.verdict(func(u *inflight) { u.MarkedBad = reason })
}

func (a *Agent) verdict(mark func(*inflight)) error {
	onTrial := func(u *inflight) bool {
		return u != nil && (u.State == StateMigrating || u.State == StateVerifying || u.State == StateProbation)
	}
	if !onTrial(a.current()) {
		return ErrNotOnProbation
	}
	var on bool
	err := a.update(func(j *journal) {
		if on = onTrial(j.Update); on {
			mark(j.Update)
		}
	})
	if err != nil {
		return err
	}
	if !on {
		return ErrNotOnProbation
	}
	a.CheckNow()
	return nil
}

// open reads the stored bundle and checks it against its hash. Before
// anything is installed the bundle is verified again, at the current time,
// so a release that expired while it waited for its window is refused;
// after that the journal's own record is trusted and the manifest is only
// parsed.
func (a *Agent) open(u *inflight) (*verify.Manifest, error) {
	b, err := durable.ReadFile(a.fs, a.bundlePath(u.BundleHash), verify.MaxBundleSize, verify.ErrTooLarge)
	if err != nil {
		return nil, fmt.Errorf("%w: stored bundle: %v", ErrJournal, err)
	}
	if hashHex(b) != u.BundleHash {
		return nil, fmt.Errorf("%w: stored bundle does not match its hash", ErrJournal)
	}
	if !u.State.installed() {
		return a.cfg.Keys.Open(b, a.cfg.Now())
	}
	bundle, err := verify.ParseBundle(b)
	if err != nil {
		return nil, err
	}
	return verify.ParseManifest(bundle.Manifest.Payload)
}

// manifest rebuilds, from the journal alone, what an Installer is told of
// the release when the stored bundle cannot be read.
func (u *inflight) manifest() *verify.Manifest {
	return &verify.Manifest{Schema: verify.ManifestSchema, Component: u.Component, Version: u.To, Kind: u.Kind,
		Floor: u.Floor, Artifact: verify.Artifact{Digest: u.Digest}}
}

// gate asks the Gate about stage, and records why the agent waits.
func (a *Agent) gate(ctx context.Context, stage Stage, m *verify.Manifest, u *inflight) *NotNowError {
	var err error
	g := a.cfg.Gate
	if u.Manual != nil {
		g = a.cfg.ManualGate
	}
	if g != nil {
		err = g(ctx, GateRequest{Stage: stage, Manifest: m, Policy: u.Policy})
	}
	var wait *NotNowError
	switch {
	case err == nil:
	case errors.As(err, &wait):
		w := *wait
		w.Stage = stage
		wait = &w
	default:
		a.log.Warn("update: gate failed, holding back", "stage", stage, "err", err)
		wait = &NotNowError{Stage: stage, After: time.Minute, Reason: "gate error: " + err.Error()}
	}
	a.mu.Lock()
	was := a.waiting
	if wait != nil {
		a.waiting = fmt.Sprintf("%s: %s", stage, wait.Reason)
		if len(a.waiting) > transport.MaxDetail {
			// Many gates' reasons joined: cut to what a heartbeat carries.
			a.waiting = strings.ToValidUTF8(a.waiting[:transport.MaxDetail-3], "") + "..."
		}
	} else {
		a.waiting = ""
	}
	changed := a.waiting != was
	a.mu.Unlock()
	if changed && a.cfg.Observe != nil {
		a.cfg.Observe(a.Status())
	}
	if wait != nil {
		a.log.Info("update: waiting", "release", u.Release, "stage", stage, "reason", wait.Reason, "after", wait.After)
	}
	return wait
}

func (a *Agent) backup(ctx context.Context, u *inflight) (string, error) {
	if len(a.cfg.Backups) == 0 {
		return "", nil
	}
	snap, err := a.store.Create(ctx, u.Release, a.cfg.Backups)
	if err != nil {
		return "", err
	}
	// Trust the snapshot only once it reads back as written.
	if err := a.store.Verify(ctx, snap.ID); err != nil {
		return "", err
	}
	// Make room before installing, never at the cost of this snapshot.
	if err := a.store.Prune(snap.ID); err != nil {
		a.log.Warn("update: pruning backups", "err", err)
	}
	return snap.ID, nil
}

func (a *Agent) artifactFor(u *inflight, m *verify.Manifest) *Artifact {
	final, _ := artifactPaths(a.dir, u.Digest)
	return &Artifact{Manifest: m, Path: final, From: u.From}
}

// rollBack journals the move to rolling-back, with the reason the update
// failed.
func (a *Agent) rollBack(u *inflight, reason transport.Reason, cause error) error {
	a.log.Warn("update: rolling back", "release", u.Release, "state", u.State, "reason", reason, "err", cause)
	a.cause = cause
	return a.setState(StateRollingBack, func(v *inflight) {
		v.Reason, v.Detail, v.FailedIn = reason, detail(cause), u.State
		v.Outcome = transport.OutcomeRolledBack
	})
}

// rollBackNow undoes the install and restores the backup. On failure the
// update stays in rolling-back, is reported as needing attention, and is
// tried again on the next pass.
func (a *Agent) rollBackNow(ctx context.Context, u *inflight, m *verify.Manifest) error {
	if u.FailedIn == StateProbation && u.Snapshot != "" && u.Rescue == "" {
		// The new version was in service: what it wrote (sales taken on
		// probation) is kept in a snapshot of its own before the backup is
		// restored over it, and the report says where.
		snap, err := a.store.Create(ctx, u.Release+" rescue", a.cfg.Backups)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return a.attention(ctx, u, transport.ReasonRollbackFailed, fmt.Errorf("saving the data written on probation: %w", err))
		}
		if err := a.update(func(j *journal) {
			j.Update.Rescue = snap.ID
			j.Update.Detail += fmt.Sprintf("; data written on %s kept in backup snapshot %s", u.To, snap.ID)
		}); err != nil {
			return err
		}
		a.log.Warn("update: data written on probation kept before restoring the backup", "release", u.Release, "snapshot", snap.ID)
	}
	err := a.cfg.Installer.Rollback(ctx, a.artifactFor(u, m))
	if err == nil && u.Snapshot != "" {
		err = a.store.Restore(ctx, u.Snapshot, a.cfg.Backups)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return a.attention(ctx, u, transport.ReasonRollbackFailed, fmt.Errorf("rollback: %w", err))
	}
	return a.setState(StateRolledBack, nil)
}

// attention records a commit or rollback that failed. The update stays
// where it is and is tried again every pass; the first failure is
// reported as needing attention, since the terminal may be in neither
// version until it succeeds.
func (a *Agent) attention(ctx context.Context, u *inflight, reason transport.Reason, cause error) error {
	runs := u.Failures + 1
	a.log.Error("update: terminal needs attention", "release", u.Release, "state", u.State, "attempt", runs, "err", cause)
	if runs == 1 {
		rep := a.reportFor(u, transport.OutcomeNeedsAttention, reason, cause)
		rep.ID = u.ID + "-" + string(transport.OutcomeNeedsAttention) + "-" + string(u.State)
		if err := a.box.add(rep); err != nil {
			// Not counted: the next failure tries to report it again.
			a.log.Error("update: cannot queue report", "err", err)
			return fmt.Errorf("%w: %v", ErrNeedsAttention, cause)
		}
		a.flush(ctx)
	}
	if err := a.update(func(j *journal) { j.Update.Failures = runs }); err != nil {
		return errors.Join(cause, err)
	}
	return fmt.Errorf("%w: %v", ErrNeedsAttention, cause)
}

// fail journals a refusal before anything was installed.
func (a *Agent) fail(u *inflight, cause error) error {
	reason := reasonOf(cause)
	a.log.Warn("update: release refused", "release", u.Release, "state", u.State, "reason", reason, "err", cause)
	a.cause = cause
	return a.setState(StateFailed, func(v *inflight) {
		v.Outcome, v.Reason, v.Detail, v.FailedIn = transport.OutcomeRefused, reason, detail(cause), u.State
	})
}

// finish reports an ended update, cleans up after it, and returns the
// journal to idle. The report is queued before the journal moves on, so a
// power cut in between sends it twice (the ID makes that harmless), never
// not at all; if it cannot be queued the journal stays where it is.
func (a *Agent) finish(ctx context.Context, u *inflight) (Result, error) {
	res := Result{Release: u.Release, From: u.From, To: u.To, State: u.State, Outcome: u.Outcome, Reason: u.Reason}
	rep := a.reportFor(u, u.Outcome, u.Reason, nil)
	if err := a.box.add(rep); err != nil {
		return res, fmt.Errorf("update: queueing a report: %w", err)
	}
	last := &transport.Result{Release: u.Release, Outcome: u.Outcome, Reason: u.Reason, At: rep.At}
	key := releaseKey(u.Release, u.Digest)
	// A refusal is the release's fault for good, unless the terminal was to
	// blame (a full disk, a backup that failed); a rollback may be tried
	// again, MaxAttempts times in all.
	refuse := u.Outcome == transport.OutcomeRefused && u.Reason != transport.ReasonDiskFull && u.Reason != transport.ReasonBackup &&
		// A package that could not be copied (a stick pulled out, a bad
		// copy) says nothing of the signed release: the technician may
		// try another copy, and the server may offer it.
		!(u.Package != "" && u.FailedIn == StateDownloading)
	exhausted := u.Outcome == transport.OutcomeRolledBack && u.Attempt >= a.cfg.MaxAttempts
	if exhausted {
		giveUp := &transport.ReportRequest{
			ID: u.ID + "-" + string(transport.ReasonAttempts), Release: u.Release, From: u.From, To: u.To,
			Phase: string(u.FailedIn), Outcome: transport.OutcomeRefused, Reason: transport.ReasonAttempts,
			Detail: fmt.Sprintf("rolled back %d times; not trying this release again", u.Attempt), At: rep.At,
		}
		if err := a.box.add(giveUp); err != nil {
			return res, fmt.Errorf("update: queueing a report: %w", err)
		}
	}
	err := a.update(func(j *journal) {
		if u.Outcome == transport.OutcomeRolledBack {
			j.attempt(key)
		}
		if refuse || exhausted {
			j.Refused = remember(j.Refused, key, maxRefused)
		}
		j.Update, j.Last = nil, last
	})
	if err != nil {
		return res, err
	}
	res.State = StateIdle
	if u.Outcome != transport.OutcomeCommitted {
		res.Err = a.cause
		if res.Err == nil {
			// Ended in an earlier pass: the cause survives as text.
			res.Err = &StepError{State: u.FailedIn, Err: errors.New(u.Detail)}
		}
	}
	// What is left of the update is removed; a power cut before these
	// removals are durable leaves strays that New removes.
	a.removeFiles(u)
	if err := a.store.Prune(); err != nil {
		a.log.Warn("update: pruning backups", "err", err)
	}
	a.log.Info("update: finished", "release", u.Release, "outcome", u.Outcome, "reason", u.Reason)
	a.flush(ctx)
	return res, nil
}

func (a *Agent) reportFor(u *inflight, outcome transport.Outcome, reason transport.Reason, cause error) *transport.ReportRequest {
	phase := u.State
	if u.FailedIn != "" {
		phase = u.FailedIn
	}
	d := u.Detail
	if cause != nil {
		d = detail(cause)
	}
	return &transport.ReportRequest{
		ID: u.ID + "-" + string(outcome), Release: u.Release, From: u.From, To: u.To, Phase: string(phase),
		Outcome: outcome, Reason: reason, Detail: d, At: a.cfg.Now(), Manual: u.Manual,
	}
}

// Flush sends the reports waiting in the outbox, oldest first, and
// returns the error that stopped it, if any; unsent reports stay queued.
// Every pass flushes on its own; call Flush before a planned shutdown.
func (a *Agent) Flush(ctx context.Context) error {
	return a.box.flush(ctx, a.cfg.Source)
}

// flush sends queued reports; failures wait for the next pass.
func (a *Agent) flush(ctx context.Context) {
	if err := a.Flush(ctx); err != nil && ctx.Err() == nil {
		a.log.Info("update: reports wait for the network", "err", err)
	}
}

func (a *Agent) bundlePath(hash string) string {
	return filepath.Join(a.bundles, hash+".json")
}

// dropStrays removes stored bundles and downloads the journal does not
// name: a power cut between storing one and journaling it, or just after
// an update ended.
func (a *Agent) dropStrays() {
	keep := map[string]bool{}
	if u := a.current(); u != nil {
		keep[u.BundleHash+".json"] = true
		if u.Digest.Validate() == nil {
			final, others := artifactPaths(a.dir, u.Digest)
			for _, p := range append(others, final) {
				keep[filepath.Base(p)] = true
			}
		}
	}
	for _, dir := range []string{a.bundles, a.dir} {
		entries, _ := a.fs.ReadDir(dir)
		for _, e := range entries {
			if !keep[e.Name()] {
				a.fs.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// removeFiles removes update u's download and stored bundle.
func (a *Agent) removeFiles(u *inflight) {
	if u.Digest.Validate() == nil {
		final, others := artifactPaths(a.dir, u.Digest)
		for _, p := range append(others, final) {
			a.fs.Remove(p)
		}
	}
	a.fs.Remove(a.bundlePath(u.BundleHash))
}

func (a *Agent) setState(s State, mutate func(*inflight)) error {
	return a.update(func(j *journal) {
		if j.Update.State != s {
			j.Update.StepRuns = 0
		}
		j.Update.State = s
		if mutate != nil {
			mutate(j.Update)
		}
	})
}

// update applies change to a copy of the journal, saves it, and only then
// makes it current: memory never runs ahead of the disk.
func (a *Agent) update(change func(*journal)) error {
	a.jmu.Lock()
	a.mu.Lock()
	next := a.j.clone()
	a.mu.Unlock()
	change(next)
	if err := next.save(a.fs, a.cfg.StateDir); err != nil {
		a.jmu.Unlock()
		return err
	}
	a.mu.Lock()
	prev := a.j
	a.j = next
	if next.Update == nil || next.Update.State != StateGated && next.Update.State != StateDownloaded &&
		next.Update.State != StateProbation {
		a.waiting = ""
	}
	a.mu.Unlock()
	a.jmu.Unlock()
	// Observe runs with no lock held: it may call MarkGood, or Status.
	if a.cfg.Observe != nil && (stateOf(prev) != stateOf(next) || prev.Last != next.Last) {
		a.cfg.Observe(a.Status())
	}
	return nil
}

func stateOf(j *journal) State {
	if j.Update == nil {
		return StateIdle
	}
	return j.Update.State
}

// reasonOf maps an error to the reason code a report carries.
func reasonOf(err error) transport.Reason {
	var re *release.Error
	var step *StepError
	switch {
	case errors.As(err, &re):
		return re.Reason
	case errors.Is(err, verify.ErrSignature):
		return transport.ReasonSignature
	case errors.Is(err, verify.ErrExpired):
		// Before unknown-key: a signing key refused for its expiry is
		// reported as what it is.
		return transport.ReasonExpired
	case errors.Is(err, verify.ErrUnknownKey):
		return transport.ReasonUnknownKey
	case errors.Is(err, verify.ErrDowngrade):
		return transport.ReasonDowngrade
	case errors.Is(err, verify.ErrDigestMismatch):
		return transport.ReasonDigest
	case errors.Is(err, verify.ErrTooLarge):
		return transport.ReasonTooLarge
	case errors.Is(err, verify.ErrMalformed):
		return transport.ReasonMalformed
	case errors.Is(err, syscall.ENOSPC):
		return transport.ReasonDiskFull
	case errors.Is(err, ErrJournal):
		return transport.ReasonInternal
	case errors.As(err, &step) && step.State == StateBackingUp:
		return transport.ReasonBackup
	}
	return transport.ReasonDownload
}

func releaseKey(id string, d verify.Digest) string { return id + " " + string(d) }

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16])
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func detail(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > transport.MaxDetail {
		s = s[:transport.MaxDetail]
	}
	return strings.ToValidUTF8(s, "?")
}

func sortComponents(cs []transport.Component) {
	slices.SortFunc(cs, func(a, b transport.Component) int { return strings.Compare(a.Name, b.Name) })
}
