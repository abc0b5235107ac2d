// Package durabletest tests code that must survive power cuts, and
// filesystems that claim to let it.
//
// [CrashFS] is an in-memory durable.FS that loses power on demand and
// forgets what was not synced, so a missing fsync shows as lost data
// instead of hiding in the page cache. After a power cut, [Loss] says how
// much of the unsynced is lost: all of it ([LoseUnsynced], what POSIX
// allows), a random prefix of each file's and directory's changes
// ([LoseSome]), or for file data any subset of the unsynced 4 KiB pieces
// at any size between the synced one and the last ([LoseAny], a write-back
// cut mid-flight). [TestFS] is the conformance suite every durable.FS
// passes, CrashFS and durable.OS included.
package durabletest
