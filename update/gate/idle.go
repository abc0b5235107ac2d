package gate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// Idle defaults: the domain's rule for automatic updates is half an hour
// idle after power-on and two heartbeats.
const (
	DefaultIdle  = 30 * time.Minute
	DefaultBeats = 2
)

// IdleConfig configures [NewIdle]. Beats is required.
type IdleConfig struct {
	// Beats counts the successful heartbeats since boot;
	// *heartbeat.Counter is one.
	Beats update.Counter
	// MinBeats is how many successful heartbeats must have been sent
	// since boot; 0 means [DefaultBeats].
	MinBeats int
	// Idle is how long the terminal must have been idle, since boot and
	// since its last activity; 0 means [DefaultIdle].
	Idle time.Duration
	// Boot is when the terminal started; the zero time means when NewIdle
	// is called (the agent starts at power-on).
	Boot time.Time
	// Leases, if set, counts as activity: the terminal is busy while a
	// lease is live, and idle only Idle after the last one ended. Nil
	// means only the time since boot counts.
	Leases *Leases
	// Recheck is how soon the gate asks to be asked again while it waits
	// for heartbeats; 0 means [DefaultRecheck].
	Recheck time.Duration
	// Stages are the stages the gate holds back; nil means both download
	// and install.
	Stages []update.Stage
}

// NewIdle returns the gate for automatic updates after power-on: the
// terminal must have been idle for Idle (since boot and since the last
// sale) and have sent MinBeats heartbeats. "waiting for 2 heartbeats since
// boot (1 so far); idle 30m needed after boot, 12m to go".
//
// A manual update (the maintenance menu) does not go through the agent's
// gate, so it is not held back.
func NewIdle(cfg IdleConfig) (update.Gate, error) {
	if cfg.Beats == nil {
		return nil, invalid("idle: Beats is required (a *heartbeat.Counter)")
	}
	if cfg.MinBeats < 0 {
		return nil, invalid("idle: MinBeats is negative (%d)", cfg.MinBeats)
	}
	if err := checkDurations("idle", map[string]time.Duration{"Idle": cfg.Idle, "Recheck": cfg.Recheck}); err != nil {
		return nil, err
	}
	st, err := stagesOr(cfg.Stages, update.StageDownload, update.StageInstall)
	if err != nil {
		return nil, err
	}
	boot := cfg.Boot
	if boot.IsZero() {
		boot = time.Now()
	}
	idle := or(cfg.Idle, DefaultIdle)
	minBeats := or(cfg.MinBeats, DefaultBeats)
	recheck := or(cfg.Recheck, DefaultRecheck)
	return func(ctx context.Context, req update.GateRequest) error {
		if !st.has(req.Stage) {
			return nil
		}
		now := time.Now()
		var reasons []string
		var after time.Duration
		if n := cfg.Beats.Count(); n < minBeats {
			reasons = append(reasons, fmt.Sprintf("waiting for %s since boot (%d so far)", plural(minBeats, "heartbeat"), n))
			after = recheck
		}
		since, what := boot, "boot"
		var held []LeaseInfo
		if cfg.Leases != nil {
			if last := cfg.Leases.LastActive(); last.After(since) {
				since, what = last, "the last sale"
			}
			held = cfg.Leases.Held()
		}
		switch {
		case len(held) > 0:
			reasons = append(reasons, "not idle: "+describeLeases(held))
			// Whenever the lease ends, the terminal must then be idle for
			// the whole of Idle.
			after = max(after, idle)
		case now.Sub(since) < idle:
			left := idle - now.Sub(since)
			reasons = append(reasons, fmt.Sprintf("idle %s needed after %s, %s to go", formatDuration(idle), what, formatDuration(left)))
			after = max(after, left)
		}
		if reasons == nil {
			return nil
		}
		return notNow(req, after, "%s", strings.Join(reasons, "; "))
	}, nil
}
