// Package memstore is a fleet store in memory, for tests and the demo. It
// keeps nothing across restarts and serves one process: a server with
// replicas needs boltstore or pgstore.
package memstore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/internal/record"
)

// Store is a [store.Store] in memory. The zero value is not ready: use
// [New]. A Store is safe for concurrent use.
type Store struct {
	mu        sync.Mutex
	terminals map[string]store.Terminal
	serials   map[string]string // serial → device ID
	tokens    map[string]string // token hash → device ID
	reports   map[string][]store.Report
	reportIDs map[string]map[string]bool
	releases  map[relKey]store.Release
	rollouts  map[string]store.Rollout
	rdevices  map[string]map[string]store.RolloutDevice // rollout → device → state
	counts    map[string]map[countKey]int64             // rollout → (phase, reason) → devices
	audit     []store.AuditEvent
	seq       int64 // the last Seq assigned to a report or release
}

type relKey struct{ id, channel string }

type countKey struct {
	phase  store.Phase
	reason string
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		terminals: map[string]store.Terminal{}, serials: map[string]string{}, tokens: map[string]string{},
		reports: map[string][]store.Report{}, reportIDs: map[string]map[string]bool{},
		releases: map[relKey]store.Release{}, rollouts: map[string]store.Rollout{},
		rdevices: map[string]map[string]store.RolloutDevice{}, counts: map[string]map[countKey]int64{},
	}
}

func notFound(kind, key string) error {
	return &store.Error{Kind: kind, Key: key, Err: store.ErrNotFound}
}

// CreateTerminal implements [store.Fleet].
func (s *Store) CreateTerminal(ctx context.Context, t store.Terminal) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := record.CheckTerminal(&t); err != nil {
		return err
	}
	t = record.Terminal(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.terminals[t.ID]; ok {
		return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "device ID taken")
	}
	if _, ok := s.serials[t.Serial]; ok {
		return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "serial %q taken", t.Serial)
	}
	if _, ok := s.tokens[string(t.TokenHash)]; ok && len(t.TokenHash) > 0 {
		return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "token hash taken")
	}
	s.put(t, "")
	return nil
}

// put stores t, whose token hash was oldToken, and indexes it.
func (s *Store) put(t store.Terminal, oldToken string) {
	if oldToken != "" && oldToken != string(t.TokenHash) {
		delete(s.tokens, oldToken)
	}
	if len(t.TokenHash) > 0 {
		s.tokens[string(t.TokenHash)] = t.ID
	}
	s.serials[t.Serial] = t.ID
	s.terminals[t.ID] = t
}

// Terminal implements [store.Fleet].
func (s *Store) Terminal(ctx context.Context, deviceID string) (store.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return store.Terminal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.terminals[deviceID]
	if !ok {
		return store.Terminal{}, notFound(store.KindTerminal, deviceID)
	}
	return record.Terminal(t), nil
}

// TerminalBySerial implements [store.Fleet].
func (s *Store) TerminalBySerial(ctx context.Context, serial string) (store.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return store.Terminal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.serials[serial]
	if !ok {
		return store.Terminal{}, store.Errorf(store.KindTerminal, "", store.ErrNotFound, "no serial %q", serial)
	}
	return record.Terminal(s.terminals[id]), nil
}

// TokenOwner implements [store.Fleet].
func (s *Store) TokenOwner(ctx context.Context, tokenHash []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.tokens[string(tokenHash)]
	if !ok || len(tokenHash) == 0 {
		return "", store.Errorf(store.KindTerminal, "", store.ErrNotFound, "unknown token")
	}
	return id, nil
}

// UpdateTerminal implements [store.Fleet].
func (s *Store) UpdateTerminal(ctx context.Context, deviceID string, update func(*store.Terminal) error) (store.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return store.Terminal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.update(deviceID, update)
}

