package heartbeat

import (
	"context"
	"sync"
	"time"
)

// Counter counts successful heartbeats since it was made and the failures
// since the last success. The agent makes one at start-up, hands it to
// [Run] through [Config.Counter], and gates automatic updates on
// [Counter.Wait]: the domain's rule is two heartbeats after power-on.
//
// The zero value is ready to use. A Counter is safe for concurrent use; it
// should be fed by one [Run] at a time, since the count is also the source
// of each beat's sequence number.
type Counter struct {
	mu       sync.Mutex
	count    int
	failures int
	last     time.Time
	// changed is closed and replaced on every success, waking [Counter.Wait].
	changed chan struct{}
}

// Count returns the number of successful heartbeats recorded.
func (c *Counter) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Last returns the time of the last successful heartbeat, or the zero time
// if there has been none.
func (c *Counter) Last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Failures returns the number of heartbeats that have failed since the last
// success (or since the Counter was made).
func (c *Counter) Failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// RecordSuccess records a heartbeat the server acknowledged at time at: the
// count goes up, the failures go back to zero, and waiters are woken. [Run]
// calls it; a vendor's own beat path (a manual update's heartbeat, for
// instance) may call it too.
func (c *Counter) RecordSuccess(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	c.failures = 0
	c.last = at
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// RecordFailure records a heartbeat that did not succeed. It does not
// change the count.
func (c *Counter) RecordFailure() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures++
}

// Wait blocks until at least n heartbeats have succeeded, or ctx is done,
// in which case it returns ctx.Err(). It returns nil at once when the
// count is already n or more (n <= 0 included), even if ctx is done.
func (c *Counter) Wait(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.count >= n {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
