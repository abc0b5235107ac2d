package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/update/rollout"
	"github.com/upkeephq/upkeep/update/server/store"
)

// pageSize is how many records the server reads at a time when it walks a
// rollout's devices or the fleet.
const pageSize = 1000

// casRetries bounds the attempts at a compare-and-swap on a rollout that
// other replicas keep changing.
const casRetries = 16

// inFlightPhases are the stored phases of devices that hold an offer,
// silent ones included: what MaxConcurrent caps.
var inFlightPhases = []store.Phase{store.Phase(rollout.PhaseOffered), store.Phase(rollout.PhaseDownloading),
	store.Phase(rollout.PhaseInstalling)}

// RolloutSpec defines a staged rollout of a published release: which
// terminals, in which stages, how fast, and when it halts by itself. It is
// what an operator posts and what the store keeps; the zero value of each
// field means what the zero value of the matching field of rollout.Rollout
// means (see package update/rollout for the model and the defaults).
type RolloutSpec struct {
	// ID names the rollout (letters, digits, '.', '_', '-'); devices'
	// cohorts are drawn from it.
	ID string `json:"id"`
	// Release is the published release rolled out: component@version.
	Release string `json:"release"`
	// Models, Channel, Groups and Tags select the terminals (see
	// rollout.Target); empty selects every terminal the release fits.
	Models  []string `json:"models,omitempty"`
	Channel string   `json:"channel,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	// Pilot lists device IDs that form stage 0.
	Pilot []string `json:"pilot,omitempty"`
	// Batches are cumulative percentages of the targeted fleet; empty
	// means 1, 10, 50, 100.
	Batches []float64 `json:"batches,omitempty"`
	// Start is when the rollout may begin; zero means at once.
	Start time.Time `json:"start,omitzero"`
	// SoakSeconds is the least time a stage stays the newest open one.
	SoakSeconds int64 `json:"soak_seconds,omitempty"`
	// SuccessThreshold, FailureRate and ReasonRates are percentages; see
	// rollout.Rollout.
	SuccessThreshold float64                      `json:"success_threshold,omitempty"`
	FailureRate      float64                      `json:"failure_rate,omitempty"`
	ReasonRates      map[transport.Reason]float64 `json:"reason_rates,omitempty"`
	// MinFinished is how many devices of a stage must finish before its
	// failure rate can halt the rollout.
	MinFinished int `json:"min_finished,omitempty"`
	// MaxStartsPerMinute and MaxConcurrent cap new offers and devices
	// updating at once; zero means no cap.
	MaxStartsPerMinute int `json:"max_starts_per_minute,omitempty"`
	MaxConcurrent      int `json:"max_concurrent,omitempty"`
	// Deadline is when the update becomes required (blocking).
	Deadline time.Time `json:"deadline,omitzero"`
	// Expires ends the rollout: unfinished devices are expired, not
	// failed.
	Expires time.Time `json:"expires,omitzero"`
	// RetrySeconds is how long a device whose turn is not known waits
	// before it checks again.
	RetrySeconds int64 `json:"retry_seconds,omitempty"`
	// LostAfterSeconds is how long a device holding an unfinished offer
	// may stay silent before it is counted failed with reason "lost"; zero
	// means a day (rollout.DefaultLostAfter).
	LostAfterSeconds int64 `json:"lost_after_seconds,omitempty"`
}

// maxSeconds bounds a spec's durations (about 100 years), so that they
// convert to time.Duration.
const maxSeconds = 100 * 365 * 24 * 3600

func (sp RolloutSpec) rollout() (rollout.Rollout, error) {
	if sp.SoakSeconds > maxSeconds || sp.RetrySeconds > maxSeconds || sp.LostAfterSeconds > maxSeconds {
		return rollout.Rollout{}, transport.Errorf(transport.CodeBadRequest, "rollout: soak, retry or lost after of more than a century")
	}
	r := rollout.Rollout{ID: sp.ID, Release: sp.Release,
		Target: rollout.Target{Models: sp.Models, Channel: sp.Channel, Groups: sp.Groups, Tags: sp.Tags},
		Pilot:  sp.Pilot, Batches: sp.Batches, Start: sp.Start, Soak: time.Duration(sp.SoakSeconds) * time.Second,
		SuccessThreshold: sp.SuccessThreshold, FailureRate: sp.FailureRate, ReasonRates: sp.ReasonRates,
		MinFinished: sp.MinFinished, MaxStartsPerMinute: sp.MaxStartsPerMinute, MaxConcurrent: sp.MaxConcurrent,
		Deadline: sp.Deadline, Expires: sp.Expires, Retry: time.Duration(sp.RetrySeconds) * time.Second,
		LostAfter: time.Duration(sp.LostAfterSeconds) * time.Second}
	if len(r.Batches) == 0 {
		r.Batches = nil
	}
	return r, nil
}

// Breach is the failure limit a halted rollout passed.
type Breach struct {
	Stage int `json:"stage"`
	// Reason is the failure kind whose limit was passed; empty for the
	// overall failure rate.
	Reason transport.Reason `json:"reason,omitempty"`
	// Failed of Finished devices failed; Limit is the rate they passed.
	Failed   int     `json:"failed"`
	Finished int     `json:"finished"`
	Limit    float64 `json:"limit"`
}

// failures is rollout.Failures as the store keeps it.
type failures struct {
	Total    int                      `json:"total"`
	ByReason map[transport.Reason]int `json:"by_reason,omitempty"`
}

// statusDoc is a rollout's status as the store keeps it: the policy's
// rollout.Status, and what the server adds to share among replicas.
type statusDoc struct {
	State       rollout.State `json:"state"`
	Stage       int           `json:"stage"`
	Since       time.Time     `json:"since,omitzero"`
	Started     time.Time     `json:"started,omitzero"`
	StageOpened time.Time     `json:"stage_opened,omitzero"`
	Breach      *Breach       `json:"breach,omitempty"`
	Accepted    []failures    `json:"accepted,omitempty"`
	Detail      string        `json:"detail,omitempty"`
	// Ready is set once the devices targeted when the rollout was created
	// are tracked; until then it neither starts nor offers. TrackedTo is
	// how far tracking went, the last device ID of the fleet's pages
	// done, where it resumes if it was interrupted (see Server.prepare);
	// Tracked counts the devices it tracked.
	Ready     bool   `json:"ready"`
	TrackedTo string `json:"tracked_to,omitempty"`
	Tracked   int    `json:"tracked,omitempty"`
	// DecidedAt is when a replica last ran rollout.Decide and wrote what
	// it gave; a rollout not decided for Config.RolloutEvery is decided
	// again on the next check.
	DecidedAt time.Time `json:"decided_at,omitzero"`
}

func (d statusDoc) status() rollout.Status {
	st := rollout.Status{State: d.State, Stage: d.Stage, Since: d.Since, Started: d.Started,
		StageOpened: d.StageOpened, Detail: d.Detail}
	if b := d.Breach; b != nil {
		st.Breach = rollout.Breach{Stage: b.Stage, Reason: b.Reason, Failed: b.Failed, Finished: b.Finished, Limit: b.Limit}
	}
	for _, f := range d.Accepted {
		st.Accepted = append(st.Accepted, rollout.Failures{Total: f.Total, ByReason: f.ByReason})
	}
	return st
}

func (d *statusDoc) setStatus(st rollout.Status) {
	d.State, d.Stage, d.Since, d.Started, d.StageOpened, d.Detail =
		st.State, st.Stage, st.Since, st.Started, st.StageOpened, st.Detail
	d.Breach = nil
	if b := st.Breach; b != (rollout.Breach{}) {
		d.Breach = &Breach{Stage: b.Stage, Reason: b.Reason, Failed: b.Failed, Finished: b.Finished, Limit: b.Limit}
	}
	d.Accepted = nil
	for _, f := range st.Accepted {
		d.Accepted = append(d.Accepted, failures{Total: f.Total, ByReason: f.ByReason})
	}
}

// rolloutRec is a rollout read from the store.
type rolloutRec struct {
	rec  store.Rollout
	spec RolloutSpec
	def  rollout.Rollout
	doc  statusDoc
}

func parseRollout(rec store.Rollout) (*rolloutRec, error) {
	ro := &rolloutRec{rec: rec}
	if err := json.Unmarshal(rec.Definition, &ro.spec); err != nil {
		return nil, fmt.Errorf("server: rollout %s: definition: %w", rec.ID, err)
	}
	if len(rec.Status) > 0 {
		if err := json.Unmarshal(rec.Status, &ro.doc); err != nil {
			return nil, fmt.Errorf("server: rollout %s: status: %w", rec.ID, err)
		}
	}
	def, err := ro.spec.rollout()
	if err != nil {
		return nil, fmt.Errorf("server: rollout %s: %w", rec.ID, err)
	}
	ro.def = def
	return ro, nil
}

// final reports whether the rollout is over: aborted or completed.
func (ro *rolloutRec) final() bool {
	return ro.doc.State == rollout.StateAborted || ro.doc.State == rollout.StateCompleted
}

func (s *Server) loadRollout(ctx context.Context, id string) (*rolloutRec, error) {
	rec, err := s.store.Rollout(ctx, id)
	if err != nil {
		return nil, fromStore(err, "no rollout %q", id)
	}
	return parseRollout(rec)
}

func (s *Server) listRollouts(ctx context.Context) ([]*rolloutRec, error) {
	recs, err := s.store.ListRollouts(ctx)
	if err != nil {
		return nil, fromStore(err, "list rollouts")
	}
	out := make([]*rolloutRec, 0, len(recs))
	for _, rec := range recs {
		ro, err := parseRollout(rec)
		if err != nil {
			// A rollout that cannot be read might govern any release:
			// offering around it could skip its stages.
			return nil, err
		}
		out = append(out, ro)
	}
	return out, nil
}

// rolloutsByRelease returns every rollout by the release it rolls out, in
// ID order. A release with rollouts is offered only through them.
func (s *Server) rolloutsByRelease(ctx context.Context) (map[string][]*rolloutRec, error) {
	rs, err := s.listRollouts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]*rolloutRec{}
	for _, ro := range rs {
		out[ro.def.Release] = append(out[ro.def.Release], ro)
	}
	return out, nil
}

// updateRollout changes a rollout by compare and swap: it reads it,
// passes it to change, and writes what change leaves when change reports
// a change, reading again and retrying, after a short random wait that
// grows, when another writer came first. change may run several times
// and must start afresh each time. Only status changes (decisions and
// operators' commands) take this path: offers take their places under the
// caps in the store (ClaimRolloutDevice), so a burst of checks does not
// fight over the rollout.
func (s *Server) updateRollout(ctx context.Context, id string, change func(ro *rolloutRec) (bool, error)) (*rolloutRec, error) {
	for attempt := range casRetries {
		if attempt > 0 {
			wait := time.NewTimer(time.Duration(1 + rand.Int64N(int64(attempt)*int64(2*time.Millisecond))))
			select {
			case <-ctx.Done():
				wait.Stop()
				return nil, ctx.Err()
			case <-wait.C:
			}
		}
		ro, err := s.loadRollout(ctx, id)
		if err != nil {
			return nil, err
		}
		changed, err := change(ro)
		if err != nil || !changed {
			return ro, err
		}
		ro.rec.Status, err = json.Marshal(ro.doc)
		if err != nil {
			return nil, err
		}
		ro.rec.UpdatedAt = s.cfg.Now()
		rec, err := s.store.UpdateRollout(ctx, ro.rec)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fromStore(err, "rollout %s", id)
		}
		ro.rec = rec
		return ro, nil
	}
	return nil, transport.Errorf(transport.CodeConflict, "rollout %s keeps changing; try again", id)
}

// Device states in the store. The store keeps a phase and a reason per
// device and counts devices by the two, so the server folds into them
// what rollout.Decide needs counted per stage: the reason is the device's
// stage ("2"), followed, for a failed device, by its reason code
// ("2:boot_failed"). A device that went silent before it was offered the
// release is in phase "offline" with the phase it had kept in the reason
// ("2:pending"), so it takes it up again when it comes back. One that went
// silent holding an offer stays in its phase, marked silent
// ("2:silent"): the store then counts it among the devices in flight,
// which MaxConcurrent caps. One CountRolloutDevices then gives
// rollout.Counts for every stage.

// detailSilent marks, in a stored reason, a device in flight that has gone
// silent.
const detailSilent = "silent"

func encodeDevice(rolloutID string, d rollout.DeviceState) store.RolloutDevice {
	phase := d.Phase
	if phase == "" {
		phase = rollout.PhasePending
	}
	out := store.RolloutDevice{RolloutID: rolloutID, DeviceID: d.DeviceID, Phase: store.Phase(phase),
		Reason: fmt.Sprint(d.Stage), UpdatedAt: d.UpdatedAt}
	switch {
	case phase == rollout.PhaseFailed:
		out.Reason += ":" + string(d.Reason)
	case d.Offline && inFlight(phase):
		out.Reason += ":" + detailSilent
	case d.Offline && !phase.Finished():
		out.Phase = store.PhaseOffline
		out.Reason += ":" + string(phase)
	}
	return out
}

func decodeDevice(rec store.RolloutDevice) rollout.DeviceState {
	stage, detail := splitReason(rec.Reason)
	d := rollout.DeviceState{DeviceID: rec.DeviceID, Stage: stage, Phase: rollout.Phase(rec.Phase), UpdatedAt: rec.UpdatedAt}
	switch {
	case d.Phase == rollout.PhaseFailed:
		d.Reason = transport.Reason(detail)
	case d.Phase == rollout.Phase(store.PhaseOffline):
		d.Offline, d.Phase = true, rollout.Phase(cmp.Or(detail, string(rollout.PhasePending)))
	case inFlight(d.Phase) && detail == detailSilent:
		d.Offline = true
	}
	return d
}

// splitReason parses a stored reason: the stage, and what follows it.
func splitReason(reason string) (stage int, detail string) {
	num, detail, _ := strings.Cut(reason, ":")
	if _, err := fmt.Sscan(num, &stage); err != nil {
		return rollout.NoBatch, detail
	}
	return stage, detail
}

func sameDevice(a, b store.RolloutDevice) bool { return a.Phase == b.Phase && a.Reason == b.Reason }

// counts returns the rollout's devices counted per stage, from the store's
// counters.
func (s *Server) counts(ctx context.Context, ro *rolloutRec) ([]rollout.Counts, error) {
	pcs, err := s.store.CountRolloutDevices(ctx, ro.rec.ID)
	if err != nil {
		return nil, fromStore(err, "count rollout %s", ro.rec.ID)
	}
	counts := make([]rollout.Counts, ro.def.Stages())
	for _, pc := range pcs {
		stage, detail := splitReason(pc.Reason)
		if stage < 0 || stage >= len(counts) {
			continue
		}
		c, n := &counts[stage], int(pc.Count)
		switch p := rollout.Phase(pc.Phase); {
		case inFlight(p) && detail == detailSilent,
			// Written before silent devices in flight kept their phase.
			p == rollout.Phase(store.PhaseOffline) && inFlight(rollout.Phase(detail)):
			c.Silent += n
			continue
		}
		switch rollout.Phase(pc.Phase) {
		case rollout.PhasePending:
			c.Pending += n
		case rollout.PhaseOffered:
			c.Offered += n
		case rollout.PhaseDownloading:
			c.Downloading += n
		case rollout.PhaseInstalling:
			c.Installing += n
		case rollout.PhaseSucceeded:
			c.Succeeded += n
		case rollout.PhaseFailed:
			c.Failed.Total += n
			if c.Failed.ByReason == nil {
				c.Failed.ByReason = map[transport.Reason]int{}
			}
			c.Failed.ByReason[transport.Reason(detail)] += n
		case rollout.PhaseExpired:
			c.Expired += n
		case rollout.PhaseCurrent:
			c.Current += n
		case rollout.Phase(store.PhaseOffline):
			c.Offline += n
		}
	}
	return counts, nil
}

// rolloutActor is who the audit log says moved a rollout by itself.
var rolloutActor = Operator{Name: "rollout", Role: roleSystem}

// decide runs rollout.Decide on a rollout and writes what it gives, by
// compare and swap so that a change is made, and audited, by one replica
// only. It writes when the status changes, or to mark the rollout decided
// when it was not for Config.RolloutEvery.
func (s *Server) decide(ctx context.Context, id string) (*rolloutRec, error) {
	now := s.cfg.Now()
	var events []rollout.Event
	ro, err := s.updateRollout(ctx, id, func(ro *rolloutRec) (bool, error) {
		events = nil
		if !ro.doc.Ready || ro.final() {
			return false, nil
		}
		counts, err := s.counts(ctx, ro)
		if err != nil {
			return false, err
		}
		st, evs := rollout.Decide(ro.def, ro.doc.status(), counts, now)
		events = evs
		if len(evs) == 0 && now.Sub(ro.doc.DecidedAt) < s.cfg.RolloutEvery {
			return false, nil
		}
		ro.doc.setStatus(st)
		ro.doc.DecidedAt = now
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		s.log.Info("server: rollout "+string(e.Kind), "rollout", id, "stage", e.Stage, "detail", e.Detail)
		s.audit(ctx, rolloutActor, "rollout."+string(e.Kind), id, nil, e.Detail)
		if e.Kind == rollout.EventExpired {
			if err := s.expireDevices(ctx, ro, now); err != nil {
				return nil, err
			}
		}
	}
	return ro, nil
}

// fresh returns the rollout decided again if no replica decided it for
// Config.RolloutEvery: what moves a rollout on time alone (its start, a
// stage's soak, its expiry) needs no background loop.
func (s *Server) fresh(ctx context.Context, ro *rolloutRec, now time.Time) (*rolloutRec, error) {
	if !ro.doc.Ready || ro.final() || now.Sub(ro.doc.DecidedAt) < s.cfg.RolloutEvery {
		return ro, nil
	}
	return s.decide(ctx, ro.rec.ID)
}

// change is the conditional write of next over a device's state as read,
// rec: it lands only if no one changed the device meanwhile.
func change(rec, next store.RolloutDevice) store.DeviceChange {
	return store.DeviceChange{State: next, IfPhase: rec.Phase, IfReason: rec.Reason}
}

// eachDevice calls fn with each page of a rollout's devices, by device
// ID, and writes the changes fn returns (see change): a device that a
// report or a check changed since the page was read keeps what they wrote.
// It returns the devices whose change did not land.
func (s *Server) eachDevice(ctx context.Context, id string, fn func([]store.RolloutDevice) ([]store.DeviceChange, error)) ([]string, error) {
	after := ""
	var lost []string
	for {
		page, err := s.store.ListRolloutDevices(ctx, id, "", after, pageSize)
		if err != nil {
			return lost, fromStore(err, "rollout %s devices", id)
		}
		changes, err := fn(page)
		if err != nil {
			return lost, err
		}
		if len(changes) > 0 {
			applied, err := s.store.ChangeRolloutDevices(ctx, changes)
			if err != nil {
				return lost, fromStore(err, "rollout %s devices", id)
			}
			for i, ok := range applied {
				if !ok {
					lost = append(lost, changes[i].State.DeviceID)
				}
			}
		}
		if len(page) < pageSize {
			return lost, nil
		}
		after = page[len(page)-1].DeviceID
	}
}

// changeDevice moves one device's state in a rollout by compare and swap:
// it reads the state, passes it to move and writes what move gives if
// the device is still as read, reading again when another writer came
// first. It returns the state the device is left in and whether it
// changed it; an error matching store.ErrNotFound if the device is not in
// the rollout.
func (s *Server) changeDevice(ctx context.Context, rolloutID, deviceID string, move func(rollout.DeviceState) rollout.DeviceState) (rollout.DeviceState, bool, error) {
	for range casRetries {
		rec, err := s.store.RolloutDevice(ctx, rolloutID, deviceID)
		if errors.Is(err, store.ErrNotFound) {
			return rollout.DeviceState{}, false, err
		}
		if err != nil {
			return rollout.DeviceState{}, false, fromStore(err, "rollout %s device %s", rolloutID, deviceID)
		}
		d := move(decodeDevice(rec))
		next := encodeDevice(rolloutID, d)
		if sameDevice(next, rec) {
			return d, false, nil
		}
		applied, err := s.store.ChangeRolloutDevices(ctx, []store.DeviceChange{change(rec, next)})
		if err != nil {
			return rollout.DeviceState{}, false, fromStore(err, "rollout %s device %s", rolloutID, deviceID)
		}
		if applied[0] {
			return d, true, nil
		}
	}
	return rollout.DeviceState{}, false, transport.Errorf(transport.CodeConflict,
		"rollout %s device %s keeps changing; try again", rolloutID, deviceID)
}

// expireDevices expires every unfinished device of an expired rollout.
// One that changed while its page was read (a late report) is read again.
func (s *Server) expireDevices(ctx context.Context, ro *rolloutRec, now time.Time) error {
	lost, err := s.eachDevice(ctx, ro.rec.ID, func(page []store.RolloutDevice) ([]store.DeviceChange, error) {
		var out []store.DeviceChange
		for _, rec := range page {
			if next := encodeDevice(ro.rec.ID, decodeDevice(rec).Expire(now)); !sameDevice(next, rec) {
				out = append(out, change(rec, next))
			}
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	for _, id := range lost {
		expire := func(d rollout.DeviceState) rollout.DeviceState { return d.Expire(now) }
		if _, _, err := s.changeDevice(ctx, ro.rec.ID, id, expire); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Reconcile does one round of [Server.Run]'s rollout work: for every
// rollout under way it sweeps the devices that have not finished (offline
// when their terminal has gone silent, back when it beats again, progress
// from what their heartbeats say, a result the terminal holds that the
// rollout missed) and decides the rollout again. A rollout whose creation
// was interrupted (a store error, a replica that stopped) while it
// tracked the fleet, and that no one has moved on for two
// Config.RolloutEvery, is taken up where it stopped. Tests and simulators
// call it to step a server without Run's timer.
func (s *Server) Reconcile(ctx context.Context) error {
	rs, err := s.listRollouts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	now := s.cfg.Now()
	for _, ro := range rs {
		if !ro.doc.Ready && !ro.final() && now.Sub(ro.rec.UpdatedAt) >= 2*s.cfg.RolloutEvery {
			s.log.Warn("server: resuming the creation of a rollout", "rollout", ro.rec.ID, "tracked", ro.doc.Tracked,
				"after", ro.doc.TrackedTo)
			if _, err := s.prepare(ctx, ro.rec.ID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !ro.doc.Ready || ro.final() {
			continue
		}
		if err := s.sweep(ctx, ro); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := s.decide(ctx, ro.rec.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweep brings a rollout's unfinished devices up to date with what their
// terminals' records say. A device that a report or a check changed
// while the sweep ran keeps what they wrote: the next sweep sees it.
func (s *Server) sweep(ctx context.Context, ro *rolloutRec) error {
	now := s.cfg.Now()
	cur := &terminalCursor{fleet: s.store}
	prev := ""
	_, err := s.eachDevice(ctx, ro.rec.ID, func(page []store.RolloutDevice) ([]store.DeviceChange, error) {
		var out []store.DeviceChange
		for _, rec := range page {
			d := decodeDevice(rec)
			if d.Phase.Finished() {
				prev = rec.DeviceID
				continue
			}
			t, ok, err := cur.get(ctx, rec.DeviceID, prev)
			prev = rec.DeviceID
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if t.Status.Release == ro.def.Release {
				if p, ok := rollout.PhaseOfState(t.Status.State); ok {
					d = d.Observe(p, "", now)
				}
			}
			if r := t.LastResult; r != nil && r.Release == ro.def.Release && !r.At.Before(ro.rec.CreatedAt) &&
				!notYet(transport.Outcome(r.Outcome), transport.Reason(r.Reason)) {
				// A report recorded with the terminal whose rollout write
				// was lost (its replica failed between the two).
				reason := transport.Reason(r.Reason)
				d = d.Observe(rollout.PhaseOf(transport.Outcome(r.Outcome), reason), reason, now)
			}
			if s.online(t, now) {
				d.Offline = false
			} else if d = d.Silent(ro.def, lastHeard(t), now); d.Reason == rollout.ReasonLost {
				s.log.Warn("server: a device went silent during its update and is lost", "rollout", ro.rec.ID,
					"device", t.ID, "last_seen", t.LastSeen)
			}
			if next := encodeDevice(ro.rec.ID, d); !sameDevice(next, rec) {
				out = append(out, change(rec, next))
			}
		}
		return out, nil
	})
	return err
}

// online reports whether a terminal is alive by the heartbeat registry's
// rule, from what the store holds: a terminal that has never beat is
// judged from when it registered.
func (s *Server) online(t store.Terminal, now time.Time) bool {
	return s.live.Judge(t.ID, lastHeard(t), t.Interval, now).Online
}

// lastHeard is when a terminal was last heard from: its latest heartbeat,
// or its registration if it never beat.
func lastHeard(t store.Terminal) time.Time {
	if t.LastSeen.IsZero() {
		return t.RegisteredAt
	}
	return t.LastSeen
}

// terminalCursor reads terminals in device ID order, a page at a time,
// for a caller that asks for rising IDs: one scan instead of a read per
// device.
type terminalCursor struct {
	fleet store.Fleet
	page  []store.Terminal
	i     int
	last  string // the last ID read
	end   bool   // no terminals after last
}

// get returns the terminal with ID id; prev is an ID below id known to
// need no terminal, where reading may resume.
func (c *terminalCursor) get(ctx context.Context, id, prev string) (store.Terminal, bool, error) {
	for {
		for c.i < len(c.page) && c.page[c.i].ID < id {
			c.i++
		}
		if c.i < len(c.page) {
			return c.page[c.i], c.page[c.i].ID == id, nil
		}
		if c.end {
			return store.Terminal{}, false, nil
		}
		after := max(prev, c.last)
		page, err := c.fleet.ListTerminals(ctx, after, pageSize)
		if err != nil {
			return store.Terminal{}, false, fromStore(err, "list terminals")
		}
		c.page, c.i, c.end = page, 0, len(page) < pageSize
		c.last = after
		if len(page) > 0 {
			c.last = page[len(page)-1].ID
		}
		if len(page) == 0 {
			return store.Terminal{}, false, nil
		}
	}
}

// grant is a rollout's leave to offer its release to a device.
type grant struct {
	ro     *rolloutRec
	state  rollout.DeviceState
	stored store.RolloutDevice // as the store had it; zero if untracked
	policy transport.Policy
	// untracked: a completed rollout that reached the whole targeted
	// fleet offers to a terminal that came later without counting it.
	untracked bool
}

// admit asks the rollouts of release p whether to offer it to terminal t
// now. It returns the first rollout's grant, or nil and how long the
// terminal should wait before asking again (zero when waiting will not
// help). A terminal a rollout targets is tracked in it on its first check.
func (s *Server) admit(ctx context.Context, rs []*rolloutRec, t store.Terminal, dev release.Device, p *published, all []release.Release, now time.Time) (*grant, time.Duration, error) {
	if p.rel.Channel != cmp.Or(dev.Channel, release.DefaultChannel) {
		return nil, 0, nil // this publication is not for the terminal: negotiation skips it
	}
	rd := rollout.Device{ID: t.ID, Model: t.Model, Channel: t.Channel, Groups: groupsOf(t), Tags: t.Tags}
	var wait time.Duration
	later := func(d time.Duration) {
		if d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	for _, ro := range rs {
		if !rollout.Eligible(ro.def, rd) {
			continue
		}
		if !ro.doc.Ready {
			later(time.Minute) // being created: its devices are being tracked
			continue
		}
		fr, err := s.fresh(ctx, ro, now)
		switch {
		case err == nil:
			ro = fr
		case !errors.Is(err, transport.ErrConflict):
			return nil, 0, err
		} // else other replicas keep deciding it: go on with it as read
		g := &grant{ro: ro}
		g.stored, err = s.store.RolloutDevice(ctx, ro.rec.ID, t.ID)
		switch {
		case err == nil:
			g.state = decodeDevice(g.stored)
			if !g.state.Phase.Finished() && !inFlight(g.state.Phase) &&
				errors.Is(release.Compatible(dev, p.rel), release.ErrUpToDate) {
				// It got the release another way before it was offered it.
				next := encodeDevice(ro.rec.ID, g.state.Observe(rollout.PhaseCurrent, "", now))
				if _, err := s.store.ChangeRolloutDevices(ctx, []store.DeviceChange{change(g.stored, next)}); err != nil {
					return nil, 0, fromStore(err, "rollout %s device %s", ro.rec.ID, t.ID)
				}
				continue
			}
		case errors.Is(err, store.ErrNotFound):
			var ok bool
			if g.state, ok = track(ro.def, t.ID, dev, p.rel, all, now); !ok {
				continue // the release does not fit the terminal
			}
			if ro.doc.State == rollout.StateCompleted && reachesAll(ro.def, now) {
				g.untracked = true
				g.policy = deadlinePolicy(ro.def, now)
				return g, 0, nil
			}
			if g.state.Stage != rollout.NoBatch && !ro.final() {
				g.stored = encodeDevice(ro.rec.ID, g.state)
				applied, err := s.store.ChangeRolloutDevices(ctx, []store.DeviceChange{{State: g.stored}})
				if err != nil {
					return nil, 0, fromStore(err, "track %s in rollout %s", t.ID, ro.rec.ID)
				}
				if !applied[0] {
					// Tracked meanwhile, by another check of the terminal.
					later(10 * time.Second)
					continue
				}
			}
		default:
			return nil, 0, fromStore(err, "rollout %s device %s", ro.rec.ID, t.ID)
		}
		g.state.Offline = false // it is checking
		// The caps as last read, to refuse at once when they are reached;
		// commitOffer takes the place for good.
		load := rollout.Load{}
		if ro.def.MaxStartsPerMinute > 0 && ro.rec.StartsWindow.Equal(now.Truncate(time.Minute)) {
			load.StartedThisMinute = ro.rec.Starts
		}
		if ro.def.MaxConcurrent > 0 && !inFlight(g.state.Phase) {
			counts, err := s.counts(ctx, ro)
			if err != nil {
				return nil, 0, err
			}
			for _, c := range counts {
				load.InFlight += c.InFlight()
			}
		}
		dec := rollout.Offer(ro.def, ro.doc.status(), g.state, now, load)
		if dec.Offer {
			g.policy = dec.Policy
			return g, 0, nil
		}
		later(dec.RetryAfter)
	}
	return nil, wait, nil
}

// track returns the state of terminal id entering rollout r of release
// rel, and false if rel does not fit it. A terminal that already runs rel
// is current: it installs nothing, so it counts neither as a success nor
// in the failure rates. A terminal that lacks what rel requires fits when the
// releases published (all) can give it that first: its plan installs them
// before rel.
func track(r rollout.Rollout, id string, dev release.Device, rel release.Release, all []release.Release, now time.Time) (rollout.DeviceState, bool) {
	d := rollout.Track(r, id)
	switch err := release.Compatible(dev, rel); {
	case err == nil:
		return d, true
	case errors.Is(err, release.ErrUpToDate):
		return d.Observe(rollout.PhaseCurrent, "", now), true
	case errors.Is(err, release.ErrRequirementUnmet):
		_, err := release.PlanFor(dev, rel, all, now)
		return d, err == nil
	}
	return d, false
}

// releases are the published releases, as negotiation takes them.
func releases(cat []*published) []release.Release {
	out := make([]release.Release, len(cat))
	for i, p := range cat {
		out[i] = p.rel
	}
	return out
}

// reachesAll reports whether a completed rollout covered its whole target
// and has not expired: its release is then out, and a terminal targeted
// later is offered it like any other.
func reachesAll(r rollout.Rollout, now time.Time) bool {
	b := r.Batches
	full := len(b) == 0 || b[len(b)-1] >= 100
	return full && (r.Expires.IsZero() || now.Before(r.Expires))
}

func deadlinePolicy(r rollout.Rollout, now time.Time) transport.Policy {
	if r.Deadline.IsZero() {
		return transport.Policy{}
	}
	return transport.Policy{Deadline: r.Deadline, Blocking: !now.Before(r.Deadline)}
}

func inFlight(p rollout.Phase) bool {
	return p == rollout.PhaseOffered || p == rollout.PhaseDownloading || p == rollout.PhaseInstalling
}

func groupsOf(t store.Terminal) []string {
	if t.Group == "" {
		return nil
	}
	return []string{t.Group}
}

// commitOffer records an offer a rollout granted. A first offer takes its
// place under the rollout's caps (MaxConcurrent, MaxStartsPerMinute) in
// the store, in the one transaction that marks the device offered, so
// that concurrent checks on any replica never overshoot them. It reports
// false, and when to ask again, if a cap was reached meanwhile or the
// device's state changed under it.
func (s *Server) commitOffer(ctx context.Context, g *grant, now time.Time) (bool, time.Duration, error) {
	if g.untracked {
		return true, 0, nil
	}
	id, dev := g.ro.rec.ID, g.state.DeviceID
	next := encodeDevice(id, g.state.MarkOffered(now))
	if sameDevice(next, g.stored) {
		return true, 0, nil
	}
	change := store.DeviceChange{State: next, IfPhase: g.stored.Phase, IfReason: g.stored.Reason}
	if inFlight(g.state.Phase) {
		// Offered again (it lost its offer, or was silent): it has its
		// place. A report or a sweep that changed it meanwhile wins.
		_, err := s.store.ChangeRolloutDevices(ctx, []store.DeviceChange{change})
		return err == nil, 0, fromStore(err, "rollout %s device %s", id, dev)
	}
	c := store.Claim{DeviceChange: change}
	if n := g.ro.def.MaxConcurrent; n > 0 {
		c.InFlight, c.MaxInFlight = inFlightPhases, n
	}
	if n := g.ro.def.MaxStartsPerMinute; n > 0 {
		c.Window, c.MaxStarts = now.Truncate(time.Minute), n
	}
	err := s.store.ClaimRolloutDevice(ctx, c)
	switch {
	case err == nil:
		return true, 0, nil
	case errors.Is(err, store.ErrLimit):
		// As rollout.Offer answers a device the caps refuse.
		full := rollout.Load{StartedThisMinute: g.ro.def.MaxStartsPerMinute, InFlight: g.ro.def.MaxConcurrent}
		return false, rollout.Offer(g.ro.def, g.ro.doc.status(), g.state, now, full).RetryAfter, nil
	case errors.Is(err, store.ErrConflict):
		// Another check of the terminal, or its report, came first.
		rec, err := s.store.RolloutDevice(ctx, id, dev)
		if err != nil {
			return false, 0, fromStore(err, "rollout %s device %s", id, dev)
		}
		if inFlight(decodeDevice(rec).Phase) {
			return true, 0, nil // offered by the other check, under the caps
		}
		return false, 10 * time.Second, nil
	}
	return false, 0, fromStore(err, "rollout %s device %s", id, dev)
}

// notYet reports whether a report says the terminal refused a release
// only because it lacks what the release requires: it looked at a later
// step of its plan before the steps that meet them. That is no failure of
// the release; the device stays where it is in the release's rollouts.
func notYet(o transport.Outcome, reason transport.Reason) bool {
	return o == transport.OutcomeRefused && reason == transport.ReasonRequirementUnmet
}

// observeReport moves a device on in the rollouts of the release it
// reports on, and decides a rollout again when the device finished. The
// device's state changes by compare and swap, so a check or a sweep on
// another replica at the same moment neither overwrites the report nor
// is overwritten by it.
func (s *Server) observeReport(ctx context.Context, deviceID string, req *transport.ReportRequest, now time.Time) error {
	governed, err := s.rolloutsByRelease(ctx)
	if err != nil {
		return err
	}
	if notYet(req.Outcome, req.Reason) {
		return nil
	}
	phase := rollout.PhaseOf(req.Outcome, req.Reason)
	observe := func(d rollout.DeviceState) rollout.DeviceState {
		d = d.Observe(phase, req.Reason, now)
		d.Offline = false
		return d
	}
	for _, ro := range governed[req.Release] {
		d, changed, err := s.changeDevice(ctx, ro.rec.ID, deviceID, observe)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if changed && d.Phase.Finished() && ro.doc.Ready && !ro.final() {
			if _, err := s.decide(ctx, ro.rec.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateRollout starts a staged rollout of a published release: from now
// on the release is offered only as its rollouts allow. Every terminal the
// spec targets and the release fits is tracked in it at once (terminals
// that come later, on their first check); then the rollout is decided,
// which starts it if its start time has come. Tracking goes on if ctx
// ends meanwhile; if it stops on an error (transport.ErrUnavailable), the
// rollout exists, preparing, and [Server.Reconcile] takes it up where it
// stopped, as does calling CreateRollout again with the same spec. by
// must be an admin; the creation, or its refusal, lands in the audit log.
func (s *Server) CreateRollout(ctx context.Context, by Operator, spec RolloutSpec) (RolloutStatus, error) {
	by = by.orSystem()
	if err := s.require(ctx, by, RoleAdmin, "rollout.create", spec.ID); err != nil {
		return RolloutStatus{}, err
	}
	st, detail, err := s.createRollout(ctx, spec)
	s.audit(ctx, by, "rollout.create", spec.ID, err, joinDetail(spec.Release, detail))
	return st, err
}

func (s *Server) createRollout(ctx context.Context, spec RolloutSpec) (RolloutStatus, string, error) {
	now := s.cfg.Now()
	def, err := spec.rollout()
	if err != nil {
		return RolloutStatus{}, "", err
	}
	if err := def.Validate(); err != nil {
		return RolloutStatus{}, "", fromRollout(err)
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return RolloutStatus{}, "", err
	}
	if !slices.ContainsFunc(cat, func(p *published) bool { return p.rel.ID() == def.Release }) {
		return RolloutStatus{}, "", transport.Errorf(transport.CodeNotFound, "release %s is not published", def.Release)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return RolloutStatus{}, "", err
	}
	docJSON, _ := json.Marshal(statusDoc{})
	_, err = s.store.CreateRollout(ctx, store.Rollout{ID: spec.ID, Definition: specJSON, Status: docJSON,
		CreatedAt: now, UpdatedAt: now})
	resumed := false
	switch {
	case errors.Is(err, store.ErrExists):
		// The same spec again, for a rollout whose creation was
		// interrupted: take it up where it stopped.
		ro, lerr := s.loadRollout(ctx, spec.ID)
		if lerr != nil || ro.doc.Ready || ro.final() || !bytes.Equal(ro.rec.Definition, specJSON) {
			return RolloutStatus{}, "", transport.Errorf(transport.CodeConflict, "rollout %s exists", spec.ID)
		}
		resumed = true
	case err != nil:
		return RolloutStatus{}, "", fromStore(err, "create rollout %s", spec.ID)
	}
	// Tracking a large fleet takes a while: it goes on if the operator's
	// request ends meanwhile (a proxy's timeout), and if it stops, on an
	// error or with the process, Reconcile takes it up later.
	n, err := s.prepare(context.WithoutCancel(ctx), spec.ID)
	if err != nil {
		s.log.Error("server: tracking a new rollout's terminals stopped; Reconcile resumes it", "rollout", spec.ID, "err", err)
		return RolloutStatus{}, "", transport.Errorf(transport.CodeUnavailable,
			"rollout %s is created, but tracking its terminals stopped: it resumes in the background, or post it again", spec.ID)
	}
	st, err := s.Rollout(ctx, spec.ID)
	detail := fmt.Sprintf("%d terminals tracked", n)
	if resumed {
		detail = "resumed: " + detail
	}
	return st, detail, err
}

// prepare tracks, in a rollout being created, every terminal the rollout
// targets and its release fits, a page of the fleet at a time from where
// an earlier attempt stopped, recording how far it went after each page;
// then it marks the rollout ready and decides it, which starts it if its
// start time has come. Several may run at once (a request and Reconcile
// on another replica): tracking a device twice writes it once. It returns
// how many devices the rollout tracked.
func (s *Server) prepare(ctx context.Context, id string) (int, error) {
	ro, err := s.loadRollout(ctx, id)
	if err != nil {
		return 0, err
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return 0, err
	}
	after := ro.doc.TrackedTo
	for !ro.doc.Ready && !ro.final() {
		page, err := s.store.ListTerminals(ctx, after, pageSize)
		if err != nil {
			return 0, fromStore(err, "list terminals")
		}
		n, err := s.trackPage(ctx, ro.def, cat, page)
		if err != nil {
			return 0, err
		}
		done := len(page) < pageSize
		if len(page) > 0 {
			after = page[len(page)-1].ID
		}
		ro, err = s.updateRollout(ctx, id, func(ro *rolloutRec) (bool, error) {
			if ro.doc.Ready || ro.final() {
				return false, nil // another finished it, or an operator aborted it
			}
			ro.doc.TrackedTo = max(ro.doc.TrackedTo, after)
			ro.doc.Tracked += n
			ro.doc.Ready = done
			return true, nil
		})
		if err != nil {
			return 0, err
		}
	}
	if ro.doc.Ready && !ro.final() {
		if ro, err = s.decide(ctx, id); err != nil {
			return 0, err
		}
	}
	return ro.doc.Tracked, nil
}

// trackPage tracks, in a rollout being created, the terminals of a page of
// the fleet that it targets and its release fits, and returns how many it
// tracked now (a device tracked already keeps its state).
func (s *Server) trackPage(ctx context.Context, def rollout.Rollout, cat []*published, page []store.Terminal) (int, error) {
	now := s.cfg.Now()
	all := releases(cat)
	var changes []store.DeviceChange
	for _, t := range page {
		rd := rollout.Device{ID: t.ID, Model: t.Model, Channel: t.Channel, Groups: groupsOf(t), Tags: t.Tags}
		if !rollout.Eligible(def, rd) {
			continue
		}
		i := slices.IndexFunc(cat, func(p *published) bool {
			return p.rel.ID() == def.Release && p.rel.Channel == cmp.Or(t.Channel, release.DefaultChannel)
		})
		if i < 0 {
			continue
		}
		d, ok := track(def, t.ID, deviceOf(t), cat[i].rel, all, now)
		if !ok || d.Stage == rollout.NoBatch {
			continue
		}
		changes = append(changes, store.DeviceChange{State: encodeDevice(def.ID, d)}) // a first write
	}
	if len(changes) == 0 {
		return 0, nil
	}
	applied, err := s.store.ChangeRolloutDevices(ctx, changes)
	if err != nil {
		return 0, fromStore(err, "track rollout %s", def.ID)
	}
	n := 0
	for _, ok := range applied {
		if ok {
			n++
		}
	}
	return n, nil
}

// deviceOf is a stored terminal as negotiation sees it.
func deviceOf(t store.Terminal) release.Device {
	d := release.Device{Model: t.Model, HardwareRevision: t.HardwareRevision, Channel: t.Channel,
		Components: make(map[string]release.Installed, len(t.Components))}
	for _, c := range t.Components {
		d.Components[c.Name] = release.Installed{Version: c.Version, Floor: c.Floor}
	}
	return d
}

// PauseRollout stops a rollout offering its release; devices already
// working on it carry on. note says why, for the audit log. by must be an
// admin.
func (s *Server) PauseRollout(ctx context.Context, by Operator, id, note string) (RolloutStatus, error) {
	return s.transition(ctx, by, id, rollout.ActionPause, note)
}

// ResumeRollout restarts a paused or halted rollout. Resuming a halted
// rollout accepts the failures so far: its limits count only new ones.
// by must be an admin.
func (s *Server) ResumeRollout(ctx context.Context, by Operator, id, note string) (RolloutStatus, error) {
	return s.transition(ctx, by, id, rollout.ActionResume, note)
}

// AbortRollout stops a rollout for good: nothing more is offered through
// it (its release is then offered to no one, unless another rollout of it
// runs). by must be an admin.
func (s *Server) AbortRollout(ctx context.Context, by Operator, id, note string) (RolloutStatus, error) {
	return s.transition(ctx, by, id, rollout.ActionAbort, note)
}

func (s *Server) transition(ctx context.Context, by Operator, id string, action rollout.Action, note string) (RolloutStatus, error) {
	by = by.orSystem()
	name := "rollout." + string(action)
	if err := s.require(ctx, by, RoleAdmin, name, id); err != nil {
		return RolloutStatus{}, err
	}
	now := s.cfg.Now()
	_, err := s.updateRollout(ctx, id, func(ro *rolloutRec) (bool, error) {
		st := ro.doc.status()
		var err error
		switch action {
		case rollout.ActionPause:
			st, _, err = rollout.Pause(st, now, note)
		case rollout.ActionAbort:
			st, _, err = rollout.Abort(st, now, note)
		case rollout.ActionResume:
			var counts []rollout.Counts
			if counts, err = s.counts(ctx, ro); err == nil {
				st, _, err = rollout.Resume(st, counts, now, note)
			}
		}
		if err != nil {
			return false, fromRollout(err)
		}
		ro.doc.setStatus(st)
		return true, nil
	})
	s.audit(ctx, by, name, id, err, note)
	if err != nil {
		return RolloutStatus{}, err
	}
	if action == rollout.ActionResume {
		if _, err := s.decide(ctx, id); err != nil {
			return RolloutStatus{}, err
		}
	}
	return s.Rollout(ctx, id)
}

// RolloutStatus is a rollout as operators see it: its definition, where
// it stands, and its devices counted per stage.
type RolloutStatus struct {
	Spec RolloutSpec `json:"spec"`
	// State is scheduled, running, paused, halted, aborted or completed.
	State rollout.State `json:"state"`
	// Stage is the newest open stage.
	Stage       int       `json:"stage"`
	Since       time.Time `json:"since,omitzero"`
	Started     time.Time `json:"started,omitzero"`
	StageOpened time.Time `json:"stage_opened,omitzero"`
	// Detail says why it is in its state.
	Detail string `json:"detail,omitempty"`
	// Breach is the limit a halted rollout passed (kept after a resume).
	Breach *Breach `json:"breach,omitempty"`
	// Preparing is true while the rollout's devices are being tracked.
	Preparing bool `json:"preparing,omitempty"`
	// Stages counts the devices of each stage, stage 0 (the pilot) first;
	// Total adds them up.
	Stages    []StageCounts `json:"stages"`
	Total     StageCounts   `json:"total"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"created_at,omitzero"`
	UpdatedAt time.Time     `json:"updated_at,omitzero"`
}

// StageCounts are a stage's devices by where they are. Every device is
// counted once: an unfinished device whose terminal has gone silent is
// Offline (not offered yet: waiting, never failed) or Silent (holding an
// offer: it holds the stage back, and is failed as lost after the
// rollout's LostAfter), not in the phase it was in.
type StageCounts struct {
	Stage       int `json:"stage"`
	Pending     int `json:"pending"`
	Offered     int `json:"offered"`
	Downloading int `json:"downloading"`
	Installing  int `json:"installing"`
	// Installed devices run the release (succeeded).
	Installed int `json:"installed"`
	Failed    int `json:"failed"`
	Offline   int `json:"offline"`
	Silent    int `json:"silent"`
	Expired   int `json:"expired"`
	// Current devices ran the release already when the rollout reached
	// them: they install nothing, and count neither as installed nor in
	// the failure rates.
	Current int `json:"current"`
	// FailedByReason splits Failed by reason code.
	FailedByReason map[transport.Reason]int `json:"failed_by_reason,omitempty"`
	// Accepted failures were accepted by an operator resuming a halt.
	Accepted int `json:"accepted,omitempty"`
}

func (c *StageCounts) add(o StageCounts) {
	c.Pending += o.Pending
	c.Offered += o.Offered
	c.Downloading += o.Downloading
	c.Installing += o.Installing
	c.Installed += o.Installed
	c.Failed += o.Failed
	c.Offline += o.Offline
	c.Silent += o.Silent
	c.Expired += o.Expired
	c.Current += o.Current
	c.Accepted += o.Accepted
	for r, n := range o.FailedByReason {
		if c.FailedByReason == nil {
			c.FailedByReason = map[transport.Reason]int{}
		}
		c.FailedByReason[r] += n
	}
}

// Rollout returns a rollout's status and counts.
func (s *Server) Rollout(ctx context.Context, id string) (RolloutStatus, error) {
	ro, err := s.loadRollout(ctx, id)
	if err != nil {
		return RolloutStatus{}, err
	}
	return s.view(ctx, ro)
}

// Rollouts lists every rollout, by ID, with its counts.
func (s *Server) Rollouts(ctx context.Context) ([]RolloutStatus, error) {
	rs, err := s.listRollouts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RolloutStatus, 0, len(rs))
	for _, ro := range rs {
		v, err := s.view(ctx, ro)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) view(ctx context.Context, ro *rolloutRec) (RolloutStatus, error) {
	counts, err := s.counts(ctx, ro)
	if err != nil {
		return RolloutStatus{}, err
	}
	d := ro.doc
	v := RolloutStatus{Spec: ro.spec, State: cmp.Or(d.State, rollout.StateScheduled), Stage: d.Stage, Since: d.Since,
		Started: d.Started, StageOpened: d.StageOpened, Detail: d.Detail, Breach: d.Breach, Preparing: !d.Ready,
		Version: ro.rec.Version, CreatedAt: ro.rec.CreatedAt, UpdatedAt: ro.rec.UpdatedAt}
	v.Total.Stage = -1
	for i, c := range counts {
		sc := StageCounts{Stage: i, Pending: c.Pending, Offered: c.Offered, Downloading: c.Downloading,
			Installing: c.Installing, Installed: c.Succeeded, Failed: c.Failed.Total, Offline: c.Offline,
			Silent: c.Silent, Expired: c.Expired, Current: c.Current, FailedByReason: c.Failed.ByReason}
		if i < len(d.Accepted) {
			sc.Accepted = d.Accepted[i].Total
		}
		v.Stages = append(v.Stages, sc)
		v.Total.add(sc)
	}
	return v, nil
}
