// Package durable is the filesystem a terminal's update state lives on,
// and the discipline that makes it survive a power cut.
//
// [FS] is a small interface over a filesystem; [OS] is the operating
// system's. Everything upkeep writes on a terminal (the agent's journal,
// downloads and report outbox, backup snapshots, installed files) goes
// through an FS, so tests can swap in durabletest.CrashFS, which loses
// power on demand and forgets whatever was not synced, and prove that no
// crash leaves a terminal half-updated.
//
// The functions here are the only ways upkeep writes:
//
//   - [WriteFile] and [Write] replace a file atomically: a temporary file in
//     the same directory, fsync, rename, fsync of the directory. A reader,
//     or a terminal after a power cut, sees the old content or the new.
//   - [Rename], [MkdirAll] and [RemoveAll] fsync the directories they
//     change, so the change itself survives.
//   - [Open], [OpenNoFollow] and [ReadFile] read only regular files, never
//     block on a named pipe planted where a file was expected, and bound
//     what they read.
//
// Nothing is durable until it is synced: a file's data by File.Sync, a
// directory's entries (files created, renamed or removed in it) by
// FS.SyncDir.
package durable
