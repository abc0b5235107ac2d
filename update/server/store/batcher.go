package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Batcher defaults.
const (
	DefaultMaxBatch = 256
	DefaultMaxDelay = 10 * time.Millisecond
)

// BatcherConfig configures a [Batcher].
type BatcherConfig struct {
	// Writer writes the batches, usually the [Store]; required.
	Writer HeartbeatWriter
	// MaxBatch is how many beats make a full batch, written at once. Zero
	// means [DefaultMaxBatch].
	MaxBatch int
	// MaxDelay is how long the first beat of a batch waits for others
	// before the batch is written anyway: the most a beat is delayed when
	// the fleet is quiet. Zero means [DefaultMaxDelay].
	MaxDelay time.Duration
	// Logger receives a line for each batch that fails; nil discards.
	Logger *slog.Logger
}

// Batcher gathers heartbeats from many goroutines (one per request) into
// batches for [HeartbeatWriter.Heartbeats]: a batch is written when it has
// MaxBatch beats or when its first beat has waited MaxDelay, whichever
// comes first.
//
// [Batcher.Add] blocks until its beat is written, so a terminal is told
// the truth: its beat was recorded (with the directives it took), or it
// was not. The price is up to MaxDelay of latency on a quiet server; under
// load batches fill before that. Batches are written one at a time, by
// [Batcher.Run].
//
// The caller owns the goroutine that calls Run. A Batcher is safe for
// concurrent use.
type Batcher struct {
	cfg     BatcherConfig
	log     *slog.Logger
	in      chan *pendingBeat
	done    chan struct{}
	running atomic.Bool
}

type pendingBeat struct {
	beat  Heartbeat
	reply chan HeartbeatResult // buffered: Run never blocks on it
}

// NewBatcher returns a Batcher; it writes nothing until Run is called.
func NewBatcher(cfg BatcherConfig) (*Batcher, error) {
	switch {
	case cfg.Writer == nil:
		return nil, errors.New("store: BatcherConfig.Writer is required")
	case cfg.MaxBatch < 0:
		return nil, fmt.Errorf("store: BatcherConfig.MaxBatch %d is negative", cfg.MaxBatch)
	case cfg.MaxDelay < 0:
		return nil, fmt.Errorf("store: BatcherConfig.MaxDelay %v is negative", cfg.MaxDelay)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Batcher{cfg: cfg, log: log, in: make(chan *pendingBeat), done: make(chan struct{})}, nil
}

// Add hands a beat to the running batcher and waits until its batch is
// written. It returns the directives the beat took, or the beat's own
// error (ErrNotFound for an unknown terminal), or the batch's. Before Run
// starts, Add waits for it; once Run has returned, Add returns ErrClosed.
//
// ctx bounds the wait to hand the beat over: if it ends first, Add
// returns ctx.Err() and nothing was written. Once handed over, the beat
// is written (or failed) with its batch whatever ctx does, so Add waits
// for that, at most one batch's write, and returns what the beat took:
// directives taken by a beat whose request has ended are the caller's to
// put back (the terminal will not see them), not lost.
func (b *Batcher) Add(ctx context.Context, beat Heartbeat) ([]string, error) {
	p := &pendingBeat{beat: beat, reply: make(chan HeartbeatResult, 1)}
	select {
	case b.in <- p:
	case <-b.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := <-p.reply // Run answers every beat it takes, even as it stops
	return r.Directives, r.Err
}

// Run gathers and writes batches until ctx ends, then fails the beats of
// the batch it was gathering with ErrClosed and returns ctx.Err(). Stop
// what calls Add (e.g. shut the HTTP server down) before ending ctx, and
// nothing is lost. A Batcher runs once: Run again returns ErrClosed.
func (b *Batcher) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer close(b.done)
	batch := make([]*pendingBeat, 0, b.cfg.MaxBatch)
	timer := time.NewTimer(b.cfg.MaxDelay)
	timer.Stop()
	var due <-chan time.Time // nil while the batch is empty
	for {
		select {
		case p := <-b.in:
			batch = append(batch, p)
			if len(batch) == 1 {
				timer.Reset(b.cfg.MaxDelay)
				due = timer.C
			}
			if len(batch) < b.cfg.MaxBatch {
				continue
			}
			timer.Stop()
		case <-due:
		case <-ctx.Done():
			for _, p := range batch {
				p.reply <- HeartbeatResult{Err: ErrClosed}
			}
			return ctx.Err()
		}
		b.write(ctx, batch)
		clear(batch)
		batch, due = batch[:0], nil
	}
}

// write writes a batch and answers each of its beats.
func (b *Batcher) write(ctx context.Context, batch []*pendingBeat) {
	beats := make([]Heartbeat, len(batch))
	for i, p := range batch {
		beats[i] = p.beat
	}
	res, err := b.cfg.Writer.Heartbeats(ctx, beats)
	if err == nil && len(res) != len(beats) {
		err = fmt.Errorf("store: heartbeat writer returned %d results for %d beats", len(res), len(beats))
	}
	if err != nil {
		b.log.Warn("store: heartbeat batch failed", "beats", len(beats), "err", err)
		for _, p := range batch {
			p.reply <- HeartbeatResult{Err: err}
		}
		return
	}
	for i, p := range batch {
		p.reply <- res[i]
	}
}
