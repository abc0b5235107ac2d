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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

// Agent is the terminal's update agent. Create it with [New].
type Agent struct {
	cfg   Config
	log   *slog.Logger
	dl    *downloader
	box   *outbox
	store *backup.Store
	dir   string // downloads

	pass sync.Mutex // held by the running Update pass

	mu      sync.Mutex // guards j and waiting
	j       *journal
	waiting string

	nudge chan struct{}
}

// Result is what one [Agent.Update] pass did.
type Result struct {
	// Release is the release the pass worked on ("component@version"),
	// empty when nothing was offered.
	Release  string
	From, To string
	// State is where the update stands after the pass.
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
		cfg:   cfg,
		log:   cfg.Logger,
		dir:   filepath.Join(cfg.StateDir, "downloads"),
		box:   &outbox{dir: filepath.Join(cfg.StateDir, "outbox"), log: cfg.Logger},
		nudge: make(chan struct{}, 1),
	}
	a.dl = &downloader{src: cfg.Source, newHash: cfg.NewHash, attempts: cfg.ChunkAttempts, progress: cfg.Progress, log: cfg.Logger}
	for _, d := range []string{cfg.StateDir, a.dir, a.box.dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("update: state directory: %w", err)
		}
	}
	store, err := backup.OpenStore(filepath.Join(cfg.StateDir, "backups"), backup.StoreConfig{
		Keep: cfg.KeepBackups, NewHash: cfg.NewHash, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("update: backup store: %w", err)
	}
	a.store = store
	j, err := loadJournal(cfg.StateDir, cfg.Installed)
	if err != nil {
		return nil, err
	}
	if err := j.save(cfg.StateDir); err != nil {
		return nil, err
	}
	a.j = j
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
// returns ctx.Err(). It waits CheckInterval between checks (jittered),
// less when the server or a gate says when to ask again, and checks at
// once after [Agent.CheckNow].
func (a *Agent) Run(ctx context.Context) error {
	failures := 0
	for {
		res, err := a.Update(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := a.cfg.CheckInterval
		switch {
		case err != nil:
			failures++
			backoff := min(time.Duration(1<<min(failures, 10))*time.Second, wait)
			a.log.Warn("update: pass failed", "err", err, "retry_in", backoff)
			wait = backoff
		case res.Waiting != nil:
			failures = 0
			wait = res.Waiting.After
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
		t := time.NewTimer(jitter(wait))
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
	if d <= 0 {
		return 0
	}
	return d - d/10 + mrand.N(d/5+1)
}

// Update runs one pass: it sends pending reports, resumes an update left
// in progress, or checks for a new one, and carries the update as far as
// it can go now. It returns [ErrBusy] if a pass is already running.
//
// An update that ends, whatever its outcome, is a nil error with the
// outcome in the Result; the error is for passes that could not do their
// work (the server unreachable, ctx done, the journal unwritable, a
// rollback that failed).
func (a *Agent) Update(ctx context.Context) (Result, error) {
	if !a.pass.TryLock() {
		return Result{}, ErrBusy
	}
	defer a.pass.Unlock()
	a.flush(ctx)
	if a.current() != nil {
		return a.drive(ctx, true)
	}
	resp, err := a.cfg.Source.Check(ctx, a.checkRequest())
	if err != nil {
		return Result{State: StateIdle}, fmt.Errorf("update: check: %w", err)
	}
	res := Result{State: StateIdle, Reason: resp.Reason, RetryAfter: time.Duration(resp.RetryAfterSeconds) * time.Second}
	for _, offer := range resp.Offers {
		accepted, r := a.accept(ctx, offer)
		if accepted {
			return a.drive(ctx, false)
		}
		if r.Outcome != "" || res.Release == "" {
			res = r
		}
	}
	return res, nil
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

// accept verifies an offer and, if the terminal should take it, journals
// it as offered. A refused offer is reported and remembered so that the
// same bundle is not fetched and refused again every pass.
func (a *Agent) accept(ctx context.Context, offer transport.Offer) (bool, Result) {
	bundleKey := "bundle " + hashHex(offer.Bundle)
	a.mu.Lock()
	seen := a.j.refused(bundleKey)
	a.mu.Unlock()
	if seen {
		return false, Result{State: StateIdle, Reason: transport.ReasonUpToDate}
	}
	m, err := a.cfg.Keys.Open(offer.Bundle, a.cfg.Now())
	if err == nil {
		err = release.Compatible(a.device(), release.FromManifest(m, ""))
	}
	if err == nil && m.Artifact.Size > a.cfg.MaxArtifactSize {
		err = fmt.Errorf("%w: artifact of %d bytes, limit %d", verify.ErrTooLarge, m.Artifact.Size, a.cfg.MaxArtifactSize)
	}
	if errors.Is(err, release.ErrUpToDate) {
		return false, Result{State: StateIdle, Reason: transport.ReasonUpToDate}
	}
	if err != nil {
		id := "unverified"
		to := ""
		if m != nil {
			id, to = m.ID(), m.Version
		}
		return false, a.refuseOffer(ctx, bundleKey, id, to, err)
	}
	key := releaseKey(m.ID(), m.Artifact.Digest)
	a.mu.Lock()
	seen = a.j.refused(key)
	a.mu.Unlock()
	if seen {
		// Tried before and it failed: the server must publish a new one.
		return false, Result{State: StateIdle, Release: m.ID(), Reason: transport.ReasonUpToDate}
	}
	a.mu.Lock()
	from := a.j.Components[m.Component].Version
	a.mu.Unlock()
	u := &inflight{
		ID: newID(), State: StateOffered, Bundle: offer.Bundle, ArtifactURL: offer.ArtifactURL, Policy: offer.Policy,
		Release: m.ID(), Digest: m.Artifact.Digest, Component: m.Component, From: from, To: m.Version, Accepted: a.cfg.Now(),
	}
	if err := a.update(func(j *journal) { j.Update = u }); err != nil {
		return false, Result{State: StateIdle, Release: m.ID(), Err: err}
	}
	a.log.Info("update: release offered", "release", m.ID(), "from", from)
	return true, Result{}
}

func (a *Agent) refuseOffer(ctx context.Context, key, id, to string, cause error) Result {
	reason := reasonOf(cause)
	a.log.Warn("update: release refused", "release", id, "reason", reason, "err", cause)
	rep := &transport.ReportRequest{
		ID: newID() + "-refused", Release: id, To: to, Phase: string(StateOffered),
		Outcome: transport.OutcomeRefused, Reason: reason, Detail: detail(cause), At: a.cfg.Now(),
	}
	if err := a.box.add(rep); err != nil {
		a.log.Error("update: cannot queue report", "err", err)
	}
	last := &transport.Result{Release: id, Outcome: transport.OutcomeRefused, Reason: reason, At: rep.At}
	if err := a.update(func(j *journal) { j.refuse(key); j.Last = last }); err != nil {
		a.log.Error("update: cannot record refusal", "err", err)
	}
	a.flush(ctx)
	return Result{State: StateIdle, Release: id, To: to, Outcome: transport.OutcomeRefused, Reason: reason, Err: cause}
}

// drive carries the update in the journal from its state as far as it can
// go in this pass.
func (a *Agent) drive(ctx context.Context, resumed bool) (Result, error) {
	var artifact string // set once this pass has verified the artifact on disk
	if resumed {
		a.log.Info("update: resuming", "release", a.current().Release, "state", a.current().State)
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
			if u.State.installed() {
				// The bundle verified when it was accepted and the journal
				// is ours; failing to read it now is a journal problem.
				return res, fmt.Errorf("%w: stored bundle: %v", ErrJournal, err)
			}
			if err := a.fail(u, err); err != nil {
				return res, err
			}
			continue
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
			path, err := a.dl.fetch(ctx, m, u.ArtifactURL, a.dir)
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				var perm *permanentError
				if errors.As(err, &perm) || isVerification(err) || u.DownloadRuns+1 >= a.cfg.MaxDownloadRuns {
					if err := a.fail(u, err); err != nil {
						return res, err
					}
					continue
				}
				if jerr := a.update(func(j *journal) { j.Update.DownloadRuns++ }); jerr != nil {
					return res, jerr
				}
				return res, &StepError{State: StateDownloading, Err: err}
			}
			artifact = path
			a.log.Info("update: downloaded and verified", "release", u.Release, "bytes", m.Artifact.Size)
			if err := a.setState(StateDownloaded, nil); err != nil {
				return res, err
			}

		case StateDownloaded:
			if artifact == "" {
				// Resumed: what is on disk is verified again before use.
				if err := a.setState(StateDownloading, nil); err != nil {
					return res, err
				}
				continue
			}
			if wait := a.gate(ctx, StageInstall, m, u); wait != nil {
				res.Waiting = wait
				return res, nil
			}
			if err := a.setState(StateBackingUp, nil); err != nil {
				return res, err
			}

		case StateBackingUp:
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
			if artifact == "" {
				path, err := a.dl.fetch(ctx, m, u.ArtifactURL, a.dir)
				if err != nil {
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					// The verified artifact is gone and cannot be had again:
					// what Install already did must be undone.
					if err := a.rollBack(u, transport.ReasonDownload, err); err != nil {
						return res, err
					}
					continue
				}
				artifact = path
			}
			err := a.cfg.Installer.Install(ctx, &Artifact{Manifest: m, Path: artifact, From: u.From})
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if err := a.rollBack(u, transport.ReasonInstall, err); err != nil {
					return res, err
				}
				continue
			}
			if err := a.setState(StateVerifying, nil); err != nil {
				return res, err
			}

		case StateVerifying:
			results, err := verify.RunChecks(ctx, a.cfg.Checks)
			if err != nil {
				return res, err // ctx done: the checks run again on resume
			}
			if err := results.Err(); err != nil {
				if err := a.rollBack(u, transport.ReasonHealth, err); err != nil {
					return res, err
				}
				continue
			}
			art := a.artifactFor(u, m)
			if c, ok := a.cfg.Installer.(Committer); ok {
				if err := c.Commit(ctx, art); err != nil {
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					if err := a.rollBack(u, transport.ReasonInstall, fmt.Errorf("commit: %w", err)); err != nil {
						return res, err
					}
					continue
				}
			}
			err = a.update(func(j *journal) {
				c := j.Components[m.Component]
				floor := c.Floor
				if m.Floor != "" {
					if f, err := maxVersion(floor, m.Floor); err == nil {
						floor = f
					}
				}
				j.Components[m.Component] = component{Version: m.Version, Floor: floor}
				j.Update.State = StateCommitted
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

// open verifies the journaled bundle again. Before anything is installed
// it is checked at the current time, so a release that expired while it
// waited for its window is refused; after that, at the time it was
// accepted, so that an update half done is finished or undone whatever
// the clock says now.
func (a *Agent) open(u *inflight) (*verify.Manifest, error) {
	at := a.cfg.Now()
	if u.State.installed() {
		at = u.Accepted
	}
	return a.cfg.Keys.Open(u.Bundle, at)
}

// gate asks the Gate about stage, and records why the agent waits.
func (a *Agent) gate(ctx context.Context, stage Stage, m *verify.Manifest, u *inflight) *NotNowError {
	var err error
	if a.cfg.Gate != nil {
		err = a.cfg.Gate(ctx, GateRequest{Stage: stage, Manifest: m, Policy: u.Policy})
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
	if wait != nil {
		a.waiting = fmt.Sprintf("%s: %s", stage, wait.Reason)
	} else {
		a.waiting = ""
	}
	a.mu.Unlock()
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
	return snap.ID, nil
}

func (a *Agent) artifactFor(u *inflight, m *verify.Manifest) *Artifact {
	final, _ := artifactPaths(a.dir, m.Artifact.Digest)
	return &Artifact{Manifest: m, Path: final, From: u.From}
}

// rollBack journals the move to rolling-back, with the reason the update
// failed.
func (a *Agent) rollBack(u *inflight, reason transport.Reason, cause error) error {
	a.log.Warn("update: rolling back", "release", u.Release, "state", u.State, "reason", reason, "err", cause)
	return a.setState(StateRollingBack, func(v *inflight) {
		v.Reason, v.Detail, v.FailedIn = reason, detail(cause), u.State
		v.Outcome = transport.OutcomeRolledBack
	})
}

// rollBackNow undoes the install and restores the backup. On failure the
// update stays in rolling-back, is reported as needing attention, and is
// tried again on the next pass.
func (a *Agent) rollBackNow(ctx context.Context, u *inflight, m *verify.Manifest) error {
	err := a.cfg.Installer.Rollback(ctx, a.artifactFor(u, m))
	if err == nil && u.Snapshot != "" {
		err = a.store.Restore(ctx, u.Snapshot, a.cfg.Backups)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		runs := u.RollbackRuns + 1
		a.log.Error("update: rollback failed", "release", u.Release, "attempt", runs, "err", err)
		rep := a.reportFor(u, transport.OutcomeNeedsAttention, transport.ReasonRollbackFailed, err)
		rep.ID = fmt.Sprintf("%s-needs-attention-%d", u.ID, runs)
		if runs == 1 {
			// Report the first failure; later ones add nothing the server
			// does not know until the rollback succeeds or a person acts.
			if berr := a.box.add(rep); berr != nil {
				a.log.Error("update: cannot queue report", "err", berr)
			}
			a.flush(ctx)
		}
		if jerr := a.update(func(j *journal) { j.Update.RollbackRuns = runs }); jerr != nil {
			return errors.Join(err, jerr)
		}
		return fmt.Errorf("%w: %v", ErrNeedsAttention, err)
	}
	return a.setState(StateRolledBack, nil)
}

// fail journals a refusal before anything was installed.
func (a *Agent) fail(u *inflight, cause error) error {
	reason := reasonOf(cause)
	a.log.Warn("update: release refused", "release", u.Release, "state", u.State, "reason", reason, "err", cause)
	return a.setState(StateFailed, func(v *inflight) {
		v.Outcome, v.Reason, v.Detail, v.FailedIn = transport.OutcomeRefused, reason, detail(cause), u.State
	})
}

// finish reports an ended update, cleans up after it, and returns the
// journal to idle. The report is queued before the journal moves on, so a
// power cut in between sends it twice (the ID makes that harmless), never
// not at all.
func (a *Agent) finish(ctx context.Context, u *inflight) (Result, error) {
	rep := a.reportFor(u, u.Outcome, u.Reason, nil)
	if err := a.box.add(rep); err != nil {
		a.log.Error("update: cannot queue report", "err", err)
	}
	if u.Digest.Validate() == nil {
		final, partial := artifactPaths(a.dir, u.Digest)
		os.Remove(final)
		os.Remove(partial)
	}
	if err := a.store.Prune(); err != nil {
		a.log.Warn("update: pruning backups", "err", err)
	}
	last := &transport.Result{Release: u.Release, Outcome: u.Outcome, Reason: u.Reason, At: rep.At}
	err := a.update(func(j *journal) {
		if u.Outcome != transport.OutcomeCommitted {
			j.refuse(releaseKey(u.Release, u.Digest))
		}
		j.Update, j.Last = nil, last
	})
	res := Result{Release: u.Release, From: u.From, To: u.To, State: u.State, Outcome: u.Outcome, Reason: u.Reason}
	if u.Outcome != transport.OutcomeCommitted {
		res.Err = &StepError{State: u.FailedIn, Err: errors.New(u.Detail)}
	}
	if err != nil {
		return res, err
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
		Outcome: outcome, Reason: reason, Detail: d, At: a.cfg.Now(),
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

func (a *Agent) setState(s State, mutate func(*inflight)) error {
	return a.update(func(j *journal) {
		j.Update.State = s
		if mutate != nil {
			mutate(j.Update)
		}
	})
}

// update applies change to a copy of the journal, saves it, and only then
// makes it current: memory never runs ahead of the disk.
func (a *Agent) update(change func(*journal)) error {
	a.mu.Lock()
	next := a.j.clone()
	a.mu.Unlock()
	change(next)
	if err := next.save(a.cfg.StateDir); err != nil {
		return err
	}
	a.mu.Lock()
	prev := a.j
	a.j = next
	if next.Update == nil || next.Update.State != StateGated && next.Update.State != StateDownloaded {
		a.waiting = ""
	}
	a.mu.Unlock()
	if a.cfg.Observe != nil && stateOf(prev) != stateOf(next) {
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
	switch {
	case errors.As(err, &re):
		return re.Reason
	case errors.Is(err, verify.ErrSignature):
		return transport.ReasonSignature
	case errors.Is(err, verify.ErrUnknownKey):
		return transport.ReasonUnknownKey
	case errors.Is(err, verify.ErrExpired):
		return transport.ReasonExpired
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
	}
	var step *StepError
	if errors.As(err, &step) && step.State == StateBackingUp {
		return transport.ReasonBackup
	}
	return transport.ReasonDownload
}

// isVerification reports whether err says the bytes are not the release's:
// retrying the same download will not help.
func isVerification(err error) bool {
	return errors.Is(err, verify.ErrDigestMismatch) || errors.Is(err, verify.ErrTooLarge) || errors.Is(err, verify.ErrMalformed)
}

func releaseKey(id string, d verify.Digest) string { return id + " " + string(d) }

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:12])
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
