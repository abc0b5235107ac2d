package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// Power defaults.
const (
	// DefaultMinPercent is PowerConfig.MinPercent's default.
	DefaultMinPercent = 30
	// DefaultPowerRecheck is PowerConfig.Recheck's default.
	DefaultPowerRecheck = 5 * time.Minute
)

// Power is the terminal's power state.
type Power struct {
	// Percent is the battery's charge, 0 to 100; a value outside that
	// range means the level is unknown.
	Percent int
	// OnMains is true when the terminal runs on external power (mains, a
	// charging cradle).
	OnMains bool
}

// PowerConfig configures [NewPower]. Read is required.
type PowerConfig struct {
	// Read returns the power state. It is called with a context bounded
	// to a few seconds.
	Read func(ctx context.Context) (Power, error)
	// MinPercent is the battery charge at or above which the terminal may
	// act on battery; 0 means [DefaultMinPercent]. On mains it always may.
	MinPercent int
	// Recheck is how soon the gate asks to be asked again while the
	// battery is low; 0 means [DefaultPowerRecheck].
	Recheck time.Duration
	// Stages are the stages the gate holds back; nil means both download
	// and install (a download on a low battery can leave too little for
	// the install that follows).
	Stages []update.Stage
}

// NewPower returns the power gate: on mains, or a battery at or above
// MinPercent. "battery at 22%, below 30%, and not on mains power".
func NewPower(cfg PowerConfig) (update.Gate, error) {
	if cfg.Read == nil {
		return nil, invalid("power: Read is required")
	}
	if cfg.MinPercent < 0 || cfg.MinPercent > 100 {
		return nil, invalid("power: MinPercent %d outside 0..100", cfg.MinPercent)
	}
	if err := checkDurations("power", map[string]time.Duration{"Recheck": cfg.Recheck}); err != nil {
		return nil, err
	}
	st, err := stagesOr(cfg.Stages, update.StageDownload, update.StageInstall)
	if err != nil {
		return nil, err
	}
	minPercent := or(cfg.MinPercent, DefaultMinPercent)
	recheck := or(cfg.Recheck, DefaultPowerRecheck)
	return func(ctx context.Context, req update.GateRequest) error {
		if !st.has(req.Stage) {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		p, err := cfg.Read(cctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("gate: power: reading the power state: %w", err)
		case p.OnMains:
			return nil
		case p.Percent < 0 || p.Percent > 100:
			return notNow(req, recheck, "battery level unknown (%d%%) and not on mains power", p.Percent)
		case p.Percent < minPercent:
			return notNow(req, recheck, "battery at %d%%, below %d%%, and not on mains power", p.Percent, minPercent)
		}
		return nil
	}, nil
}
