package gate_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/gate"
	"github.com/upkeephq/upkeep/verify"
)

// show prints a gate's answer.
func show(err error) {
	var wait *update.NotNowError
	switch {
	case err == nil:
		fmt.Println("go")
	case errors.As(err, &wait):
		fmt.Printf("not now: %s (ask again in %s)\n", wait.Reason, wait.After.Round(time.Second))
	default:
		fmt.Println("error:", err)
	}
}

var release = &verify.Manifest{
	Component: "payment-app", Version: "2.1.0", Kind: verify.KindApplication,
	Artifact: verify.Artifact{Name: "payment-app.apk", Size: 48 << 20},
}

// The gates a terminal's software puts together, and how they answer: a
// sale in progress on a low battery, then, once both are over, the
// merchant's consent and the notice to customers.
func Example() {
	ctx := context.Background()
	battery := gate.Power{Percent: 12}
	leases := &gate.Leases{} // the payment app begins and ends a lease per sale

	sale, err := gate.NewSale(gate.SaleConfig{Leases: leases})
	if err != nil {
		log.Fatal(err)
	}
	settlement, err := gate.NewSettlement(gate.SettlementConfig{
		Settled: func(context.Context) (bool, error) { return true, nil }, // ask the payment app
	})
	if err != nil {
		log.Fatal(err)
	}
	power, err := gate.NewPower(gate.PowerConfig{
		Read: func(context.Context) (gate.Power, error) { return battery, nil }, // ask the battery driver
	})
	if err != nil {
		log.Fatal(err)
	}
	prompt, err := gate.NewPrompt(gate.PromptConfig{
		Ask: func(_ context.Context, req gate.PromptRequest) (gate.Answer, error) {
			fmt.Printf("screen: install %s now? (%d deferrals left)\n", req.Manifest.ID(), req.Left)
			return gate.AnswerNow, nil
		},
		Notice: func(_ context.Context, n gate.NoticeRequest) error {
			fmt.Println("screen: updating in a few minutes, the terminal will be unavailable")
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	g := gate.Then(gate.All(sale, settlement, power), prompt)
	install := update.GateRequest{Stage: update.StageInstall, Manifest: release}

	l, err := leases.Begin("pos-app", 2*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	show(g(ctx, install))

	l.End()
	battery.OnMains = true
	show(g(ctx, install))
	// Output:
	// not now: in a sale: lease held by pos-app for 2m more; battery at 12%, below 30%, and not on mains power (ask again in 5m0s)
	// screen: install payment-app@2.1.0 now? (3 deferrals left)
	// screen: updating in a few minutes, the terminal will be unavailable
	// not now: customers notified; installing in 5m (the merchant agreed) (ask again in 5m0s)
}

func ExampleAll() {
	g := gate.All(
		func(context.Context, update.GateRequest) error { return nil },
		func(context.Context, update.GateRequest) error {
			return update.NotNow(40*time.Second, "in a sale: lease held by pos-app for 40s more")
		},
		func(context.Context, update.GateRequest) error {
			return update.NotNow(time.Hour, "outside the install window (daily 01:00-05:00 Asia/Shanghai); opens in 3h")
		},
	)
	show(g(context.Background(), update.GateRequest{Stage: update.StageInstall, Manifest: release}))
	// Output:
	// not now: in a sale: lease held by pos-app for 40s more; outside the install window (daily 01:00-05:00 Asia/Shanghai); opens in 3h (ask again in 1h0m0s)
}

// Windows follow the store's own clock. On the night New York's clocks go
// forward (8 March 2026, 02:00 EST becomes 03:00 EDT) a 01:00-05:00 window
// lasts three hours.
func ExampleSchedule() {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		log.Fatal(err)
	}
	w, err := gate.ParseWindow("daily 01:00-05:00")
	if err != nil {
		log.Fatal(err)
	}
	xmas, err := gate.ParseFreeze("2026-12-24..2026-12-26")
	if err != nil {
		log.Fatal(err)
	}
	s := gate.Schedule{Location: ny, Windows: []gate.Window{w}, Freezes: []gate.Freeze{xmas}}
	for _, t := range []time.Time{
		time.Date(2026, 3, 8, 0, 30, 0, 0, ny),
		time.Date(2026, 3, 8, 4, 59, 0, 0, ny),
		time.Date(2026, 3, 8, 5, 0, 0, 0, ny),
		time.Date(2026, 12, 24, 2, 0, 0, 0, ny),
	} {
		fmt.Printf("%s: open %v, next %s\n", t.Format("Jan 2 15:04 MST"), s.Open(t), s.Next(t).Format("Jan 2 15:04 MST"))
	}
	// Output:
	// Mar 8 00:30 EST: open false, next Mar 8 01:00 EST
	// Mar 8 04:59 EDT: open true, next Mar 8 04:59 EDT
	// Mar 8 05:00 EDT: open false, next Mar 9 01:00 EDT
	// Dec 24 02:00 EST: open false, next Dec 27 01:00 EST
}

func ExampleParseWindow() {
	for _, s := range []string{"Mon-Fri 1:00-5:00", "sat,sun 00:00-06:00", "fri 22:00-02:00", "weekdays 01:00-05:00"} {
		w, err := gate.ParseWindow(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(w)
	}
	// Output:
	// mon-fri 01:00-05:00
	// sat,sun 00:00-06:00
	// fri 22:00-02:00
	// gate: bad maintenance window "weekdays 01:00-05:00": unknown day "weekdays": want "daily" or mon, tue, wed, thu, fri, sat, sun
}

// An offer's install windows replace the terminal's. Here the server's
// cannot be read and the terminal has none of its own: the install is held
// back rather than run at any time.
func ExampleNewWindows() {
	g, err := gate.NewWindows(gate.WindowsConfig{Location: time.UTC})
	if err != nil {
		log.Fatal(err)
	}
	req := update.GateRequest{Stage: update.StageInstall, Manifest: release,
		Policy: transport.Policy{InstallWindows: []string{"nightly"}}}
	show(g(context.Background(), req))
	req.Stage = update.StageDownload
	show(g(context.Background(), req))
	// Output:
	// not now: the server's install windows cannot be read (gate: bad maintenance window "nightly": want days and times, as in "mon-fri 01:00-05:00") and the terminal has none of its own (ask again in 1h0m0s)
	// go
}

// Wi-Fi or Ethernet only from 20 MiB.
func ExampleNewNetwork() {
	link := gate.LinkCellular
	g, err := gate.NewNetwork(gate.NetworkConfig{
		Read:  func(context.Context) (gate.Link, error) { return link, nil },
		Rules: []gate.LinkRule{{MinSize: 20 << 20, Links: []gate.Link{gate.LinkWiFi, gate.LinkEthernet}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	req := update.GateRequest{Stage: update.StageDownload, Manifest: release}
	show(g(context.Background(), req))
	link = gate.LinkWiFi
	show(g(context.Background(), req))
	// Output:
	// not now: on cellular: payloads of 20.0 MiB or more need wifi or ethernet (this one is 48.0 MiB) (ask again in 1m0s)
	// go
}

// A blocking release (a security patch) is not deferrable: the merchant is
// not asked, but customers are still told.
func ExampleNewPrompt() {
	g, err := gate.NewPrompt(gate.PromptConfig{
		Ask: func(context.Context, gate.PromptRequest) (gate.Answer, error) {
			panic("not asked")
		},
		Notice: func(_ context.Context, n gate.NoticeRequest) error {
			fmt.Printf("screen: a required update installs shortly (required: %v)\n", n.Required)
			return nil
		},
		NoticeAhead: 2 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	req := update.GateRequest{Stage: update.StageInstall, Manifest: release, Policy: transport.Policy{Blocking: true}}
	show(g(context.Background(), req))
	// Output:
	// screen: a required update installs shortly (required: true)
	// not now: customers notified; installing in 2m (required: blocking release) (ask again in 2m0s)
}

// The payment app takes a lease for each sale; a crashed app's lease
// expires by itself.
func ExampleLeases() {
	var leases gate.Leases
	sale, err := gate.NewSale(gate.SaleConfig{Leases: &leases})
	if err != nil {
		log.Fatal(err)
	}
	install := update.GateRequest{Stage: update.StageInstall, Manifest: release}

	l, err := leases.Begin("pos-app", 40*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	show(sale(context.Background(), install))
	l.End()
	show(sale(context.Background(), install))
	// Output:
	// not now: in a sale: lease held by pos-app for 40s more (ask again in 40s)
	// go
}
