// Package server is upkeep's update service: the server side of protocol
// v1, which a vendor mounts in their terminal-management server, and the
// operator API beside it.
//
// It composes the other packages: releases published from `release pack`
// output and verified against the root keys before they are offered
// (verify), the plan of releases that fits each terminal (update/release),
// staged rollouts (update/rollout), liveness from
// heartbeats (heartbeat), the HTTP handler (transport/httptransport) and
// the fleet store (update/server/store).
//
// # State
//
// Everything the server knows lives in its [store.Store]: terminals and
// their tokens, heartbeats, reports (recorded once per report ID), pending
// nudges, published releases, rollouts and each device's place in them,
// and the audit log. Several Servers on one store (replicas behind a load
// balancer, on PostgreSQL) behave as one: a rollout's status changes by
// compare and swap, so one replica makes each change and audits it. In
// memory a Server keeps only caches: which release bundles it verified.
// Replicas serve artifacts from the path they were published at, so they
// share the release directories, or offers point at a CDN.
//
// [Server.Run] is optional background work: heartbeats written in batches,
// and rollouts swept and decided on a timer. The caller runs it, and stops
// it after the HTTP server.
//
// # Rollouts
//
// A release published without a rollout is offered to every terminal it
// fits. Once a rollout of it exists ([Server.CreateRollout]), it is
// offered only as its rollouts allow: to the terminals they target, stage
// by stage, under their caps. Reports move devices on, and each report
// that finishes a device decides its rollout again, which opens the next
// stage or halts the rollout on failures. A terminal that goes silent
// before it is offered the release is offline and waits, never failed; one
// that goes silent holding an offer may have been bricked by it, so it
// holds its stage back, keeps its MaxConcurrent place and, once silent for
// the rollout's LostAfter, is failed as lost. A rollout gives each
// terminal one attempt: one that failed is not offered the release again
// through it, but a later report that it committed the release (a
// technician installed it) counts it installed. Each change lands in the
// audit log.
//
// # Requirements and security releases
//
// A release may require other components at some version (an application
// that needs firmware ">= 1.4"). A check offers the terminal a plan: the
// releases that meet the requirements first, then the release itself,
// each step only as its own release's rollouts allow. A release may also
// say it is a security release; each terminal's listing and the
// inventory show the oldest security release it lacks and since when, so
// operators see who is behind.
//
// # Operators
//
// The operator API ([Server.OperatorHandler]) has its own bearer tokens,
// each naming an operator with a role: viewers list terminals, releases,
// rollouts with per-stage counts, and the audit log, and export the
// inventory as CSV; admins also publish, run rollouts and nudge. Every
// admin action, each refusal of one, and every manual update a terminal
// reports (with the technician credential that authorised it) is appended
// to the audit log.
//
// A Server is safe for concurrent use.
package server
