//go:build !unix

package durable

// oNonblock is 0 where named pipes do not live among files (Windows keeps
// them under \\.\pipe\) or the system has no O_NONBLOCK (js, wasip1).
const oNonblock = 0
