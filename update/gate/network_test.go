package gate

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// radio is a fake network link.
type radio struct {
	link Link
	err  error
}

func (r *radio) Read(context.Context) (Link, error) { return r.link, r.err }

func TestNetworkGateRules(t *testing.T) {
	rules := []LinkRule{
		{MinSize: 100 << 20, Links: []Link{LinkEthernet}},
		{MinSize: 20 << 20, Links: []Link{LinkWiFi, LinkEthernet}},
	}
	small, large, huge := manifest("params@1.0.0", 512<<10), manifest("payment-app@2.1.0", 48<<20+200<<10), manifest("fw@3.0.0", 200<<20)
	for _, tc := range []struct {
		name   string
		rules  []LinkRule
		link   Link
		req    update.GateRequest
		reason string // "": go
	}{
		{name: "no rules, cellular", link: LinkCellular, req: download(huge)},
		{name: "no rules, no link", link: LinkNone, req: download(small), reason: "no network connection"},
		{name: "no link reported", link: "", req: download(small), reason: "no network connection"},
		{name: "small on cellular", rules: rules, link: LinkCellular, req: download(small)},
		{name: "large on cellular", rules: rules, link: LinkCellular, req: download(large),
			reason: "on cellular: payloads of 20.0 MiB or more need wifi or ethernet (this one is 48.2 MiB)"},
		{name: "large on wifi", rules: rules, link: LinkWiFi, req: download(large)},
		{name: "huge on wifi", rules: rules, link: LinkWiFi, req: download(huge),
			reason: "on wifi: payloads of 100.0 MiB or more need ethernet (this one is 200.0 MiB)"},
		{name: "huge on ethernet", rules: rules, link: LinkEthernet, req: download(huge)},
		{name: "an unknown link", rules: rules, link: "satellite", req: download(large),
			reason: "on satellite: payloads of 20.0 MiB or more need wifi or ethernet (this one is 48.2 MiB)"},
		{name: "installs are not held", rules: rules, link: LinkNone, req: install(huge)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, err := NewNetwork(NetworkConfig{Read: (&radio{link: tc.link}).Read, Rules: tc.rules})
				if err != nil {
					t.Fatal(err)
				}
				a := ask(t, g, tc.req)
				if tc.reason == "" {
					wantGo(t, a)
				} else {
					wantWait(t, a, DefaultRecheck, tc.reason)
				}
			})
		})
	}
}

// TestNetworkGateBudget follows two releases through a 50 MiB daily
// budget on cellular, feeding it as a download would.
func TestNetworkGateBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &radio{link: LinkCellular}
		b := &Budget{Limit: 50 << 20}
		g, err := NewNetwork(NetworkConfig{Read: r.Read, Budget: b})
		if err != nil {
			t.Fatal(err)
		}
		sleepUntil(time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC))
		app := manifest("payment-app@2.1.0", 30<<20)

		// 30 MiB fits 50: it downloads in pieces, asking before each.
		for range 30 {
			wantGo(t, ask(t, g, download(app)))
			b.AddRelease(app.ID(), 1<<20)
		}
		if used, resets := b.Used(); used != 30<<20 || !resets.Equal(time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("Used() = %d, %s", used, resets)
		}

		// A second release of 30 MiB does not fit the 20 left.
		fw := manifest("fw@3.0.0", 30<<20)
		wantWait(t, ask(t, g, download(fw)), DefaultRecheck,
			"on metered cellular: 30.0 MiB to download, 20.0 MiB left of the budget this period; resets in 18h")
		// On Wi-Fi it goes, and Wi-Fi bytes are not counted.
		r.link = LinkWiFi
		wantGo(t, ask(t, g, download(fw)))
		// Back on cellular, its whole size is still to come as far as the
		// budget knows; other traffic shrinks what is left.
		r.link = LinkCellular
		b.Add(5 << 20)
		wantWait(t, ask(t, g, download(fw)), DefaultRecheck,
			"on metered cellular: 30.0 MiB to download, 15.0 MiB left of the budget this period; resets in 18h")

		// Next day: a fresh budget. It downloads 20 MiB, then another
		// app's traffic takes 25, and the download pauses.
		sleepUntil(time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC))
		for range 20 {
			wantGo(t, ask(t, g, download(fw)))
			b.AddRelease(fw.ID(), 1<<20)
		}
		b.Add(25 << 20)
		wantWait(t, ask(t, g, download(fw)), DefaultRecheck,
			"on metered cellular: 10.0 MiB to download, 5.0 MiB left of the budget this period; resets in 24h")
		// The day after, the 10 MiB left fit.
		sleepUntil(time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC))
		wantGo(t, ask(t, g, download(fw)))

		big := manifest("os@9.0.0", 60<<20)
		wantWait(t, ask(t, g, download(big)), DefaultRecheck,
			"on metered cellular: 60.0 MiB to download exceeds the whole budget of 50.0 MiB per 24h; waiting for an unmetered link")
	})
}

