package terminal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/gate"
)

// Policy is when a terminal may update: the POS gates of update/gate,
// wired as a vendor would. The zero Policy lets a terminal update as soon
// as it has sent MinBeats heartbeats.
type Policy struct {
	// MinBeats is how many heartbeats since boot an automatic update waits
	// for (the domain's "two heartbeats"); Idle how long the terminal must
	// have been idle since boot and since its last sale (the domain's
	// thirty minutes). 0 means none.
	MinBeats int
	Idle     time.Duration
	// Windows are the maintenance windows and freezes, in the terminal's
	// time zone; the zero value means at any time.
	Windows gate.WindowsConfig
	// Power reads the battery; nil means on mains. MinBattery is the
	// charge needed on battery; 0 means gate.DefaultMinPercent.
	Power      func(ctx context.Context) (gate.Power, error)
	MinBattery int
	// Network reads the link; nil means Ethernet. LinkRules and Budget
	// restrict large payloads and metered bytes (see gate.NetworkConfig).
	Network   func(ctx context.Context) (gate.Link, error)
	LinkRules []gate.LinkRule
	Budget    *gate.Budget
	// Settled reports whether the batch upload (批上送) is complete; nil
	// means always.
	Settled func(ctx context.Context) (bool, error)
	// Prompt, if set, asks the merchant before an install (Then: only once
	// every other gate says go).
	Prompt *gate.PromptConfig
}

// Gates builds the automatic update's gate and the manual update's: a
// technician at the terminal skips the idle time, windows and prompt, but
// not a sale in progress or a low battery.
func (p Policy) Gates(beats *heartbeat.Counter, leases *gate.Leases) (auto, manual update.Gate, err error) {
	if p.Idle > 0 && p.MinBeats <= 0 {
		return nil, nil, errors.New("terminal: policy: Policy.Idle needs MinBeats of at least 1")
	}
	var gates []update.Gate // in the order they are asked
	build := func(g update.Gate, gerr error) update.Gate {
		if gerr != nil && err == nil {
			err = fmt.Errorf("terminal: policy: %w", gerr)
		}
		return g
	}
	sale := build(gate.NewSale(gate.SaleConfig{Leases: leases}))
	power := build(gate.NewPower(gate.PowerConfig{Read: p.power, MinPercent: p.MinBattery}))
	gates = append(gates, sale, power)
	if p.MinBeats > 0 {
		// 0 in IdleConfig means the defaults; here it means none.
		gates = append(gates, build(gate.NewIdle(gate.IdleConfig{Beats: beats, MinBeats: p.MinBeats,
			Idle: max(p.Idle, time.Nanosecond), Leases: leases, Recheck: 250 * time.Millisecond})))
	}
	gates = append(gates, build(gate.NewWindows(p.Windows)))
	if p.Network != nil || p.LinkRules != nil || p.Budget != nil {
		gates = append(gates, build(gate.NewNetwork(gate.NetworkConfig{Read: p.network, Rules: p.LinkRules, Budget: p.Budget})))
	}
	auto, manual = gate.All(gates...), gate.All(sale, power)
	if p.Settled != nil {
		// After the others: it may ask the app to settle, which only makes
		// sense when the update could otherwise start.
		settle := build(gate.NewSettlement(gate.SettlementConfig{Settled: p.Settled}))
		auto, manual = gate.Then(auto, settle), gate.All(manual, settle)
	}
	if p.Prompt != nil {
		auto = gate.Then(auto, build(gate.NewPrompt(*p.Prompt)))
	}
	if err != nil {
		return nil, nil, err
	}
	return auto, manual, nil
}

func (p Policy) power(ctx context.Context) (gate.Power, error) {
	if p.Power == nil {
		return gate.Power{Percent: 100, OnMains: true}, nil
	}
	return p.Power(ctx)
}

func (p Policy) network(ctx context.Context) (gate.Link, error) {
	if p.Network == nil {
		return gate.LinkEthernet, nil
	}
	return p.Network(ctx)
}

// metered returns a progress function that feeds the bytes downloaded on a
// metered link into Budget, then calls next: without it the budget would
// only compare a payload's size with the limit.
func (p Policy) metered(next func(update.Progress)) func(update.Progress) {
	if p.Budget == nil {
		return next
	}
	var mu sync.Mutex
	fetched := map[string]int64{} // per release, by the current Fetch
	return func(pr update.Progress) {
		mu.Lock()
		n := pr.Fetched - fetched[pr.Release]
		if n < 0 {
			n = pr.Fetched // a new Fetch counts from zero
		}
		fetched[pr.Release] = pr.Fetched
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		link, err := p.network(ctx)
		cancel()
		if err == nil && link == gate.LinkCellular && n > 0 {
			p.Budget.AddRelease(pr.Release, n)
		}
		if next != nil {
			next(pr)
		}
	}
}
