package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/update/server/store"
)

// timedStore is a store that times its writes into a writeLog: how many
// of each kind, with how many records, taking how long. It shows where a
// store's time goes while a rollout runs.
type timedStore struct {
	store.Store
	log *writeLog
}

func (s *timedStore) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	defer s.log.add("heartbeats", len(beats), time.Now())
	return s.Store.Heartbeats(ctx, beats)
}

func (s *timedStore) CreateTerminal(ctx context.Context, t store.Terminal) error {
	defer s.log.add("register", 1, time.Now())
	return s.Store.CreateTerminal(ctx, t)
}

func (s *timedStore) UpdateTerminal(ctx context.Context, id string, update func(*store.Terminal) error) (store.Terminal, error) {
	defer s.log.add("terminal", 1, time.Now())
	return s.Store.UpdateTerminal(ctx, id, update)
}

func (s *timedStore) AddReport(ctx context.Context, r store.Report, update func(*store.Terminal) error) (store.Report, error) {
	defer s.log.add("report", 1, time.Now())
	return s.Store.AddReport(ctx, r, update)
}

func (s *timedStore) PutRolloutDevices(ctx context.Context, states []store.RolloutDevice) error {
	defer s.log.add("device states", len(states), time.Now())
	return s.Store.PutRolloutDevices(ctx, states)
}

func (s *timedStore) ChangeRolloutDevices(ctx context.Context, changes []store.DeviceChange) ([]bool, error) {
	defer s.log.add("device changes", len(changes), time.Now())
	return s.Store.ChangeRolloutDevices(ctx, changes)
}

func (s *timedStore) ClaimRolloutDevice(ctx context.Context, c store.Claim) error {
	defer s.log.add("offer claims", 1, time.Now())
	return s.Store.ClaimRolloutDevice(ctx, c)
}

func (s *timedStore) UpdateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	defer s.log.add("rollout", 1, time.Now())
	return s.Store.UpdateRollout(ctx, r)
}

func (s *timedStore) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	defer s.log.add("audit", 1, time.Now())
	return s.Store.AppendAudit(ctx, e)
}

// writeLog counts a store's writes by kind.
type writeLog struct {
	mu    sync.Mutex
	kinds []string // in the order first seen
	by    map[string]*writes
}

// writes are the writes of one kind: calls, records written, time taken.
type writes struct {
	calls, records int
	took, longest  time.Duration
}

func (l *writeLog) add(kind string, records int, since time.Time) {
	d := time.Since(since)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]*writes{}
	}
	w := l.by[kind]
	if w == nil {
		w = &writes{}
		l.by[kind] = w
		l.kinds = append(l.kinds, kind)
	}
	w.calls++
	w.records += records
	w.took += d
	w.longest = max(w.longest, d)
}

// take returns the writes of kind so far and forgets them.
func (l *writeLog) take(kind string) writes {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.by[kind]
	if w == nil {
		return writes{}
	}
	delete(l.by, kind)
	return *w
}

// String says, per kind, how many writes, of how many records, taking
// how long on average.
func (l *writeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, k := range l.kinds {
		w := l.by[k]
		if w == nil {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, w.calls)
		if w.records != w.calls {
			fmt.Fprintf(&b, " (%.0f each)", float64(w.records)/float64(w.calls))
		}
		fmt.Fprintf(&b, " %.2fms", ms(w.took/time.Duration(w.calls)))
	}
	return b.String()
}
