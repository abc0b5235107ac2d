package terminal

import (
	"context"
	"testing"

	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/gate"
)

// TestMetered: bytes downloaded on a cellular link reach the budget, those
// on Wi-Fi do not, and a new Fetch (Fetched back to zero) is counted anew.
func TestMetered(t *testing.T) {
	link := gate.LinkCellular
	b := &gate.Budget{Limit: 1 << 20}
	p := Policy{Budget: b, Network: func(context.Context) (gate.Link, error) { return link, nil }}
	var seen int
	progress := p.metered(func(update.Progress) { seen++ })
	for _, pr := range []struct {
		fetched int64
		link    gate.Link
	}{{100, gate.LinkCellular}, {300, gate.LinkCellular}, {500, gate.LinkWiFi}, {50, gate.LinkCellular}} {
		link = pr.link
		progress(update.Progress{Release: "firmware@1.1.0", Fetched: pr.fetched})
	}
	// 100 + 200 on cellular, 200 on Wi-Fi not counted, then a new Fetch: 50.
	if used, _ := b.Used(); used != 350 {
		t.Errorf("budget used %d bytes, want 350", used)
	}
	if seen != 4 {
		t.Errorf("next called %d times, want 4", seen)
	}
}
