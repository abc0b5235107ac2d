package gate

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update"
)

type beats struct{ n atomic.Int64 }

func (b *beats) Count() int { return int(b.n.Load()) }

func TestIdleGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &beats{}
		var ls Leases
		g, err := NewIdle(IdleConfig{Beats: b, Leases: &ls})
		if err != nil {
			t.Fatal(err)
		}
		m := manifest("fw@1.0.0", 1)
		wantWait(t, ask(t, g, download(m)), 30*time.Minute,
			"waiting for 2 heartbeats since boot (0 so far); idle 30m needed after boot, 30m to go")
		time.Sleep(10 * time.Minute)
		b.n.Store(2)
		wantWait(t, ask(t, g, install(m)), 20*time.Minute, "idle 30m needed after boot, 20m to go")
		time.Sleep(5 * time.Minute)
		sale, _ := ls.Begin("pos-app", 0)
		wantWait(t, ask(t, g, install(m)), 30*time.Minute, "not idle: lease held by pos-app for 2m more")
		time.Sleep(time.Minute)
		sale.End()
		wantWait(t, ask(t, g, install(m)), 30*time.Minute, "idle 30m needed after the last sale, 30m to go")
		time.Sleep(30 * time.Minute)
		wantGo(t, ask(t, g, install(m)))
		wantGo(t, ask(t, g, download(m)))
	})
}

func TestIdleGateBeatsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &beats{}
		boot := time.Now().Add(-time.Hour)
		g, err := NewIdle(IdleConfig{Beats: b, Boot: boot, MinBeats: 1, Idle: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		wantWait(t, ask(t, g, install(nil)), DefaultRecheck, "waiting for 1 heartbeat since boot (0 so far)")
		b.n.Store(1)
		wantGo(t, ask(t, g, install(nil)))
	})
}

func TestIdleConfig(t *testing.T) {
	for _, cfg := range []IdleConfig{
		{},
		{Beats: &beats{}, MinBeats: -1},
		{Beats: &beats{}, Idle: -1},
		{Beats: &beats{}, Recheck: -1},
		{Beats: &beats{}, Stages: []update.Stage{"boot"}},
	} {
		if _, err := NewIdle(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewIdle(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
