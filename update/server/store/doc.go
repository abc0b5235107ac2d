// Package store is the update server's fleet store: the state that every
// replica of the server shares, behind one interface with three
// implementations.
//
//   - memstore keeps everything in memory, for tests and the demo.
//   - boltstore is the embedded default: one file in a data directory
//     (go.etcd.io/bbolt inside), so one binary runs with nothing else.
//   - pgstore is PostgreSQL (pgx inside), for several replicas behind a
//     load balancer.
//
// All three pass the conformance suite in storetest, and none leaks its
// driver's types into its API.
//
// What is kept: terminals (identity, token hash, what they run, their last
// heartbeat and result, pending directives), their reports (recorded once
// per report ID), published releases, rollouts (opaque definitions and
// status updated by compare-and-swap on a version), each device's state in
// each rollout (counted by phase and reason without reading the rows;
// changed only if it is still what its writer read, and claimed under a
// rollout's caps in the same transaction), and an append-only audit log.
//
// Heartbeats are the hot path: a fleet of a hundred thousand terminals
// beating every five minutes is over three hundred writes a second. They
// are written in batches, one transaction each ([Fleet.Heartbeats]); a
// [Batcher] gathers the beats of many concurrent requests into those
// batches.
//
// Conventions every implementation keeps, so that a record reads back as
// it was written:
//
//   - Times are kept in UTC to the microsecond; a zero time stays zero.
//   - An empty slice reads back as nil.
//   - Keys (device, rollout, release IDs, serials, report IDs) are
//     non-empty UTF-8 without NUL bytes; otherwise [ErrInvalid].
//   - Opaque JSON fields (a release's policy, a rollout's definition and
//     status) must be valid JSON or empty, and read back byte for byte.
//   - Records are copied in and out: changing a returned record never
//     changes the store.
//
// Callbacks passed to the store (the update functions of
// [Fleet.UpdateTerminal] and [Fleet.AddReport]) run inside the store's
// transaction: they must be quick, must not block, and must not call the
// store.
package store
