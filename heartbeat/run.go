package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

// Defaults used for the zero values of [Config]'s fields.
const (
	DefaultInterval     = 5 * time.Minute
	DefaultMinInterval  = 10 * time.Second
	DefaultMaxInterval  = 24 * time.Hour
	DefaultJitter       = 0.1
	DefaultInitialDelay = 5 * time.Second
	DefaultBackoffMin   = 5 * time.Second
	DefaultBackoffMax   = 5 * time.Minute
	DefaultTimeout      = time.Minute
	// DefaultStatusTimeout is the longest [Config.Status] may take by
	// default (or [Config.Timeout], if that is shorter).
	DefaultStatusTimeout = 5 * time.Second
)

// MaxJitter bounds [Config.Jitter]: beyond half the interval a wait could
// come close to zero.
const MaxJitter = 0.5

// Sender sends one heartbeat. [transport.Client] satisfies it.
type Sender interface {
	Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error)
}

// Config configures [Run]. Only Sender is required; every other field has
// a documented default for its zero value.
type Config struct {
	// Sender sends the beats. Required.
	Sender Sender

	// Status builds the status each beat carries. Run sets Seq on the
	// request it returns (overwriting whatever Status put there), so
	// Status must return a fresh request each time. Nil sends an empty
	// status.
	//
	// Liveness matters more than status: if Status fails, returns a
	// request that does not pass [transport.HeartbeatRequest.Validate]
	// (the server would refuse it), or is still running when
	// StatusTimeout expires, the problem is logged and the beat is sent
	// anyway, carrying only its Seq, under a Timeout of its own. A broken
	// status builder never makes a terminal look offline, provided it
	// returns once its ctx is done: it runs in Run's goroutine, which
	// cannot leave it behind.
	Status func(ctx context.Context) (*transport.HeartbeatRequest, error)

	// StatusTimeout bounds each call of Status; its ctx is done when it
	// expires (or when Run's is). Status should take milliseconds: it
	// reads state the agent already has, not the network. Zero means
	// [DefaultStatusTimeout] or Timeout, whichever is shorter.
	StatusTimeout time.Duration

	// OnResponse, if set, is called with every successful response, before
	// OnDirective. It runs in Run's goroutine, so it must return quickly
	// (hand long work to another goroutine) and must not modify resp;
	// until it returns, no beat is sent.
	OnResponse func(ctx context.Context, resp *transport.HeartbeatResponse)

	// OnDirective, if set, is called once for each directive of each
	// successful response, in order: [transport.DirectiveCheck] asks for
	// an update check now, [transport.DirectiveSignIn] for a new sign-in.
	// Like OnResponse it runs in Run's goroutine and must return quickly.
	OnDirective func(ctx context.Context, d transport.Directive)

	// Interval is the time between beats until the server directs one.
	// Zero means [DefaultInterval]. It must lie within
	// [MinInterval, MaxInterval].
	Interval time.Duration

	// MinInterval and MaxInterval clamp the interval the server directs,
	// so that a buggy server can neither make a fleet beat every
	// millisecond nor silence it; no wait after a successful beat is ever
	// shorter than MinInterval. Zero means [DefaultMinInterval] and
	// [DefaultMaxInterval]. MaxInterval also caps a server's Retry-After.
	MinInterval time.Duration
	MaxInterval time.Duration

	// Jitter spreads the waits: after a success the wait is drawn
	// uniformly from [I-J, I+J], where I is the interval and J is Jitter×I
	// (or the server's JitterSeconds when it sends one), J at most I/2.
	// Zero means [DefaultJitter]; negative means no jitter (for tests and
	// lone devices; a fleet wants jitter). At most [MaxJitter].
	Jitter float64

	// InitialDelay is the longest random delay before the first beat, so
	// a fleet powering on together (after a power cut in a mall) does not
	// beat together. The delay is drawn uniformly from [0, InitialDelay).
	// Zero means [DefaultInitialDelay]; negative means beat at once.
	InitialDelay time.Duration

	// BackoffMin and BackoffMax shape the wait after failures: after the
	// n-th failure in a row the wait is drawn uniformly from
	// [0, min(BackoffMax, BackoffMin×2^(n-1))) ("full jitter"). A failure
	// that is a [*transport.Error] with RetryAfter > 0 is a server
	// shedding load: Run waits RetryAfter (capped at MaxInterval) plus up
	// to Jitter of it, and does not grow the backoff. Zero means
	// [DefaultBackoffMin] and [DefaultBackoffMax].
	BackoffMin time.Duration
	BackoffMax time.Duration

	// Timeout bounds sending one beat. It starts once the status is built,
	// so a slow Status never eats into it. A beat that times out has
	// failed. Zero means [DefaultTimeout].
	Timeout time.Duration

	// Counter, if set, records every beat's outcome; the agent reads it
	// to gate updates on the number of beats since boot. Its count also
	// numbers the beats: each carries Seq = Count()+1, so a Run restarted
	// with the same Counter continues the sequence. Nil means a Counter
	// private to this Run.
	Counter *Counter

	// Rand is the source of every random draw. It is used only from
	// Run's goroutine and must not be shared with another Run in
	// progress. Nil means a source private to this Run, seeded at random.
	Rand rand.Source

	// Logger receives a line per beat (debug) and per failure (warn). Nil
	// discards.
	Logger *slog.Logger
}