// update applies fn to a terminal; s.mu is held.
func (s *Store) update(deviceID string, fn func(*store.Terminal) error) (store.Terminal, error) {
	old, ok := s.terminals[deviceID]
	if !ok {
		return store.Terminal{}, notFound(store.KindTerminal, deviceID)
	}
	t, err := record.ApplyTerminal(deviceID, old, fn)
	if err != nil {
		return store.Terminal{}, err
	}
	if owner, ok := s.tokens[string(t.TokenHash)]; ok && len(t.TokenHash) > 0 && owner != deviceID {
		return store.Terminal{}, store.Errorf(store.KindTerminal, deviceID, store.ErrExists, "token hash taken")
	}
	s.put(t, string(old.TokenHash))
	return record.Terminal(t), nil
}

// ListTerminals implements [store.Fleet].
func (s *Store) ListTerminals(ctx context.Context, after string, limit int) ([]store.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := slices.Sorted(maps.Keys(s.terminals))
	ids = record.Page(ids, func(id string) string { return id }, after, limit)
	out := make([]store.Terminal, len(ids))
	for i, id := range ids {
		out[i] = record.Terminal(s.terminals[id])
	}
	return out, nil
}

// Heartbeats implements [store.HeartbeatWriter].
func (s *Store) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := make([]store.HeartbeatResult, len(beats))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range beats {
		if err := record.CheckHeartbeat(&b); err != nil {
			res[i].Err = err
			continue
		}
		t, ok := s.terminals[b.DeviceID]
		if !ok {
			res[i].Err = notFound(store.KindTerminal, b.DeviceID)
			continue
		}
		t = record.Terminal(t)
		res[i].Directives = record.ApplyHeartbeat(&t, record.Heartbeat(b))
		s.terminals[b.DeviceID] = t
	}
	return res, nil
}

