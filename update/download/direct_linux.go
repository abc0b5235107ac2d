//go:build linux

package download

import (
	"os"
	"syscall"

	"github.com/upkeephq/upkeep/durable"
)

// openDirect opens path a second time, for writing with O_DIRECT: whole
// aligned pieces then go from the worker's buffer to the device without
// passing through the page cache. It returns nil where that cannot be
// done: the filesystem is not the OS's (a test's fault-injecting one), or
// it refuses O_DIRECT (tmpfs before Linux 6.6, some flash filesystems).
func openDirect(fsys durable.FS, path string) *os.File {
	if _, ok := fsys.(durable.OS); !ok {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
