package heartbeat

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

// step is one scripted answer of a fakeSender.
type step struct {
	resp  *transport.HeartbeatResponse
	err   error
	block bool // block until the call's ctx is done
	nilOK bool // return (nil, nil)
}

// sent is one call a fakeSender received.
type sent struct {
	at  time.Time
	req transport.HeartbeatRequest
}

// fakeSender answers from a script, then with def (a success when zero),
// and logs every request with its (bubble) time.
type fakeSender struct {
	mu     sync.Mutex
	script []step
	def    step
	log    []sent
}

func (f *fakeSender) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	f.mu.Lock()
	f.log = append(f.log, sent{at: time.Now(), req: *req})
	st := f.def
	if len(f.script) > 0 {
		st, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	switch {
	case st.block:
		<-ctx.Done()
		return nil, ctx.Err()
	case st.nilOK:
		return nil, nil
	case st.err != nil:
		return nil, st.err
	case st.resp != nil:
		r := *st.resp
		return &r, nil
	}
	return &transport.HeartbeatResponse{}, nil
}

func (f *fakeSender) sent() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.log...)
}

// gaps returns the times between consecutive calls.
func gaps(log []sent) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(log); i++ {
		out = append(out, log[i].at.Sub(log[i-1].at))
	}
	return out
}

// constSource always yields v: 0 makes every random draw its minimum,
// ^uint64(0) its maximum.
type constSource uint64

func (c constSource) Uint64() uint64 { return uint64(c) }

const (
	minRand = constSource(0)
	maxRand = constSource(^uint64(0))
)

// runFor runs Run in a bubble for d of fake time, cancels it and checks
// that it returns context.Canceled promptly. It returns the time Run
// started.
func runFor(t *testing.T, cfg Config, d time.Duration) time.Time {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	time.Sleep(d)
	cancel()
	synctest.Wait()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	default:
		t.Fatal("Run did not return promptly after cancel")
	}
	return start
}

func TestFirstBeatWithinInitialDelay(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		max   time.Duration // first beat strictly before, or at 0 when 0
	}{
		{"default", 0, DefaultInitialDelay},
		{"configured", 30 * time.Second, 30 * time.Second},
		{"negative means at once", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(20) {
				synctest.Test(t, func(t *testing.T) {
					f := &fakeSender{}
					start := runFor(t, Config{Sender: f, InitialDelay: tt.delay, Rand: rand.NewPCG(seed, seed)}, time.Minute)
					log := f.sent()
					if len(log) == 0 {
						t.Fatal("no beat within a minute")
					}
					first := log[0].at.Sub(start)
					if tt.max == 0 && first != 0 || tt.max > 0 && first >= tt.max {
						t.Fatalf("seed %d: first beat after %s, want < %s", seed, first, tt.max)
					}
				})
			}
		})
	}
}

func TestServerIntervalObeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		iv := &transport.HeartbeatResponse{IntervalSeconds: 60}
		f := &fakeSender{script: []step{{resp: iv}, {resp: iv}, {resp: &transport.HeartbeatResponse{}}}}
		runFor(t, Config{Sender: f, InitialDelay: -1, Jitter: -1, Interval: 5 * time.Minute}, 10*time.Minute+time.Second)
		got := gaps(f.sent())
		// The first response directs 60s; a later response without an
		// interval keeps it.
		want := make([]time.Duration, 10)
		for i := range want {
			want[i] = time.Minute
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("gaps %v, want %v", got, want)
		}
	})
}

func TestDefaultIntervalUntilDirected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{}
		runFor(t, Config{Sender: f, InitialDelay: -1, Jitter: -1}, 16*time.Minute)
		for i, g := range gaps(f.sent()) {
			if g != DefaultInterval {
				t.Fatalf("gap %d is %s, want %s", i, g, DefaultInterval)
			}
		}
		if n := len(f.sent()); n != 4 {
			t.Fatalf("%d beats in 16 minutes, want 4", n)
		}
	})
}