// AddReport implements [store.Fleet].
func (s *Store) AddReport(ctx context.Context, r store.Report, update func(*store.Terminal) error) (store.Report, error) {
	if err := ctx.Err(); err != nil {
		return store.Report{}, err
	}
	if err := record.CheckReport(&r); err != nil {
		return store.Report{}, err
	}
	r = record.Report(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.terminals[r.DeviceID]; !ok {
		return store.Report{}, notFound(store.KindTerminal, r.DeviceID)
	}
	if s.reportIDs[r.DeviceID][r.ID] {
		return store.Report{}, store.Errorf(store.KindReport, r.DeviceID+"/"+r.ID, store.ErrExists, "duplicate report")
	}
	if update != nil {
		if _, err := s.update(r.DeviceID, update); err != nil {
			return store.Report{}, err
		}
	}
	s.seq++
	r.Seq = s.seq
	if s.reportIDs[r.DeviceID] == nil {
		s.reportIDs[r.DeviceID] = map[string]bool{}
	}
	s.reportIDs[r.DeviceID][r.ID] = true
	s.reports[r.DeviceID] = append(s.reports[r.DeviceID], r)
	return r, nil
}

// ListReports implements [store.Fleet].
func (s *Store) ListReports(ctx context.Context, deviceID string, limit int) ([]store.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.reports[deviceID]
	if limit > 0 && len(rs) > limit {
		rs = rs[len(rs)-limit:]
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return slices.Clone(rs), nil
}

// PutRelease implements [store.Catalog].
func (s *Store) PutRelease(ctx context.Context, r store.Release) (store.Release, error) {
	if err := ctx.Err(); err != nil {
		return store.Release{}, err
	}
	if err := record.CheckRelease(&r); err != nil {
		return store.Release{}, err
	}
	r = record.Release(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	r.Seq = s.seq
	s.releases[relKey{r.ID, r.Channel}] = r
	return record.Release(r), nil
}

// Release implements [store.Catalog].
func (s *Store) Release(ctx context.Context, id, channel string) (store.Release, error) {
	if err := ctx.Err(); err != nil {
		return store.Release{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[relKey{id, channel}]
	if !ok {
		return store.Release{}, notFound(store.KindRelease, record.ReleaseKey(id, channel))
	}
	return record.Release(r), nil
}

// ListReleases implements [store.Catalog].
func (s *Store) ListReleases(ctx context.Context) ([]store.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Release
	for _, r := range s.releases {
		out = append(out, record.Release(r))
	}
	slices.SortFunc(out, func(a, b store.Release) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// DeleteRelease implements [store.Catalog].
func (s *Store) DeleteRelease(ctx context.Context, id, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := relKey{id, channel}
	if _, ok := s.releases[k]; !ok {
		return notFound(store.KindRelease, record.ReleaseKey(id, channel))
	}
	delete(s.releases, k)
	return nil
}

// CreateRollout implements [store.Rollouts].
func (s *Store) CreateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	if err := ctx.Err(); err != nil {
		return store.Rollout{}, err
	}
	if err := record.CheckRollout(&r); err != nil {
		return store.Rollout{}, err
	}
	r = record.Rollout(r)
	r.Version = 1
	r.StartsWindow, r.Starts = time.Time{}, 0
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rollouts[r.ID]; ok {
		return store.Rollout{}, store.Errorf(store.KindRollout, r.ID, store.ErrExists, "")
	}
	s.rollouts[r.ID] = r
	return record.Rollout(r), nil
}

// Rollout implements [store.Rollouts].
func (s *Store) Rollout(ctx context.Context, id string) (store.Rollout, error) {
	if err := ctx.Err(); err != nil {
		return store.Rollout{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rollouts[id]
	if !ok {
		return store.Rollout{}, notFound(store.KindRollout, id)
	}
	return record.Rollout(r), nil
}

// ListRollouts implements [store.Rollouts].
func (s *Store) ListRollouts(ctx context.Context) ([]store.Rollout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Rollout
	for _, id := range slices.Sorted(maps.Keys(s.rollouts)) {
		out = append(out, record.Rollout(s.rollouts[id]))
	}
	return out, nil
}

// UpdateRollout implements [store.Rollouts].
func (s *Store) UpdateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	if err := ctx.Err(); err != nil {
		return store.Rollout{}, err
	}
	if err := record.CheckRollout(&r); err != nil {
		return store.Rollout{}, err
	}
	r = record.Rollout(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rollouts[r.ID]
	if !ok {
		return store.Rollout{}, notFound(store.KindRollout, r.ID)
	}
	if old.Version != r.Version {
		return store.Rollout{}, &store.Error{Kind: store.KindRollout, Key: r.ID, Err: store.ErrConflict, Version: old.Version}
	}
	r.Version++
	r.CreatedAt = old.CreatedAt
	r.StartsWindow, r.Starts = old.StartsWindow, old.Starts
	s.rollouts[r.ID] = r
	return record.Rollout(r), nil
}

// PutRolloutDevices implements [store.Rollouts].
func (s *Store) PutRolloutDevices(ctx context.Context, states []store.RolloutDevice) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range states {
		if err := record.CheckRolloutDevice(&states[i]); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range states {
		if _, ok := s.rollouts[d.RolloutID]; !ok {
			return notFound(store.KindRollout, d.RolloutID)
		}
	}
	for _, d := range states {
		s.putDevice(d)
	}
	return nil
}

// putDevice writes a device's state and keeps the counters in step.
func (s *Store) putDevice(d store.RolloutDevice) {
	d = record.RolloutDevice(d)
	devs := s.rdevices[d.RolloutID]
	counts := s.counts[d.RolloutID]
	if devs == nil {
		devs, counts = map[string]store.RolloutDevice{}, map[countKey]int64{}
		s.rdevices[d.RolloutID], s.counts[d.RolloutID] = devs, counts
	}
	if old, ok := devs[d.DeviceID]; ok {
		k := countKey{old.Phase, old.Reason}
		if counts[k]--; counts[k] == 0 {
			delete(counts, k)
		}
	}
	devs[d.DeviceID] = d
	counts[countKey{d.Phase, d.Reason}]++
}

// ChangeRolloutDevices implements [store.Rollouts].
func (s *Store) ChangeRolloutDevices(ctx context.Context, changes []store.DeviceChange) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range changes {
		if err := record.CheckDeviceChange(&changes[i]); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		if _, ok := s.rollouts[c.State.RolloutID]; !ok {
			return nil, notFound(store.KindRollout, c.State.RolloutID)
		}
	}
	applied := make([]bool, len(changes))
	for i, c := range changes {
		old, ok := s.rdevices[c.State.RolloutID][c.State.DeviceID]
		if record.Holds(c, old, ok) {
			s.putDevice(c.State)
			applied[i] = true
		}
	}
	return applied, nil
}

// ClaimRolloutDevice implements [store.Rollouts].
func (s *Store) ClaimRolloutDevice(ctx context.Context, c store.Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := record.CheckClaim(&c); err != nil {
		return err
	}
	id := c.State.RolloutID
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rollouts[id]
	if !ok {
		return notFound(store.KindRollout, id)
	}
	if old, ok := s.rdevices[id][c.State.DeviceID]; !record.Holds(c.DeviceChange, old, ok) {
		return record.Conflict(c.DeviceChange)
	}
	if c.MaxInFlight > 0 {
		var n int64
		for k, v := range s.counts[id] {
			if slices.Contains(c.InFlight, k.phase) {
				n += v
			}
		}
		if n >= int64(c.MaxInFlight) {
			return record.InFlightLimit(id, n, int64(c.MaxInFlight))
		}
	}
	if c.MaxStarts > 0 {
		w, n := record.Starts(r.StartsWindow, r.Starts, c.Window)
		if n >= c.MaxStarts {
			return record.StartsLimit(id, w, n, c.MaxStarts)
		}
		r.StartsWindow, r.Starts = w, n+1
		s.rollouts[id] = r
	}
	s.putDevice(c.State)
	return nil
}

// RolloutDevice implements [store.Rollouts].
func (s *Store) RolloutDevice(ctx context.Context, rolloutID, deviceID string) (store.RolloutDevice, error) {
	if err := ctx.Err(); err != nil {
		return store.RolloutDevice{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.rdevices[rolloutID][deviceID]
	if !ok {
		return store.RolloutDevice{}, notFound(store.KindRolloutDevice, record.RolloutDeviceKey(rolloutID, deviceID))
	}
	return d, nil
}

// ListRolloutDevices implements [store.Rollouts].
func (s *Store) ListRolloutDevices(ctx context.Context, rolloutID string, phase store.Phase, after string, limit int) ([]store.RolloutDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.RolloutDevice
	for _, d := range s.rdevices[rolloutID] {
		if (phase == "" || d.Phase == phase) && d.DeviceID > after {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b store.RolloutDevice) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// CountRolloutDevices implements [store.Rollouts].
func (s *Store) CountRolloutDevices(ctx context.Context, rolloutID string) ([]store.PhaseCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.PhaseCount
	for k, n := range s.counts[rolloutID] {
		out = append(out, store.PhaseCount{Phase: k.phase, Reason: k.reason, Count: n})
	}
	slices.SortFunc(out, func(a, b store.PhaseCount) int {
		return cmp.Or(strings.Compare(string(a.Phase), string(b.Phase)), strings.Compare(a.Reason, b.Reason))
	})
	return out, nil
}

// AppendAudit implements [store.AuditLog].
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditEvent{}, err
	}
	if err := record.CheckAuditEvent(&e); err != nil {
		return store.AuditEvent{}, err
	}
	e = record.AuditEvent(e)
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Seq = int64(len(s.audit)) + 1
	s.audit = append(s.audit, e)
	return e, nil
}

// ListAudit implements [store.AuditLog].
func (s *Store) ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	after = max(after, 0)
	if after >= int64(len(s.audit)) {
		return nil, nil
	}
	evs := s.audit[after:]
	if limit > 0 && len(evs) > limit {
		evs = evs[:limit]
	}
	return slices.Clone(evs), nil
}
