package gate

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update"
)

func TestPowerGate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    PowerConfig
		power  Power
		err    error
		req    update.GateRequest
		after  time.Duration // 0: go
		reason string
		broken bool
	}{
		{name: "full", power: Power{Percent: 100}, req: install(nil)},
		{name: "at the threshold", power: Power{Percent: 30}, req: install(nil)},
		{name: "low", power: Power{Percent: 22}, req: install(nil), after: 5 * time.Minute, reason: "battery at 22%, below 30%, and not on mains power"},
		{name: "low on download", power: Power{Percent: 29}, req: download(nil), after: 5 * time.Minute, reason: "battery at 29%, below 30%, and not on mains power"},
		{name: "low on mains", power: Power{Percent: 3, OnMains: true}, req: install(nil)},
		{name: "unknown", power: Power{Percent: -1}, req: install(nil), after: 5 * time.Minute, reason: "battery level unknown (-1%) and not on mains power"},
		{name: "unknown on mains", power: Power{Percent: -1, OnMains: true}, req: install(nil)},
		{name: "own threshold", cfg: PowerConfig{MinPercent: 50, Recheck: time.Minute}, power: Power{Percent: 49}, req: install(nil),
			after: time.Minute, reason: "battery at 49%, below 50%, and not on mains power"},
		{name: "install only", cfg: PowerConfig{Stages: []update.Stage{update.StageInstall}}, power: Power{Percent: 1}, req: download(nil)},
		{name: "read fails", err: errors.New("no battery driver"), req: install(nil), broken: true},
		{name: "other stages", power: Power{Percent: 1}, req: update.GateRequest{Stage: update.StageProbation}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tc.cfg
				cfg.Read = func(ctx context.Context) (Power, error) {
					if _, ok := ctx.Deadline(); !ok {
						t.Error("Read called without a deadline")
					}
					return tc.power, tc.err
				}
				g, err := NewPower(cfg)
				if err != nil {
					t.Fatal(err)
				}
				a := ask(t, g, tc.req)
				switch {
				case tc.broken:
					if a.Err == nil || !errors.Is(a.Err, tc.err) {
						t.Fatalf("gate said %+v, want the read's error", a)
					}
				case tc.after == 0:
					wantGo(t, a)
				default:
					wantWait(t, a, tc.after, tc.reason)
				}
			})
		})
	}
}

func TestPowerConfig(t *testing.T) {
	read := func(context.Context) (Power, error) { return Power{}, nil }
	for _, cfg := range []PowerConfig{
		{}, {Read: read, MinPercent: -1}, {Read: read, MinPercent: 101}, {Read: read, Recheck: -1},
	} {
		if _, err := NewPower(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewPower(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
