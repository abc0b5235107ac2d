package heartbeat

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Registry defaults.
const (
	DefaultMisses = 2
	DefaultGrace  = time.Minute
)

// RegistryConfig configures a [Registry].
type RegistryConfig struct {
	// Misses is how many directed intervals a device may stay silent
	// before it is offline. One late or lost beat (a terminal on a
	// flaky 4G link) should not page anyone. Zero means [DefaultMisses].
	Misses int

	// Grace is added to Misses intervals, to absorb the terminals' jitter
	// and network delays. Zero means [DefaultGrace]; negative means none.
	Grace time.Duration

	// DefaultInterval is the interval assumed for a device seen without
	// one (and never with one before). Zero means the terminal's own
	// default, [DefaultInterval].
	DefaultInterval time.Duration
}

// Liveness is what the [Registry] knows of one device at a given time.
type Liveness struct {
	DeviceID string
	// LastSeen is the time of the device's latest beat.
	LastSeen time.Time
	// Interval is the interval the device was directed to keep.
	Interval time.Duration
	// Online is false once the device has been silent for longer than
	// Interval×Misses + Grace.
	Online bool
	// Overdue is how long past its next expected beat (LastSeen+Interval)
	// the device is; zero while that beat is not yet due.
	Overdue time.Duration
}

// Registry is a server's record of which devices are alive: when each last
// beat and the interval it was told to keep. A device is offline once it
// is overdue by more than its allowance: no beat within
// Interval×[RegistryConfig.Misses] + [RegistryConfig.Grace] of the last.
//
// Times are passed in, never read from a clock. The zero value is ready to
// use with the defaults of [RegistryConfig]. A Registry is safe for
// concurrent use. It lives in memory: a server with replicas records beats
// in its fleet store and can use a Registry per replica as a cache, or
// [Registry.Judge] directly on what the store holds.
type Registry struct {
	cfg     RegistryConfig
	mu      sync.RWMutex
	devices map[string]seen
}

type seen struct {
	at       time.Time
	interval time.Duration
}

// NewRegistry returns an empty Registry, or an error matching
// [ErrInvalidConfig] if cfg has a negative Misses or DefaultInterval.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Misses < 0 {
		return nil, fmt.Errorf("%w: Misses %d is negative", ErrInvalidConfig, cfg.Misses)
	}
	if cfg.DefaultInterval < 0 {
		return nil, fmt.Errorf("%w: DefaultInterval %s is negative", ErrInvalidConfig, cfg.DefaultInterval)
	}
	return &Registry{cfg: cfg}, nil
}

// Seen records a beat from deviceID at time at, after which the device was
// directed to beat every interval. An interval <= 0 keeps the device's
// previous interval (or the default). A beat older than the one recorded
// (beats can arrive out of order across server replicas) changes nothing.
func (r *Registry) Seen(deviceID string, at time.Time, interval time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.devices[deviceID]
	if ok && at.Before(prev.at) {
		return
	}
	if interval <= 0 {
		interval = prev.interval
	}
	if r.devices == nil {
		r.devices = make(map[string]seen)
	}
	r.devices[deviceID] = seen{at: at, interval: interval}
}

// Forget removes a device, for one that was decommissioned.
func (r *Registry) Forget(deviceID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.devices, deviceID)
}

// Len returns the number of devices recorded.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.devices)
}

// Get returns the liveness of deviceID at time now, and false if the
// device has never been seen.
func (r *Registry) Get(deviceID string, now time.Time) (Liveness, bool) {
	r.mu.RLock()
	s, ok := r.devices[deviceID]
	r.mu.RUnlock()
	if !ok {
		return Liveness{}, false
	}
	return r.Judge(deviceID, s.at, s.interval, now), true
}

// List returns the liveness of every device at time now, sorted by device
// ID.
func (r *Registry) List(now time.Time) []Liveness {
	r.mu.RLock()
	out := make([]Liveness, 0, len(r.devices))
	for id, s := range r.devices {
		out = append(out, r.Judge(id, s.at, s.interval, now))
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Liveness) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	return out
}

// Judge applies the registry's policy to a device last seen at lastSeen
// with the given directed interval (<= 0 means the default), at time now.
// It reads nothing from the registry, so a server can apply the same
// policy to beats kept in its own store.
func (r *Registry) Judge(deviceID string, lastSeen time.Time, interval time.Duration, now time.Time) Liveness {
	if interval <= 0 {
		interval = r.cfg.DefaultInterval
		if interval <= 0 {
			interval = DefaultInterval
		}
	}
	misses := r.cfg.Misses
	if misses <= 0 {
		misses = DefaultMisses
	}
	grace := r.cfg.Grace
	switch {
	case grace == 0:
		grace = DefaultGrace
	case grace < 0:
		grace = 0
	}
	allowance := time.Duration(math.MaxInt64)
	if interval <= (math.MaxInt64-grace)/time.Duration(misses) {
		allowance = interval*time.Duration(misses) + grace
	}
	silent := now.Sub(lastSeen)
	return Liveness{
		DeviceID: deviceID,
		LastSeen: lastSeen,
		Interval: interval,
		Online:   silent <= allowance,
		Overdue:  max(silent-interval, 0),
	}
}
