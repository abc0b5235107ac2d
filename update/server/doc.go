// Package server is upkeep's update service: the server side of protocol
// v1, which a vendor mounts in their terminal-management server.
//
// It composes the other packages: releases published from `release pack`
// output and verified against the root keys before they are offered
// (verify), negotiation of the release that fits each terminal
// (update/release), liveness from heartbeats (heartbeat), and the HTTP
// handler (transport/httptransport). It enrolls terminals, issues their
// tokens, records their reports once each, and gives operators a list of
// terminals with version, state and last result.
//
// This first service keeps its state in memory, so one process serves the
// fleet and a restart forgets enrollments; the fleet store behind an
// interface (embedded and PostgreSQL, for several replicas) is its own
// piece of work. A Server is safe for concurrent use.
package server