// settings returns a validated copy of c with its defaults filled in.
func (c Config) settings() (Config, error) {
	s := c
	if s.Sender == nil {
		return s, fmt.Errorf("%w: Sender is required", ErrInvalidConfig)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"Interval", s.Interval}, {"MinInterval", s.MinInterval}, {"MaxInterval", s.MaxInterval},
		{"BackoffMin", s.BackoffMin}, {"BackoffMax", s.BackoffMax}, {"Timeout", s.Timeout},
		{"StatusTimeout", s.StatusTimeout},
	} {
		if f.v < 0 {
			return s, fmt.Errorf("%w: %s %s is negative", ErrInvalidConfig, f.name, f.v)
		}
	}
	s.MinInterval = orDefault(s.MinInterval, DefaultMinInterval)
	s.MaxInterval = orDefault(s.MaxInterval, DefaultMaxInterval)
	if s.MinInterval > s.MaxInterval {
		return s, fmt.Errorf("%w: MinInterval %s above MaxInterval %s", ErrInvalidConfig, s.MinInterval, s.MaxInterval)
	}
	s.Interval = orDefault(s.Interval, DefaultInterval)
	if s.Interval < s.MinInterval || s.Interval > s.MaxInterval {
		return s, fmt.Errorf("%w: Interval %s outside [%s, %s]", ErrInvalidConfig, s.Interval, s.MinInterval, s.MaxInterval)
	}
	switch {
	case math.IsNaN(s.Jitter) || s.Jitter > MaxJitter:
		return s, fmt.Errorf("%w: Jitter %v above %v", ErrInvalidConfig, s.Jitter, MaxJitter)
	case s.Jitter < 0:
		s.Jitter = 0
	case s.Jitter == 0:
		s.Jitter = DefaultJitter
	}
	switch {
	case s.InitialDelay == 0:
		s.InitialDelay = DefaultInitialDelay
	case s.InitialDelay < 0:
		s.InitialDelay = 0
	}
	s.BackoffMin = orDefault(s.BackoffMin, DefaultBackoffMin)
	s.BackoffMax = orDefault(s.BackoffMax, DefaultBackoffMax)
	if s.BackoffMin > s.BackoffMax {
		return s, fmt.Errorf("%w: BackoffMin %s above BackoffMax %s", ErrInvalidConfig, s.BackoffMin, s.BackoffMax)
	}
	s.Timeout = orDefault(s.Timeout, DefaultTimeout)
	s.StatusTimeout = orDefault(s.StatusTimeout, min(DefaultStatusTimeout, s.Timeout))
	if s.Counter == nil {
		s.Counter = new(Counter)
	}
	if s.Rand == nil {
		s.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Run sends heartbeats until ctx is done, then returns ctx.Err(). It
// returns an error matching [ErrInvalidConfig] at once if cfg is not
// valid. Failures of single beats are logged and retried with backoff;
// they never end Run.
//
// The first beat goes out after a random delay of up to
// [Config.InitialDelay]. After each success Run waits the current interval,
// jittered; a response's IntervalSeconds and JitterSeconds, when positive,
// replace the interval and jitter from then on (clamped, see [Config]),
// and zero leaves them as they were. Its directives go to
// [Config.OnDirective].
//
// Run starts no goroutine: the Sender and the callbacks are called from
// the goroutine that called Run.
func Run(ctx context.Context, cfg Config) error {
	s, err := cfg.settings()
	if err != nil {
		return err
	}
	b := &beater{s: s, rng: rand.New(s.Rand), interval: s.Interval}
	wait := b.uniform(s.InitialDelay)
	for {
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = b.beat(ctx)
	}
}

// beater is the state of one Run.
type beater struct {
	s   Config // validated, defaults filled in
	rng *rand.Rand
	// interval and jitter are the current schedule; jitter 0 means
	// s.Jitter of the interval.
	interval time.Duration
	jitter   time.Duration
	// backoffs counts the failures in a row that grow the backoff (sheds
	// with a Retry-After do not).
	backoffs int
}

// beat sends one heartbeat and returns how long to wait before the next.
// When ctx is done the returned wait does not matter.
func (b *beater) beat(ctx context.Context) time.Duration {
	seq := uint64(b.s.Counter.Count()) + 1
	req := b.status(ctx, seq)
	if ctx.Err() != nil {
		return 0
	}
	// The send gets its whole Timeout, however long Status took.
	bctx, cancel := context.WithTimeout(ctx, b.s.Timeout)
	defer cancel()
	resp, err := b.s.Sender.Heartbeat(bctx, req)
	if ctx.Err() != nil {
		// Cancelled, not failed: record nothing.
		return 0
	}
	if err == nil && resp == nil {
		err = ErrNoResponse
	}
	if err != nil {
		return b.failed(seq, err)
	}
	b.s.Counter.RecordSuccess(time.Now())
	b.backoffs = 0
	b.direct(resp)
	wait := b.next()
	b.s.Logger.Debug("heartbeat: sent", "seq", seq, "interval", b.interval, "next", wait,
		"directives", len(resp.Directives))
	if b.s.OnResponse != nil {
		b.s.OnResponse(ctx, resp)
	}
	if b.s.OnDirective != nil {
		for _, d := range resp.Directives {
			b.s.OnDirective(ctx, d)
		}
	}
	return wait
}

// status builds the request for beat seq within StatusTimeout, falling
// back to a bare one.
func (b *beater) status(ctx context.Context, seq uint64) *transport.HeartbeatRequest {
	req := &transport.HeartbeatRequest{}
	if b.s.Status != nil {
		sctx, cancel := context.WithTimeout(ctx, b.s.StatusTimeout)
		defer cancel()
		r, err := b.s.Status(sctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				b.s.Logger.Warn("heartbeat: status failed; sending a bare beat", "seq", seq,
					"timeout", b.s.StatusTimeout, "err", err)
			}
		case r == nil:
		default:
			if verr := r.Validate(); verr != nil {
				b.s.Logger.Warn("heartbeat: status is invalid; sending a bare beat", "seq", seq, "err", verr)
			} else {
				req = r
			}
		}
	}
	req.Seq = seq
	return req
}

