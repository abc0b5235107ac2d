// Package durabletest tests code that must survive power cuts, and
// filesystems that claim to let it.
//
// [CrashFS] is an in-memory durable.FS that loses power on demand and
// forgets what was not synced, so a missing fsync shows as lost data
// instead of hiding in the page cache. [TestFS] is the conformance suite
// every durable.FS passes, CrashFS and durable.OS included.
package durabletest
