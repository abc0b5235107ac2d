// Package gate holds the terminal's update gates: the conditions under
// which a payment terminal may download and install an update without
// disturbing the business it does. Each gate is an update.Gate for
// update.Config.Gate, made by a New function from a Config struct whose
// zero fields have the defaults below:
//
//	gate             holds back while                                 stages             defaults
//	NewSale          a transaction lease is live (see Leases)         install            leases live 2m unless renewed (at most 15m); ask again within 1m
//	NewSettlement    the batch upload (批上送) is not complete          install            ask the app to settle at most every 15m; ask again in 1m
//	NewIdle          less than Idle since boot or the last sale,      download, install  30m idle, 2 heartbeats; ask again in 1m
//	                 or fewer than MinBeats heartbeats since boot
//	NewWindows       outside the maintenance windows, or frozen       download, install  no windows: any time; ask again within 1h
//	NewPower         on battery below MinPercent                      download, install  30%; ask again in 5m
//	NewNetwork       no link, a link the size rules forbid, or a      download           any link; cellular is metered; no budget; ask again in 1m
//	                 metered budget the payload does not fit
//	NewPrompt        the merchant has not agreed (nor the release     install            3 deferrals of 1h, prompt times out after 1m,
//	                 become required), then for the notice period                        customers notified 5m ahead
//
// The condition gates (sale, settlement, idle, power, network) take a
// Stages field to hold back other stages than their default; [Only]
// narrows any gate to one stage.
//
// A gate answers at once: nil to go, or an *update.NotNowError whose
// Reason is what an operator reads in the terminal's status ("in a sale:
// lease held by pos-app for 40s more", "outside the install window
// (mon-fri 01:00-05:00 America/New_York); opens in 3h20m") and whose After
// is when to ask again. Reasons are stable sentences with the numbers that
// matter; nothing in them is random. Any other error means the gate could
// not decide (a battery driver failed): the agent logs it and holds the
// update back. No gate waits for its condition: callbacks that read the
// terminal's state get a context bounded to a few seconds, and the
// merchant prompt is bounded by its AskTimeout.
//
// Gates compose: [All] asks every gate and joins the reasons of those
// that say not now, waiting for the longest; [Then] asks a second gate
// only once the first says go. The merchant should be asked only when the
// update could otherwise start, so the prompt comes last:
//
//	g := gate.Then(gate.All(sale, settlement, idle, windows, power, network), prompt)
//
// Manual updates (from the maintenance menu) do not go through the agent's
// gate, so none of this holds them back.
//
// Maintenance windows ([ParseWindow], [Schedule]) are weekly, in the
// terminal's own time zone: "mon-fri 01:00-05:00", "sat,sun 00:00-06:00",
// "daily 22:00-02:00" (a window across midnight belongs to the day it
// starts). Across daylight-saving changes a window keeps its wall-clock
// times; see [Schedule] for the skipped and repeated hours. An offer's
// policy may carry its own windows (transport.Policy.DownloadWindows and
// InstallWindows), which replace the terminal's for that offer; see
// [NewWindows] for what happens when they cannot be read.
package gate
