// Package update is the terminal's update agent: a journaled state machine
// that takes one release at a time from offer to commit, or back.
//
//	idle → offered → gated → downloading → downloaded → backing-up →
//	installing → migrating → verifying → probation → committing → committed
//	    │            │           │           │
//	    └────────────┴───────────┴───────────┴→ rolling-back → rolled-back
//	(refused before installing: → failed)
//
// Each transition is written to a journal in the state directory (temp
// file, fsync, rename, fsync the directory) before its side effects begin,
// so after a power cut [Agent.Update] knows exactly where it stopped and
// resumes or rolls back:
//
//   - before installing, the stored bundle is verified again (a release
//     that expired while it waited is refused) and the download resumes,
//     fetching only the chunks that are missing or wrong on disk;
//   - installing and verifying run again from the start (installers are
//     idempotent), at most Config.StepAttempts times, then roll back;
//   - migrating restores the backup and runs the migrations again, so they
//     always start from the old data;
//   - probation counts the restart against StepAttempts and keeps waiting
//     for its heartbeats, its time or [Agent.MarkGood];
//   - committing (the checks passed) only goes forward;
//   - rolling-back runs again until it succeeds, reported as needing
//     attention meanwhile.
//
// Downloads need no journal of their own: what is on disk is verified
// chunk by chunk against the signed manifest before it is trusted. Network
// and server failures never give a release up; the agent retries with
// backoff until the release expires. A release rolled back
// Config.MaxAttempts times is given up and reported.
//
// All of it is written through a durable.FS. The package's crash suite
// (TestPowerCuts) runs the agent, a file installer, backups and a
// migration on a durabletest.CrashFS and cuts the power at every
// filesystem operation of an update, checking that the terminal always
// ends wholly on the new version or wholly on the old one with its data
// byte for byte, and that the server hears of it exactly once.
//
// The vendor supplies the platform parts through small interfaces and
// functions in [Config]: the [Source] (a transport.Client), the
// [Installer], the backup hooks, the health checks and a [Gate] that says
// when the terminal may act (not during a sale, inside the maintenance
// window...). Everything else — verification, download, backup, journal,
// rollback, reports — is the agent's.
//
// The agent refuses, before anything is installed: a bundle that is
// unsigned, signed by an unknown key, tampered with or expired; a release
// for another model or hardware revision, or one the installed version may
// not upgrade from; a version below the anti-rollback floor; an artifact
// larger than allowed; a chunk whose hash differs. Each outcome is
// reported to the server with a reason code through a durable outbox.
//
// An Agent is safe for concurrent use; [Agent.Update] runs one pass at a
// time and [Agent.Run] loops it.
package update
