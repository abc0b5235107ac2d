package gate

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update"
)

func TestLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ls Leases
		if !ls.LastActive().IsZero() || len(ls.Held()) != 0 {
			t.Fatal("a new Leases is not empty")
		}
		start := time.Now()
		sale, err := ls.Begin("pos-app", 0)
		if err != nil {
			t.Fatal(err)
		}
		if h := ls.Held(); len(h) != 1 || h[0] != (LeaseInfo{Holder: "pos-app", Left: DefaultLeaseTTL}) {
			t.Fatalf("Held() = %+v, want pos-app for the default TTL", h)
		}
		time.Sleep(90 * time.Second)
		if err := sale.Renew(time.Minute); err != nil {
			t.Fatal(err)
		}
		pin, _ := ls.Begin("pinpad", 30*time.Second)
		if h := ls.Held(); len(h) != 2 || h[0].Holder != "pos-app" || h[0].Left != time.Minute || h[1].Left != 30*time.Second {
			t.Fatalf("Held() = %+v, want pos-app (1m) then pinpad (30s)", h)
		}
		time.Sleep(45 * time.Second)
		// The pin pad's holder died: its lease expired 15s ago, by itself.
		if h := ls.Held(); len(h) != 1 || h[0].Holder != "pos-app" {
			t.Fatalf("Held() = %+v, want only pos-app", h)
		}
		if got, want := ls.LastActive(), start.Add(120*time.Second); !got.Equal(want) {
			t.Errorf("LastActive = %s after an expiry, want the expiry %s", got, want)
		}
		if err := pin.Renew(0); !errors.Is(err, ErrLeaseEnded) {
			t.Errorf("renewing an expired lease: %v, want ErrLeaseEnded", err)
		}
		pin.End() // nothing to end; LastActive stays
		if got, want := ls.LastActive(), start.Add(120*time.Second); !got.Equal(want) {
			t.Errorf("LastActive = %s after ending an expired lease, want %s", got, want)
		}
		sale.End()
		if len(ls.Held()) != 0 || !ls.LastActive().Equal(time.Now()) {
			t.Errorf("after End: Held = %v, LastActive = %s; want none, now", ls.Held(), ls.LastActive())
		}
		if err := sale.Renew(0); !errors.Is(err, ErrLeaseEnded) {
			t.Errorf("renewing an ended lease: %v, want ErrLeaseEnded", err)
		}
		sale.End()
	})
}

func TestLeaseArguments(t *testing.T) {
	var ls Leases
	for _, tc := range []struct {
		holder string
		ttl    time.Duration
	}{
		{"", 0}, {string(make([]byte, 65)), 0}, {"pos-app", -time.Second}, {"pos-app", MaxLeaseTTL + 1},
	} {
		if _, err := ls.Begin(tc.holder, tc.ttl); err == nil {
			t.Errorf("Begin(%q, %s) succeeded", tc.holder, tc.ttl)
		}
	}
	l, err := ls.Begin("pos-app", MaxLeaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(MaxLeaseTTL + 1); err == nil {
		t.Error("Renew beyond MaxLeaseTTL succeeded")
	}
	if l.Holder() != "pos-app" {
		t.Errorf("Holder() = %q", l.Holder())
	}
}

func TestLeasesConcurrent(t *testing.T) {
	var ls Leases
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				l, err := ls.Begin("pos-app", time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				ls.Held()
				l.Renew(0)
				ls.LastActive()
				l.End()
			}
		})
	}
	wg.Wait()
	if len(ls.Held()) != 0 {
		t.Errorf("leases left: %v", ls.Held())
	}
}

func TestSaleGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ls Leases
		g, err := NewSale(SaleConfig{Leases: &ls})
		if err != nil {
			t.Fatal(err)
		}
		m := manifest("payment-app@2.1.0", 1)
		wantGo(t, ask(t, g, install(m)))
		sale, _ := ls.Begin("pos-app", 40*time.Second)
		wantWait(t, ask(t, g, install(m)), 40*time.Second, "in a sale: lease held by pos-app for 40s more")
		wantGo(t, ask(t, g, download(m)))
		settle, _ := ls.Begin("settlement", 10*time.Minute)
		wantWait(t, ask(t, g, install(m)), DefaultSaleWait,
			"in a sale: leases held by settlement (10m more), pos-app (40s more)")
		settle.End()
		time.Sleep(39*time.Second + 500*time.Millisecond)
		wantWait(t, ask(t, g, install(m)), 500*time.Millisecond, "in a sale: lease held by pos-app for 1s more")
		sale.End()
		wantGo(t, ask(t, g, install(m)))

		// A holder that dies holds installs back until its lease expires.
		_, _ = ls.Begin("pos-app", 0)
		var waited time.Duration
		for {
			a := ask(t, g, install(m))
			if a.Go {
				break
			}
			time.Sleep(a.After)
			waited += a.After
		}
		if waited != DefaultLeaseTTL {
			t.Errorf("a dead holder held the install %s, want its TTL %s", waited, DefaultLeaseTTL)
		}
	})
}

func TestSaleConfig(t *testing.T) {
	for _, cfg := range []SaleConfig{
		{},
		{Leases: &Leases{}, MaxWait: -1},
		{Leases: &Leases{}, Stages: []update.Stage{update.StageProbation}},
	} {
		if _, err := NewSale(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewSale(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		var ls Leases
		g, err := NewSale(SaleConfig{Leases: &ls, Stages: []update.Stage{update.StageDownload, update.StageInstall}})
		if err != nil {
			t.Fatal(err)
		}
		ls.Begin("pos-app", 0)
		wantWait(t, ask(t, g, download(nil)), time.Minute, "in a sale: lease held by pos-app for 2m more")
	})
}

func TestObserveInstalls(t *testing.T) {
	var ls Leases
	var seen []update.State
	observe := ls.ObserveInstalls(func(st update.Status) { seen = append(seen, st.State) })
	tests := []struct {
		state    update.State
		refusing bool
	}{
		{update.StateDownloading, false},
		{update.StateDownloaded, false},
		{update.StateBackingUp, true},
		{update.StateInstalling, true},
		{update.StateMigrating, true},
		{update.StateVerifying, true},
		{update.StateProbation, false}, // the new version takes sales on probation
		{update.StateCommitting, true},
		{update.StateRollingBack, true},
		{update.StateIdle, false},
	}
	for _, tt := range tests {
		observe(update.Status{State: tt.state, Release: "firmware@1.1.0"})
		l, err := ls.Begin("pos-app", 0)
		if tt.refusing {
			if !errors.Is(err, ErrUpdating) || !strings.Contains(err.Error(), string(tt.state)) {
				t.Errorf("%s: Begin = %v, want ErrUpdating naming the state", tt.state, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Begin = %v", tt.state, err)
			continue
		}
		l.End()
	}
	if len(seen) != len(tests) {
		t.Errorf("next saw %d statuses, want %d", len(seen), len(tests))
	}
}
