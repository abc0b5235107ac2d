//go:build !linux || !(amd64 || arm64)

package durable

// StartWriteback does nothing here: a later Sync writes the whole file.
// See the Linux version.
func StartWriteback(f File, off, n int64) {}
