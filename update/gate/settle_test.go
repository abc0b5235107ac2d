package gate

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// app is a fake payment app: its batch is settled or not, and it counts
// the requests to settle.
type app struct {
	settled   bool
	readErr   error
	settleErr error
	asked     int
	slow      bool // Settled blocks until its context ends
}

func (a *app) Settled(ctx context.Context) (bool, error) {
	if a.slow {
		<-ctx.Done()
		return false, ctx.Err()
	}
	return a.settled, a.readErr
}

func (a *app) Settle(context.Context) error { a.asked++; return a.settleErr }

func TestSettlementGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := manifest("payment-app@2.1.0", 1)
		a := &app{}
		g, err := NewSettlement(SettlementConfig{Settled: a.Settled, Settle: a.Settle})
		if err != nil {
			t.Fatal(err)
		}
		wantGo(t, ask(t, g, download(m)))
		const asked = "settlement pending: batch upload not complete; asked the payment app to settle"
		wantWait(t, ask(t, g, install(m)), time.Minute, asked)
		time.Sleep(time.Minute)
		wantWait(t, ask(t, g, install(m)), time.Minute, asked)
		if a.asked != 1 {
			t.Errorf("Settle called %d times within SettleEvery, want 1", a.asked)
		}
		time.Sleep(DefaultSettleEvery)
		a.settleErr = errors.New("printer out of paper")
		wantWait(t, ask(t, g, install(m)), time.Minute,
			"settlement pending: batch upload not complete; asking the payment app to settle failed: printer out of paper")
		if a.asked != 2 {
			t.Errorf("Settle called %d times after SettleEvery, want 2", a.asked)
		}
		a.settled = true
		wantGo(t, ask(t, g, install(m)))

		a.readErr = errors.New("journal locked")
		if got := ask(t, g, install(m)); got.Err == nil || !errors.Is(got.Err, a.readErr) {
			t.Errorf("gate with a failing Settled said %+v, want its error", got)
		}
	})
}

func TestSettlementGateWithoutSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &app{}
		g, err := NewSettlement(SettlementConfig{Settled: a.Settled, Recheck: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		wantWait(t, ask(t, g, install(nil)), 5*time.Minute, "settlement pending: batch upload not complete")
	})
}

func TestSettlementGateNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &app{slow: true}
		g, _ := NewSettlement(SettlementConfig{Settled: a.Settled})
		start := time.Now()
		got := ask(t, g, install(nil))
		if got.Err == nil || time.Since(start) != callTimeout {
			t.Errorf("a Settled that hangs: %+v after %s, want an error after %s", got, time.Since(start), callTimeout)
		}
	})
}

func TestSettlementConfig(t *testing.T) {
	a := &app{}
	for _, cfg := range []SettlementConfig{
		{},
		{Settled: a.Settled, SettleEvery: -1},
		{Settled: a.Settled, Recheck: -1},
	} {
		if _, err := NewSettlement(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewSettlement(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
