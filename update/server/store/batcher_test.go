package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update/server/store"
)

// recorder is a HeartbeatWriter that records each batch and when it came,
// and fails when told to.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	times   []time.Time
	err     error // returned for the whole batch
	short   bool  // return one result too few
}

func (r *recorder) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	res := make([]store.HeartbeatResult, len(beats))
	for i, b := range beats {
		ids = append(ids, b.DeviceID)
		if b.DeviceID == "unknown" {
			res[i].Err = store.ErrNotFound
		} else {
			res[i].Directives = []string{"check:" + b.DeviceID}
		}
	}
	r.batches = append(r.batches, ids)
	r.times = append(r.times, time.Now())
	if r.err != nil {
		return nil, r.err
	}
	if r.short {
		res = res[1:]
	}
	return res, nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n []int
	for _, b := range r.batches {
		n = append(n, len(b))
	}
	return n
}

// start runs a Batcher over w until the test's bubble ends it.
func start(t *testing.T, w store.HeartbeatWriter, maxBatch int, maxDelay time.Duration) (*store.Batcher, context.CancelFunc, chan error) {
	t.Helper()
	b, err := store.NewBatcher(store.BatcherConfig{Writer: w, MaxBatch: maxBatch, MaxDelay: maxDelay})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	return b, cancel, done
}

func beat(id string) store.Heartbeat { return store.Heartbeat{DeviceID: id, At: time.Now()} }

func TestBatcherFullBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b, cancel, done := start(t, rec, 4, time.Hour)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				id := fmt.Sprint("t-", i)
				dirs, err := b.Add(t.Context(), beat(id))
				if err != nil || !slices.Equal(dirs, []string{"check:" + id}) {
					t.Errorf("Add(%s) = %q, %v", id, dirs, err)
				}
			})
		}
		wg.Wait()
		// Full batches go at once: no hour passed.
		if got := rec.sizes(); !slices.Equal(got, []int{4, 4}) {
			t.Errorf("batches of %v, want [4 4]", got)
		}
		if d := time.Since(rec.times[1]); d != 0 {
			t.Errorf("full batches waited %v", d)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestBatcherMaxDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b, cancel, _ := start(t, rec, 100, 50*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 10 * time.Millisecond)
				if _, err := b.Add(t.Context(), beat(fmt.Sprint("t-", i))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// The batch goes MaxDelay after its first beat, with all three.
		if got := rec.sizes(); !slices.Equal(got, []int{3}) {
			t.Errorf("batches of %v, want [3]", got)
		}
		if d := rec.times[0].Sub(t0); d != 50*time.Millisecond {
			t.Errorf("batch written after %v, want 50ms", d)
		}
		// A later beat starts a new batch with its own delay.
		t1 := time.Now()
		time.Sleep(time.Second)
		if _, err := b.Add(t.Context(), beat("late")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t1); d != time.Second+50*time.Millisecond {
			t.Errorf("a lone beat took %v, want 1.05s", d)
		}
	})
}

func TestBatcherErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		rec := &recorder{}
		b, cancel, _ := start(t, rec, 2, time.Millisecond)
		defer cancel()
		// One beat's own error fails it alone.
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := b.Add(t.Context(), beat("unknown"))
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Add(unknown) = %v, want ErrNotFound", err)
			}
		})
		wg.Go(func() {
			if _, err := b.Add(t.Context(), beat("known")); err != nil {
				t.Errorf("Add(known) = %v", err)
			}
		})
		wg.Wait()
		// A batch's error fails every beat in it.
		rec.mu.Lock()
		rec.err = boom
		rec.mu.Unlock()
		for range 2 {
			wg.Go(func() {
				if _, err := b.Add(t.Context(), beat("x")); !errors.Is(err, boom) {
					t.Errorf("Add = %v, want boom", err)
				}
			})
		}
		wg.Wait()
		// A writer that loses results fails the batch.
		rec.mu.Lock()
		rec.err, rec.short = nil, true
		rec.mu.Unlock()
		if _, err := b.Add(t.Context(), beat("x")); err == nil {
			t.Error("Add with a short result = nil, want an error")
		}
	})
}

func TestBatcherStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b, cancel, done := start(t, rec, 10, time.Hour)
		// A beat waiting in an unwritten batch fails with ErrClosed.
		got := make(chan error, 1)
		go func() {
			_, err := b.Add(t.Context(), beat("waiting"))
			got <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-got; !errors.Is(err, store.ErrClosed) {
			t.Errorf("Add during stop = %v, want ErrClosed", err)
		}
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		if n := rec.sizes(); len(n) != 0 {
			t.Errorf("batches %v written after stop", n)
		}
		// After Run: Add and Run say closed.
		if _, err := b.Add(t.Context(), beat("late")); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Add after Run = %v, want ErrClosed", err)
		}
		if err := b.Run(t.Context()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Run again = %v, want ErrClosed", err)
		}
	})
}

func TestBatcherAddContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b, err := store.NewBatcher(store.BatcherConfig{Writer: rec})
		if err != nil {
			t.Fatal(err)
		}
		// Before Run, Add waits, until its context ends.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := b.Add(ctx, beat("early")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Add before Run = %v, want DeadlineExceeded", err)
		}
		// A beat added before Run starts is written once it does.
		got := make(chan error, 1)
		go func() {
			_, err := b.Add(t.Context(), beat("t-1"))
			got <- err
		}()
		time.Sleep(time.Minute)
		runCtx, stop := context.WithCancel(t.Context())
		defer stop()
		go b.Run(runCtx)
		if err := <-got; err != nil {
			t.Errorf("Add waiting for Run = %v", err)
		}
	})
}

// gated is a HeartbeatWriter that, for each batch, signals that it has
// begun, then waits to be let go before it writes.
type gated struct {
	recorder
	begun, release chan struct{}
}

func (g *gated) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	g.begun <- struct{}{}
	<-g.release
	return g.recorder.Heartbeats(ctx, beats)
}

// A beat whose request ends while its batch is written still gets what
// it took, so that its caller can put the directives back instead of
// losing them (review M4).
func TestBatcherAnswersABeatWhoseContextEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gated{begun: make(chan struct{}), release: make(chan struct{})}
		b, _, _ := start(t, g, 1, time.Millisecond)
		ctx, cancel := context.WithCancel(t.Context())
		type result struct {
			dirs []string
			err  error
		}
		got := make(chan result, 1)
		go func() {
			dirs, err := b.Add(ctx, beat("t-1"))
			got <- result{dirs, err}
		}()
		<-g.begun
		cancel() // the terminal gives up while its batch is written
		synctest.Wait()
		close(g.release)
		r := <-got
		if r.err != nil || !slices.Equal(r.dirs, []string{"check:t-1"}) {
			t.Errorf("Add = %v, %v; want the directives the beat took", r.dirs, r.err)
		}
	})
}

func TestNewBatcherErrors(t *testing.T) {
	w := &recorder{}
	tests := []struct {
		name string
		cfg  store.BatcherConfig
	}{
		{"no writer", store.BatcherConfig{}},
		{"negative batch", store.BatcherConfig{Writer: w, MaxBatch: -1}},
		{"negative delay", store.BatcherConfig{Writer: w, MaxDelay: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := store.NewBatcher(tt.cfg); err == nil {
			t.Errorf("%s: NewBatcher = nil error", tt.name)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
		is   error
	}{
		{&store.Error{Kind: store.KindTerminal, Key: "t-1", Err: store.ErrNotFound}, `store: terminal "t-1": not found`, store.ErrNotFound},
		{&store.Error{Kind: store.KindRollout, Key: "r1", Err: store.ErrConflict, Version: 3}, `store: rollout "r1": version conflict (stored version 3)`, store.ErrConflict},
		{store.Errorf(store.KindReport, "t-1/r", store.ErrInvalid, "report ID is %s", "empty"), `store: report "t-1/r": invalid record: report ID is empty`, store.ErrInvalid},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.is) {
			t.Errorf("%v does not match %v", tt.err, tt.is)
		}
	}
}
