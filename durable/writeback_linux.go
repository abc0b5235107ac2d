//go:build linux && (amd64 || arm64)

package durable

import "syscall"

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writing back the
// range's dirty pages, without waiting for them.
const syncFileRangeWrite = 2

// StartWriteback asks the kernel to start writing f's bytes [off, off+n)
// to the device without waiting, so that a later Sync waits only for the
// last of them instead of the whole file: large writes followed by an
// fsync (a copy, a download) finish sooner. It is only a hint: errors are
// ignored, the Sync still decides durability and reports write errors, and
// for files other than the OS's, or where the system has no
// sync_file_range, it does nothing.
func StartWriteback(f File, off, n int64) {
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	})
}