// failed records a failed beat and returns the wait before the next try.
func (b *beater) failed(seq uint64, err error) time.Duration {
	b.s.Counter.RecordFailure()
	var te *transport.Error
	if errors.As(err, &te) && te.RetryAfter > 0 {
		ra := min(te.RetryAfter, b.s.MaxInterval)
		wait := ra + b.uniform(time.Duration(b.s.Jitter*float64(ra)))
		b.s.Logger.Warn("heartbeat: server asked to retry later", "seq", seq, "retry_after", te.RetryAfter,
			"next", wait, "err", err)
		return wait
	}
	b.backoffs++
	ceiling := b.s.BackoffMin
	for i := 1; i < b.backoffs; i++ {
		if ceiling > b.s.BackoffMax/2 {
			ceiling = b.s.BackoffMax
			break
		}
		ceiling *= 2
	}
	wait := b.uniform(ceiling)
	b.s.Logger.Warn("heartbeat: failed", "seq", seq, "failures", b.s.Counter.Failures(), "next", wait, "err", err)
	return wait
}

// direct adopts the schedule a response directs, clamped.
func (b *beater) direct(resp *transport.HeartbeatResponse) {
	if resp.IntervalSeconds > 0 {
		d := seconds(resp.IntervalSeconds)
		c := min(max(d, b.s.MinInterval), b.s.MaxInterval)
		if c != d {
			b.s.Logger.Debug("heartbeat: server interval clamped", "directed", d, "used", c)
		}
		b.interval = c
	}
	if resp.JitterSeconds > 0 {
		b.jitter = seconds(resp.JitterSeconds)
	}
}

// seconds converts a server's count of seconds, saturating instead of
// overflowing.
func seconds(n int) time.Duration {
	if int64(n) > math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Second
}

// next returns the jittered wait after a success.
func (b *beater) next() time.Duration {
	i := b.interval
	j := b.jitter
	if j == 0 {
		j = time.Duration(b.s.Jitter * float64(i))
	}
	j = min(j, i/2)
	wait := i - j + b.uniform(2*j)
	return max(wait, b.s.MinInterval)
}

// uniform returns a duration drawn uniformly from [0, d), or 0 if d <= 0.
func (b *beater) uniform(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	// Float64 rather than Int64N: it never rejects and redraws, so even a
	// degenerate injected source (a constant) cannot make it loop.
	return min(time.Duration(b.rng.Float64()*float64(d)), d-1)
}

// sleep waits d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
