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
// [github.com/upkeephq/upkeep/backup/backuptest] holds the conformance
// suite every Hook should pass.
//
// Errors: [ErrNotFound], [ErrCorrupt] (with [*CorruptError] naming the
// file), [ErrInvalid], [ErrUnsupported], [ErrTooLarge], and [*HookError]
// naming the hook at fault. A Store and a Files hook are safe for
// concurrent use.
package backup
