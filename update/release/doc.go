// Package release decides which release fits which terminal. It is pure:
// no I/O, no clocks of its own, safe for concurrent use; the server calls
// [Plan] (or [Negotiate], for one release installable now) to pick its
// offers and the terminal calls [Compatible] to refuse a signed release
// that is not for it, with the same rules on both sides.
//
// A [Release] is a component at a version, of a [verify.Kind], on a
// channel, for a set of models and hardware revisions, installable from
// the versions its From constraints allow, never below a terminal's
// anti-rollback floor, once the terminal has the other components it
// Requires. A requirement (an application that needs firmware ">= 1.4")
// makes a plan of several steps: the firmware, then the application.
// Versions are semantic versions; the semver library stays inside.
package release
