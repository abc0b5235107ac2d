package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// Settlement defaults.
const (
	// DefaultSettleEvery is SettlementConfig.SettleEvery's default.
	DefaultSettleEvery = 15 * time.Minute
	// DefaultRecheck is how soon the condition gates (settlement, idle
	// heartbeats, network) ask to be asked again.
	DefaultRecheck = time.Minute
)

// SettlementConfig configures [NewSettlement]. Settled is required.
type SettlementConfig struct {
	// Settled reports whether the current batch is settled: the batch
	// upload (批上送) is complete and no offline sale waits to reach the
	// acquirer. It is called with a context bounded to a few seconds.
	Settled func(ctx context.Context) (bool, error)
	// Settle, if set, asks the payment app to settle now, so that the
	// update need not wait for the next scheduled settlement. It must ask
	// and return, not wait for the settlement to finish. It is called at
	// most once per SettleEvery; an error is reported in the gate's reason
	// and the request is made again after SettleEvery.
	Settle func(ctx context.Context) error
	// SettleEvery is the shortest time between two calls of Settle; 0
	// means [DefaultSettleEvery].
	SettleEvery time.Duration
	// Recheck is how soon the gate asks to be asked again while the batch
	// is unsettled; 0 means [DefaultRecheck].
	Recheck time.Duration
	// Stages are the stages the gate holds back; nil means
	// update.StageInstall only.
	Stages []update.Stage
}

// NewSettlement returns the gate that holds an install back until the
// batch is settled (结算 / 批上送 done): an update must never run with
// offline sales not yet uploaded. "settlement pending: batch upload not
// complete; asked the payment app to settle".
func NewSettlement(cfg SettlementConfig) (update.Gate, error) {
	if cfg.Settled == nil {
		return nil, invalid("settlement: Settled is required")
	}
	if err := checkDurations("settlement", map[string]time.Duration{
		"SettleEvery": cfg.SettleEvery, "Recheck": cfg.Recheck,
	}); err != nil {
		return nil, err
	}
	st, err := stagesOr(cfg.Stages, update.StageInstall)
	if err != nil {
		return nil, err
	}
	every := or(cfg.SettleEvery, DefaultSettleEvery)
	recheck := or(cfg.Recheck, DefaultRecheck)
	var (
		mu      sync.Mutex
		asked   time.Time // when Settle was last called
		askErr  error     // what it returned
		askedOK bool      // Settle was called at least once
	)
	return func(ctx context.Context, req update.GateRequest) error {
		if !st.has(req.Stage) {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		settled, err := cfg.Settled(cctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("gate: settlement: reading the batch state: %w", err)
		}
		if settled {
			return nil
		}
		if cfg.Settle == nil {
			return notNow(req, recheck, "settlement pending: batch upload not complete")
		}
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if !askedOK || now.Sub(asked) >= every {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			askErr = cfg.Settle(cctx)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			asked, askedOK = now, true
		}
		if askErr != nil {
			return notNow(req, recheck, "settlement pending: batch upload not complete; asking the payment app to settle failed: %v", askErr)
		}
		return notNow(req, recheck, "settlement pending: batch upload not complete; asked the payment app to settle")
	}, nil
}