func TestBudgetPeriods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sh := mustLoad(t, "Asia/Shanghai")
		// A budget renewed every week, on Mondays at local midnight.
		b := &Budget{Limit: 1 << 20, Period: 7 * 24 * time.Hour, Anchor: time.Date(2026, 6, 1, 0, 0, 0, 0, sh)}
		sleepUntil(time.Date(2026, 5, 30, 12, 0, 0, 0, sh)) // before the anchor
		b.Add(100)
		b.Add(-5)
		if used, resets := b.Used(); used != 100 || !resets.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, sh)) {
			t.Errorf("Used() = %d, %s; want 100, the anchor", used, resets.In(sh))
		}
		sleepUntil(time.Date(2026, 6, 7, 23, 59, 0, 0, sh))
		if used, resets := b.Used(); used != 0 || !resets.Equal(time.Date(2026, 6, 8, 0, 0, 0, 0, sh)) {
			t.Errorf("Used() = %d, %s; want 0, next Monday", used, resets.In(sh))
		}
		g, _ := NewNetwork(NetworkConfig{Read: (&radio{link: LinkCellular}).Read, Budget: &Budget{}})
		wantWait(t, ask(t, g, download(manifest("x@1.0.0", 1))), DefaultRecheck,
			"on metered cellular: 1 B to download exceeds the whole budget of 0 B per 24h; waiting for an unmetered link")
	})
}

func TestNetworkGateMetered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Budget{Limit: 1 << 20}
		g, err := NewNetwork(NetworkConfig{Read: (&radio{link: LinkWiFi}).Read, Budget: b, Metered: []Link{LinkWiFi}})
		if err != nil {
			t.Fatal(err)
		}
		wantWait(t, ask(t, g, download(manifest("x@1.0.0", 2<<20))), DefaultRecheck,
			"on metered wifi: 2.0 MiB to download exceeds the whole budget of 1.0 MiB per 24h; waiting for an unmetered link")
	})
}

func TestNetworkGateErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &radio{err: errors.New("modem not responding")}
		g, _ := NewNetwork(NetworkConfig{Read: r.Read})
		if a := ask(t, g, download(manifest("x@1.0.0", 1))); !errors.Is(a.Err, r.err) {
			t.Errorf("gate said %+v, want the read's error", a)
		}
		if a := ask(t, g, download(nil)); !errors.Is(a.Err, ErrNoManifest) {
			t.Errorf("gate said %+v without a manifest, want ErrNoManifest", a)
		}
	})
	read := (&radio{}).Read
	for _, cfg := range []NetworkConfig{
		{},
		{Read: read, Recheck: -1},
		{Read: read, Rules: []LinkRule{{MinSize: -1, Links: []Link{LinkWiFi}}}},
		{Read: read, Rules: []LinkRule{{MinSize: 1}}},
		{Read: read, Rules: []LinkRule{{MinSize: 1, Links: []Link{LinkWiFi}}, {MinSize: 1, Links: []Link{LinkEthernet}}}},
		{Read: read, Budget: &Budget{Limit: -1}},
		{Read: read, Budget: &Budget{Period: -1}},
	} {
		if _, err := NewNetwork(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewNetwork(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestBudgetRemembersOneRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Budget{Limit: 10 << 20}
		b.AddRelease("a@1.0.0", 4<<20)
		if ok, remaining, left, _ := b.take("a@1.0.0", 8<<20); !ok || remaining != 4<<20 || left != 6<<20 {
			t.Errorf("take(a) = %v, %d, %d; want 4 MiB to go of 6 left", ok, remaining, left)
		}
		// Another release's bytes: a's are forgotten (the agent downloads
		// one release at a time).
		b.AddRelease("b@1.0.0", 1<<20)
		if ok, remaining, left, _ := b.take("a@1.0.0", 8<<20); ok || remaining != 8<<20 || left != 5<<20 {
			t.Errorf("take(a) = %v, %d, %d; want all 8 MiB to go of 5 left", ok, remaining, left)
		}
		if ok, remaining, _, _ := b.take("b@1.0.0", 3<<20); !ok || remaining != 2<<20 {
			t.Errorf("take(b) = %v, %d; want 2 MiB to go", ok, remaining)
		}
	})
}