func TestIntervalClamped(t *testing.T) {
	const maxInt = int(^uint(0) >> 1)
	tests := []struct {
		name     string
		seconds  int
		min, max time.Duration
		want     time.Duration
	}{
		{"below min", 1, 0, 0, DefaultMinInterval},
		{"below configured min", 5, 30 * time.Second, 0, 30 * time.Second},
		{"above max", 1 << 30, 0, 0, DefaultMaxInterval},
		{"above configured max", 7200, 0, time.Hour, time.Hour},
		{"overflowing", maxInt, 0, time.Hour, time.Hour},
		{"within", 90, 0, 0, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSender{def: step{resp: &transport.HeartbeatResponse{IntervalSeconds: tt.seconds}}}
				cfg := Config{Sender: f, InitialDelay: -1, Jitter: -1, MinInterval: tt.min, MaxInterval: tt.max,
					Interval: tt.want}
				runFor(t, cfg, 3*tt.want+time.Second)
				got := gaps(f.sent())
				if len(got) != 3 {
					t.Fatalf("%d gaps, want 3: %v", len(got), got)
				}
				for _, g := range got {
					if g != tt.want {
						t.Fatalf("gaps %v, want all %s", got, tt.want)
					}
				}
			})
		})
	}
}

func TestJitterBounds(t *testing.T) {
	tests := []struct {
		name     string
		jitter   float64
		resp     transport.HeartbeatResponse
		min      time.Duration
		lo, hi   time.Duration
		interval time.Duration
	}{
		{"default fraction", 0, transport.HeartbeatResponse{IntervalSeconds: 100}, 0, 90 * time.Second, 110 * time.Second, 0},
		{"configured fraction", 0.2, transport.HeartbeatResponse{IntervalSeconds: 100}, 0, 80 * time.Second, 120 * time.Second, 0},
		{"server jitter overrides", 0.2, transport.HeartbeatResponse{IntervalSeconds: 100, JitterSeconds: 30}, 0, 70 * time.Second, 130 * time.Second, 0},
		{"server jitter capped at half", 0, transport.HeartbeatResponse{IntervalSeconds: 100, JitterSeconds: 1000}, 0, 50 * time.Second, 150 * time.Second, 0},
		{"server jitter when off", -1, transport.HeartbeatResponse{IntervalSeconds: 100, JitterSeconds: 10}, 0, 90 * time.Second, 110 * time.Second, 0},
		{"never below min", 0.5, transport.HeartbeatResponse{IntervalSeconds: 60}, time.Minute, time.Minute, 90 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSender{def: step{resp: &tt.resp}}
				cfg := Config{Sender: f, InitialDelay: -1, Jitter: tt.jitter, MinInterval: tt.min, Interval: tt.interval}
				runFor(t, cfg, 100*tt.hi)
				got := gaps(f.sent())
				if len(got) < 90 {
					t.Fatalf("only %d gaps", len(got))
				}
				distinct := map[time.Duration]bool{}
				for _, g := range got {
					if g < tt.lo || g > tt.hi {
						t.Fatalf("gap %s outside [%s, %s]", g, tt.lo, tt.hi)
					}
					distinct[g] = true
				}
				if len(distinct) < 10 {
					t.Fatalf("only %d distinct waits in %d: not jittered", len(distinct), len(got))
				}
			})
		})
	}
}

func TestNoJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{def: step{resp: &transport.HeartbeatResponse{IntervalSeconds: 30}}}
		runFor(t, Config{Sender: f, InitialDelay: -1, Jitter: -1}, 10*time.Minute+time.Second)
		for _, g := range gaps(f.sent()) {
			if g != 30*time.Second {
				t.Fatalf("gap %s with jitter off, want 30s", g)
			}
		}
	})
}

var errDown = errors.New("network down")

