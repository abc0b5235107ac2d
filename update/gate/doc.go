// Package gate holds the terminal's update gates: the conditions under
// which a payment terminal may download and install an update without
// disturbing the business it does. Each gate is an update.Gate for
// update.Config.Gate, made by a New function from a Config struct whose
// zero fields have the defaults given here:
//
//   - [NewSale] holds installs back while a transaction lease is live
//     ([Leases]). Leases live 2 minutes unless renewed (at most 15); it
//     asks again within a minute.
//   - [NewSettlement] holds installs back until the batch upload (批上送)
//     is complete, asking the payment app to settle at most every 15
//     minutes; it asks again in a minute.
//   - [NewIdle] holds downloads and installs back until the terminal has
//     been idle 30 minutes since boot and since the last sale, and has
//     sent 2 heartbeats since boot; it asks again in a minute while
//     heartbeats are missing.
//   - [NewWindows] holds each of downloads and installs back outside its
//     own maintenance windows (none: any time) and on freeze dates; it
//     asks again when the window opens, at the latest within an hour.
//   - [NewPower] holds downloads and installs back on a battery below 30%
//     and not on mains; it asks again in 5 minutes.
//   - [NewNetwork] holds downloads back with no link, on a link the size
//     rules forbid (no rules: any link), and on a metered link (cellular)
//     when the payload does not fit its [Budget] (none: no cap); it asks
//     again in a minute.
//   - [NewPrompt] holds installs back until the merchant agrees, or the
//     release becomes required: 3 deferrals of an hour each, a prompt
//     unanswered after a minute counting as one; then customers are
//     notified and the install waits 5 minutes.
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
//	g := gate.Then(gate.All(sale, idle, windows, power, network), gate.Then(settlement, prompt))
//
// Settlement comes after the others because it may ask the payment app to
// settle (SettlementConfig.Settle): only when the update could otherwise
// start, never every few minutes through trading hours. The prompt comes
// last, so the merchant is asked only when nothing else holds back.
//
// Every gate is safe for concurrent use; the ones that keep state (the
// settlement request's timing, the prompt's deferrals) keep it per gate, so
// two agents in one process never share it.
//
// Manual updates (update.Agent.InstallPackage) ask update.Config.ManualGate
// instead of Config.Gate: a technician at the terminal skips the idle time,
// windows and prompt, but should not skip a sale in progress, e.g.
// ManualGate: gate.All(sale, power).
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
