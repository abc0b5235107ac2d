//go:build unix

package bounded

import "syscall"

// oNonblock keeps an open of a named pipe or a device from blocking.
const oNonblock = syscall.O_NONBLOCK
