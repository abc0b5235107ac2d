//go:build linux

package main

import (
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Peak RSS, measured fairly.
//
// Linux charges a child at exec with the peak RSS of the memory it ran in
// before: Go starts children with vfork, in the parent's memory, so the
// child's rusage Maxrss is at least the bench's own peak (tens of MiB after
// packing a release) whatever the tool really used. So before each start
// the bench returns its free heap to the kernel and resets its own peak to
// its current RSS (/proc/self/clear_refs, "5"): the floor. While the child
// runs, its own high-water mark (VmHWM of its new memory) is sampled. A
// Maxrss above the floor is the child's own peak, exactly; one at the floor
// hides a smaller peak, and the last sample is taken instead.

// rssSampleEvery is how often a child's VmHWM is read.
const rssSampleEvery = 5 * time.Millisecond

// rssSlack is how much the bench's peak may grow between lowering the
// floor and the child's exec (other goroutines allocating).
const rssSlack = 1 << 20

// lowerRSSFloor resets this process's peak RSS to its current RSS and
// returns it: the least Maxrss a child started now will report.
func lowerRSSFloor() int64 {
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return vmHWM("/proc/self/status")
}

// rssProbe samples one child's VmHWM until peak is called.
type rssProbe struct {
	floor   int64
	sampled atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

// watchRSS starts sampling pid, a child that has just exec'd.
func watchRSS(pid int, floor int64) *rssProbe {
	p := &rssProbe{floor: floor, stop: make(chan struct{}), done: make(chan struct{})}
	status := "/proc/" + strconv.Itoa(pid) + "/status"
	p.sampled.Store(vmHWM(status))
	go func() {
		defer close(p.done)
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				// A zombie has no VmHWM: 0, which max ignores.
				p.sampled.Store(max(p.sampled.Load(), vmHWM(status)))
			}
		}
	}()
	return p
}

// peak stops sampling and returns the child's peak RSS in bytes, given its
// state once waited for.
func (p *rssProbe) peak(ps *os.ProcessState) int64 {
	close(p.stop)
	<-p.done
	var maxrss int64
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		maxrss = ru.Maxrss << 10 // KiB on Linux
	}
	if maxrss > p.floor+rssSlack {
		return maxrss
	}
	return max(p.sampled.Load(), 0)
}

// vmHWM reads the "VmHWM:" line of a /proc status file, in bytes; 0 if
// there is none (a zombie, a process gone).
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nVmHWM:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	f := bytes.Fields(line) // "1234 kB"
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0
	}
	n, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}
