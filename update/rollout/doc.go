// Package rollout is the policy of staged rollouts: which terminals get a
// release, in which order, how fast, and when to stop by itself. It is
// server-side and pure: no I/O, no goroutines, no clock of its own (the
// time is always passed in), no state but the plain values the caller
// stores. Every function is safe for concurrent use.
//
// # The model
//
// A [Rollout] offers one release to the devices its [Target] selects
// ([Eligible]). They are split into stages: stage 0 is the pilot list of
// device IDs; stages 1 to n are batches by cumulative percentage of the
// fleet, {1, 10, 50, 100} by default. A device's batch comes from its
// [Cohort], a stable hash of (rollout ID, device ID) onto 10,000 points,
// so its stage never changes while the rollout lasts and two rollouts pick
// different devices for their first batches ([Batch]).
//
// The server keeps, per rollout, a [Status] (scheduled, running with its
// newest open stage, paused, halted with the [Breach] that stopped it,
// aborted, completed) and, per device, a [DeviceState] (pending, offered,
// downloading, installing, succeeded, failed with a reason code, expired,
// or current when it ran the release already).
// It counts device states per stage into [Counts], with [Tally] or with a
// query in its store. Then:
//
//   - [Decide] moves the status on: starts the rollout at its start time,
//     opens the next stage when the newest one has met its success
//     threshold, halts when a stage's failures pass a limit, completes when
//     every device has finished, and expires it. Its events ([Event]) say
//     what changed and why, for the audit log.
//   - [Offer] answers a device that checks in: offer now, with the
//     transport.Policy to send, or not now and when to ask again.
//   - [Pause], [Resume] and [Abort] are the operator's commands; one that
//     the state does not allow returns a [*TransitionError].
//
// # Counting
//
// Offline terminals are not failures: a device that goes silent before it
// is offered the release is counted as offline, waits like a pending one,
// and is left out of the success threshold. A device that goes silent
// holding an offer is another matter, since a release that bricks
// terminals makes them fall silent rather than report: it is counted as
// silent, holds its stage's success threshold back and keeps its
// MaxConcurrent place, and once it has been silent for LostAfter (a day
// by default) it is failed with [ReasonLost], which counts towards the
// halt ([DeviceState.Silent]). Expired devices did not fail either: when
// the rollout expires, those that had not finished are expired. Devices
// that already run the release when the rollout reaches them are current:
// they installed nothing, so they are neither successes that would meet a
// stage's threshold before anything was installed nor finished devices
// that would dilute the failure rate of those that install. Only succeeded
// and failed devices count as finished in the rates: failure rates are
// failed over finished, per stage, overall and per reason code (a per-reason limit
// catches one kind of failure, such as boot_failed, that the overall rate
// would hide). A halted rollout that an operator resumes accepts the
// failures so far: the limits count only failures after the resume.
//
// A rollout gives each device one attempt: a device that failed is not
// offered the release again through it, so its rates measure the release,
// not retries. What a device reports later is still a fact: a success
// overrides its failure, and a failure with a reason code replaces "lost".
//
// # Defaults
//
// A zero field of [Rollout] means: batches {1, 10, 50, 100}; start at once;
// no soak time between stages; success threshold 90% of a stage's
// reachable devices; halt when more than 10% of a stage's finished
// devices failed, once 10 of them (or all of a smaller stage) have
// finished; no per-reason limits; no rate or concurrency cap; a silent
// device is lost after a day; never required; never expires; devices whose turn is unknown ask again after
// 10 minutes, spread by up to 10 more.
//
// # Caps and deadlines
//
// MaxStartsPerMinute caps first offers per calendar minute and
// MaxConcurrent caps devices holding an unfinished offer, silent ones
// included; both protect the
// server, the CDN and the fleet from a release that goes out too fast. A
// device already in flight is offered again outside the caps. A halt, a
// pause or an abort stops offers, not the devices already working on one:
// the protocol cannot recall an offer. So the caps also bound the harm a
// bad release does before the rollout halts: what is in flight when the
// first failures come in is at most MaxConcurrent, and about
// MaxStartsPerMinute times the minutes an update takes. Offers carry
// the rollout's Deadline; from the deadline on they are blocking, so the
// merchant can no longer defer them.
package rollout
