// Package backup keeps what must survive an update (备份): the transaction
// journal, e-signatures, parameters. The agent snapshots it before an
// install and, if the update is rolled back, restores it byte for byte.
//
// A [Hook] saves and restores one kind of data. Vendors write their own
// (a database dump, an export through the payment app's API), adapt two
// functions with [HookFuncs], or use [Files], which backs up files and
// directory trees as they are on disk:
//
//	journal, err := backup.NewFiles("journal", "/data/pos/journal", "/data/pos/batch.dat")
//	params, err := backup.NewFiles("params", "/data/pos/params")
//
// A [Store] holds snapshots in a directory:
//
//	store, err := backup.OpenStore(filepath.Join(stateDir, "backups"), backup.StoreConfig{})
//	snap, err := store.Create(ctx, "before payment-app@2.4.0", hooks)
//	// ... install; health checks fail ...
//	err = store.Restore(ctx, snap.ID, hooks)
//	// ... or they pass, and the probation period is over:
//	err = store.Prune(snap.ID)
//
// A snapshot records the size and SHA-256 of every file any hook wrote,
// is made durable (every file and directory fsynced) and published with
// one rename, so a power cut leaves it complete or absent. Restore checks
// all of it before any hook runs: a snapshot with a missing, extra or
// altered file is [ErrCorrupt] and the live data is not touched.
//
// All of it goes through a durable.FS: the store's ([StoreConfig.FS],
// handed to every hook for the snapshot's files) and, for [Files], the
// live data's ([NewFilesOn]). Both default to the OS's. Tests give
// durabletest.CrashFS instead, which loses power at any chosen operation
// and forgets what was not fsynced; backup's own tests cut the power at
// every operation of Store.Create and Store.Restore and check that the
// store opens again, that no snapshot is ever published half made, and
// that restoring again brings the live data back byte for byte:
//
//	fsys := durabletest.NewCrashFS(seed)
//	journal, err := backup.NewFilesOn(fsys, "journal", "/data/pos/journal")
//	store, err := backup.OpenStore("/state/backups", backup.StoreConfig{FS: fsys})
//
// [github.com/upkeephq/upkeep/backup/backuptest] holds the conformance
// suite every Hook should pass.
//
// Errors: [ErrNotFound], [ErrCorrupt] (with [*CorruptError] naming the
// file), [ErrInvalid], [ErrUnsupported], [ErrTooLarge], and [*HookError]
// naming the hook at fault. A Store and a Files hook are safe for
// concurrent use.
package backup