func TestBackoffGrowsToCap(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
		want     []time.Duration // ceilings, which maxRand reaches (less 1ns)
	}{
		{"defaults", 0, 0, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
			80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
		{"configured", time.Second, 6 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second,
			6 * time.Second, 6 * time.Second}},
		{"huge cap", time.Hour, 1<<63 - 1, []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSender{def: step{err: errDown}}
				var total time.Duration
				for _, w := range tt.want {
					total += w
				}
				c := new(Counter)
				runFor(t, Config{Sender: f, InitialDelay: -1, BackoffMin: tt.min, BackoffMax: tt.max, Rand: maxRand, Counter: c}, total)
				got := gaps(f.sent())
				if len(got) != len(tt.want) {
					t.Fatalf("%d retries, want %d: %v", len(got), len(tt.want), got)
				}
				for i, g := range got {
					if g != tt.want[i]-1 {
						t.Errorf("retry %d after %s, want %s", i+1, g, tt.want[i]-1)
					}
				}
				if c.Count() != 0 || c.Failures() != len(tt.want)+1 {
					t.Errorf("count %d failures %d, want 0 and %d", c.Count(), c.Failures(), len(tt.want)+1)
				}
			})
		})
	}
}

func TestBackoffFullJitterAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Four failures, a success, then failures again: the backoff
		// starts over after the success.
		script := []step{{err: errDown}, {err: errDown}, {err: errDown}, {err: errDown},
			{resp: &transport.HeartbeatResponse{IntervalSeconds: 60}}, {err: errDown}}
		f := &fakeSender{script: script, def: step{err: errDown}}
		runFor(t, Config{Sender: f, InitialDelay: -1, Jitter: -1, Rand: rand.NewPCG(7, 7)}, 30*time.Minute)
		got := gaps(f.sent())
		ceilings := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
			time.Minute, 5 * time.Second, 10 * time.Second}
		for i, c := range ceilings {
			if i == 4 {
				if got[i] != c {
					t.Fatalf("wait after success %s, want %s", got[i], c)
				}
				continue
			}
			if got[i] < 0 || got[i] >= c {
				t.Fatalf("wait %d is %s, want in [0, %s)", i, got[i], c)
			}
		}
	})
}

func TestRetryAfterObeyed(t *testing.T) {
	shed := func(d time.Duration) step {
		return step{err: &transport.Error{Code: transport.CodeRateLimited, RetryAfter: d}}
	}
	tests := []struct {
		name   string
		script []step
		rnd    rand.Source
		jitter float64
		want   []time.Duration
	}{
		{"exact without jitter", []step{shed(2 * time.Minute)}, maxRand, -1, []time.Duration{2 * time.Minute}},
		{"never early", []step{shed(2 * time.Minute)}, minRand, 0, []time.Duration{2 * time.Minute}},
		{"jittered upwards", []step{shed(100 * time.Second)}, maxRand, 0.1, []time.Duration{110*time.Second - 1}},
		{"capped at MaxInterval", []step{shed(1000 * time.Hour)}, minRand, 0, []time.Duration{DefaultMaxInterval}},
		{"does not grow the backoff", []step{{err: errDown}, shed(time.Minute), {err: errDown}}, maxRand, -1,
			[]time.Duration{5*time.Second - 1, time.Minute, 10*time.Second - 1}},
		{"wrapped", []step{{err: errors.Join(errDown, &transport.Error{Code: transport.CodeUnavailable, RetryAfter: 30 * time.Second})}},
			minRand, 0, []time.Duration{30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var total time.Duration
				for _, w := range tt.want {
					total += w
				}
				f := &fakeSender{script: tt.script, def: step{resp: &transport.HeartbeatResponse{IntervalSeconds: 1 << 20}}}
				runFor(t, Config{Sender: f, InitialDelay: -1, Jitter: tt.jitter, Rand: tt.rnd}, total+time.Second)
				got := gaps(f.sent())
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("gaps %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// countingSender records the Counter's state as each beat goes out.
type countingSender struct {
	*fakeSender
	c      *Counter
	states [][2]int // (count, failures) before each call
}

func (s *countingSender) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	s.states = append(s.states, [2]int{s.c.Count(), s.c.Failures()})
	return s.fakeSender.Heartbeat(ctx, req)
}

func TestCounterCountsOnlySuccesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{
			script: []step{{}, {err: errDown}, {err: errors.New("500")}, {}, {nilOK: true}, {err: errDown}},
			def:    step{block: true},
		}
		c := new(Counter)
		cs := &countingSender{fakeSender: f, c: c}
		runFor(t, Config{Sender: cs, Counter: c, InitialDelay: -1, Jitter: -1, Timeout: 2 * time.Hour}, time.Hour)
		want := [][2]int{{0, 0}, {1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}}
		if !reflect.DeepEqual(cs.states, want) {
			t.Fatalf("(count, failures) before each beat %v, want %v", cs.states, want)
		}
		log := f.sent()
		if !c.Last().Equal(log[3].at) {
			t.Fatalf("Last() = %v, want the time of the last success %v", c.Last(), log[3].at)
		}
	})
}

func TestSeq(t *testing.T) {
	tests := []struct {
		name   string
		before int // successes already recorded on the Counter
		script []step
		d      time.Duration
		want   []uint64
	}{
		{"counts from one", 0, nil, 2*DefaultInterval + time.Second, []uint64{1, 2, 3}},
		{"a retry keeps its number", 0, []step{{}, {err: errDown}, {err: errDown}, {}}, 2*DefaultInterval + time.Second,
			[]uint64{1, 2, 2, 2, 3}},
		{"continues the counter", 5, nil, DefaultInterval + time.Second, []uint64{6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := new(Counter)
				for range tt.before {
					c.RecordSuccess(time.Now())
				}
				f := &fakeSender{script: tt.script}
				runFor(t, Config{Sender: f, Counter: c, InitialDelay: -1, Jitter: -1, Rand: minRand,
					Status: func(context.Context) (*transport.HeartbeatRequest, error) {
						return &transport.HeartbeatRequest{Seq: 99, State: "idle"}, nil
					}}, tt.d)
				var got []uint64
				for _, s := range f.sent() {
					got = append(got, s.req.Seq)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("seqs %v, want %v", got, tt.want)
				}
			})
		})
	}
}

func TestDirectivesDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resp := &transport.HeartbeatResponse{IntervalSeconds: 60,
			Directives: []transport.Directive{transport.DirectiveCheck, transport.DirectiveSignIn}}
		f := &fakeSender{script: []step{{resp: resp}}}
		var got []string
		cfg := Config{Sender: f, InitialDelay: -1,
			OnResponse: func(ctx context.Context, r *transport.HeartbeatResponse) {
				got = append(got, "response:"+string(rune('0'+len(r.Directives))))
			},
			OnDirective: func(ctx context.Context, d transport.Directive) { got = append(got, string(d)) },
		}
		runFor(t, cfg, time.Second)
		want := []string{"response:2", "check", "sign_in"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("callbacks %v, want %v", got, want)
		}
	})
}

func TestStatus(t *testing.T) {
	full := &transport.HeartbeatRequest{State: "idle", Network: "wifi", Battery: &transport.Battery{Percent: 80}}
	tests := []struct {
		name   string
		status func(context.Context) (*transport.HeartbeatRequest, error)
		want   transport.HeartbeatRequest
	}{
		{"nil func sends empty", nil, transport.HeartbeatRequest{Seq: 1}},
		{"carried", func(context.Context) (*transport.HeartbeatRequest, error) {
			r := *full
			return &r, nil
		}, transport.HeartbeatRequest{Seq: 1, State: "idle", Network: "wifi", Battery: &transport.Battery{Percent: 80}}},
		{"error sends bare beat", func(context.Context) (*transport.HeartbeatRequest, error) {
			return full, errors.New("battery driver hung")
		}, transport.HeartbeatRequest{Seq: 1}},
		{"nil request sends bare beat", func(context.Context) (*transport.HeartbeatRequest, error) {
			return nil, nil
		}, transport.HeartbeatRequest{Seq: 1}},
		{"invalid request sends bare beat", func(context.Context) (*transport.HeartbeatRequest, error) {
			return &transport.HeartbeatRequest{State: "idle", Battery: &transport.Battery{Percent: 150}}, nil
		}, transport.HeartbeatRequest{Seq: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSender{}
				c := new(Counter)
				runFor(t, Config{Sender: f, Status: tt.status, Counter: c, InitialDelay: -1}, time.Second)
				log := f.sent()
				if len(log) != 1 {
					t.Fatalf("%d beats, want 1", len(log))
				}
				if !reflect.DeepEqual(log[0].req, tt.want) {
					t.Fatalf("sent %+v, want %+v", log[0].req, tt.want)
				}
				if c.Count() != 1 {
					t.Fatalf("count %d, want 1: a status problem must not fail the beat", c.Count())
				}
			})
		})
	}
}

func TestTimeoutFailsTheBeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{script: []step{{block: true}}}
		c := new(Counter)
		runFor(t, Config{Sender: f, Counter: c, InitialDelay: -1, Timeout: 30 * time.Second, Rand: maxRand}, 35*time.Second+time.Second)
		log := f.sent()
		if len(log) != 2 || log[1].at.Sub(log[0].at) != 35*time.Second-1 {
			t.Fatalf("beats at %v: want a retry 30s timeout + 5s backoff after the first", log)
		}
		if c.Count() != 1 {
			t.Fatalf("count %d, want 1", c.Count())
		}
	})
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name   string
		script []step
		at     time.Duration
	}{
		{"while waiting for the first beat", nil, time.Second},
		{"while waiting between beats", nil, time.Minute},
		{"while backing off", []step{{err: errDown}}, 12 * time.Second},
		{"during a call", []step{{}, {block: true}}, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSender{script: tt.script}
				c := new(Counter)
				// runFor fails unless Run returns at once; synctest.Test
				// fails if any goroutine Run started is left behind.
				runFor(t, Config{Sender: f, Counter: c, InitialDelay: 10 * time.Second, Jitter: -1, Rand: maxRand}, tt.at)
				failures := 0
				for _, s := range tt.script {
					if s.err != nil {
						failures++
					}
				}
				if c.Failures() != failures {
					t.Fatalf("failures %d, want %d: a cancelled call is not a failure", c.Failures(), failures)
				}
			})
		})
	}
}

func TestCancelledBeforeRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f := &fakeSender{}
	if err := Run(ctx, Config{Sender: f, InitialDelay: -1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if len(f.sent()) != 0 {
		t.Fatal("a beat was sent on a cancelled context")
	}
}

func TestConfigErrors(t *testing.T) {
	f := &fakeSender{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no sender", Config{}},
		{"negative interval", Config{Sender: f, Interval: -time.Second}},
		{"interval below min", Config{Sender: f, Interval: time.Second}},
		{"interval above max", Config{Sender: f, Interval: 48 * time.Hour}},
		{"min above max", Config{Sender: f, MinInterval: time.Hour, MaxInterval: time.Minute, Interval: time.Hour}},
		{"jitter too large", Config{Sender: f, Jitter: 0.8}},
		{"backoff min above max", Config{Sender: f, BackoffMin: time.Hour}},
		{"negative timeout", Config{Sender: f, Timeout: -1}},
		{"negative status timeout", Config{Sender: f, StatusTimeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(t.Context(), tt.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Run = %v, want ErrInvalidConfig", err)
			}
			if len(f.sent()) != 0 {
				t.Fatal("a beat was sent with an invalid config")
			}
		})
	}
}

func TestCounterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := new(Counter)
		if err := c.Wait(t.Context(), 0); err != nil {
			t.Fatalf("Wait(0) = %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait(t.Context(), 2) }()
		c.RecordSuccess(time.Now())
		c.RecordFailure()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Wait(2) returned %v after one success", err)
		default:
		}
		c.RecordSuccess(time.Now())
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Wait(2) = %v", err)
			}
		default:
			t.Fatal("Wait(2) still blocked after two successes")
		}

		// Reached counts win over a done context.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.Wait(ctx, 2); err != nil {
			t.Fatalf("Wait(2) with count 2 and a cancelled ctx = %v", err)
		}
		if err := c.Wait(ctx, 3); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait(3) cancelled = %v", err)
		}
		tctx, tcancel := context.WithTimeout(t.Context(), time.Minute)
		defer tcancel()
		if err := c.Wait(tctx, 3); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait(3) timed out = %v", err)
		}
	})
}

func TestCounterWaitWithRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{script: []step{{err: errDown}}, def: step{resp: &transport.HeartbeatResponse{IntervalSeconds: 60}}}
		c := new(Counter)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, Config{Sender: f, Counter: c, Jitter: -1}) }()
		start := time.Now()
		if err := c.Wait(ctx, 2); err != nil {
			t.Fatal(err)
		}
		log := f.sent()
		if len(log) != 3 || !c.Last().Equal(log[2].at) || time.Since(start) != log[2].at.Sub(start) {
			t.Fatalf("Wait(2) returned after %d beats at %s", len(log), time.Since(start))
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})
}

func TestConcurrentCounter(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.RecordSuccess(time.Now())
				_ = c.Count()
				_ = c.Last()
			}
		})
	}
	wg.Go(func() { _ = c.Wait(context.Background(), 800) })
	wg.Wait()
	if c.Count() != 800 {
		t.Fatalf("count %d, want 800", c.Count())
	}
}

// slowSender succeeds after took, unless its ctx is done first; it records
// when each call came and what it carried.
type slowSender struct {
	took time.Duration
	mu   sync.Mutex
	log  []sent
}

func (s *slowSender) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	s.mu.Lock()
	s.log = append(s.log, sent{at: time.Now(), req: *req})
	s.mu.Unlock()
	t := time.NewTimer(s.took)
	defer t.Stop()
	select {
	case <-t.C:
		return &transport.HeartbeatResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *slowSender) sent() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sent(nil), s.log...)
}

// TestHangingStatusStillBeats is the regression test for a status builder
// that hangs: it used to get the beat's whole Timeout, so the send that
// followed failed at once, no beat ever succeeded and the update gate (two
// heartbeats since boot) never opened. Status now has a short timeout of
// its own and the send a fresh Timeout.
func TestHangingStatusStillBeats(t *testing.T) {
	tests := []struct {
		name          string
		timeout       time.Duration
		statusTimeout time.Duration
		took          time.Duration // by each send: more than Timeout less the status's wait
		wantStatus    time.Duration // the status's budget
	}{
		{"defaults", 0, 0, DefaultTimeout - time.Second, DefaultStatusTimeout},
		{"configured", 10 * time.Second, 2 * time.Second, 9 * time.Second, 2 * time.Second},
		{"a short Timeout caps the default", 3 * time.Second, 0, 2 * time.Second, 3 * time.Second},
		{"longer than Timeout", 3 * time.Second, 20 * time.Second, 2 * time.Second, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var budgets []time.Duration
				hang := func(ctx context.Context) (*transport.HeartbeatRequest, error) {
					dl, ok := ctx.Deadline()
					if !ok {
						t.Error("Status got a ctx without a deadline")
					}
					budgets = append(budgets, time.Until(dl))
					<-ctx.Done()
					return nil, ctx.Err()
				}
				f := &slowSender{took: tt.took}
				c := new(Counter)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				start := time.Now()
				go func() {
					done <- Run(ctx, Config{Sender: f, Status: hang, Counter: c, InitialDelay: -1, Jitter: -1,
						Timeout: tt.timeout, StatusTimeout: tt.statusTimeout})
				}()
				wctx, wcancel := context.WithTimeout(ctx, time.Hour)
				defer wcancel()
				if err := c.Wait(wctx, 2); err != nil {
					t.Fatalf("Wait(2) = %v: count %d, failures %d; a hanging Status must not stop beats",
						err, c.Count(), c.Failures())
				}
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("Run = %v", err)
				}
				log := f.sent()
				if first := log[0].at.Sub(start); first != tt.wantStatus {
					t.Errorf("first beat sent %s after start, want after the status's %s", first, tt.wantStatus)
				}
				if want := (transport.HeartbeatRequest{Seq: 1}); !reflect.DeepEqual(log[0].req, want) {
					t.Errorf("sent %+v, want a bare beat %+v", log[0].req, want)
				}
				for i, b := range budgets {
					if b != tt.wantStatus {
						t.Errorf("Status call %d had %s, want %s", i, b, tt.wantStatus)
					}
				}
				if c.Failures() != 0 {
					t.Errorf("%d failures, want 0", c.Failures())
				}
			})
		})
	}
}
