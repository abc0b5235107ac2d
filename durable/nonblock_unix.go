//go:build unix

package durable

import "syscall"

// oNonblock keeps an open of a named pipe or a device from blocking.
const oNonblock = syscall.O_NONBLOCK
