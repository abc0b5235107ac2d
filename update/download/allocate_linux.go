//go:build linux

package download

import (
	"errors"
	"syscall"

	"github.com/upkeephq/upkeep/durable"
)

// allocate reserves size bytes for f, so that a full disk shows now and
// not halfway through the download. Where the filesystem cannot
// preallocate, the file is only extended.
func allocate(f durable.File, size int64) error {
	if fd, ok := f.(interface{ Fd() uintptr }); ok && size > 0 {
		err := syscall.Fallocate(int(fd.Fd()), 0, 0, size)
		if err == nil || !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
			return err
		}
	}
	return f.Truncate(size)
}
