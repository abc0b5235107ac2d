package store_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/memstore"
)

// The server's life of a terminal, on any store: register, be nudged,
// heartbeat through a Batcher, report once.
func Example() {
	ctx := context.Background()
	var s store.Store = memstore.New() // or boltstore.Open, pgstore.Open
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

	err := s.CreateTerminal(ctx, store.Terminal{ID: "t-1", Serial: "SN1", Model: "P300", TokenHash: []byte("hash"), RegisteredAt: now})
	if err != nil {
		panic(err)
	}
	id, _ := s.TokenOwner(ctx, []byte("hash"))
	fmt.Println("token of", id)

	// An operator nudges it.
	s.UpdateTerminal(ctx, id, func(t *store.Terminal) error {
		t.Directives = append(t.Directives, "check")
		return nil
	})

	// Heartbeats from many requests share transactions.
	b, _ := store.NewBatcher(store.BatcherConfig{Writer: s})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- b.Run(runCtx) }()
	dirs, err := b.Add(ctx, store.Heartbeat{DeviceID: id, At: now, Interval: 5 * time.Minute, Status: store.Status{State: "idle"}})
	fmt.Println("directives", dirs, err)
	stop()
	<-done

	// A report is recorded once, with what it changes.
	r := store.Report{DeviceID: id, ID: "rep-1", Release: "pos-app@1.1.0", Outcome: "committed", At: now}
	setLast := func(t *store.Terminal) error {
		t.LastResult = &store.Result{Release: r.Release, Outcome: r.Outcome, At: r.At}
		return nil
	}
	_, err = s.AddReport(ctx, r, setLast)
	fmt.Println("report:", err)
	_, err = s.AddReport(ctx, r, setLast)
	fmt.Println("again, duplicate:", errors.Is(err, store.ErrExists))

	t, _ := s.Terminal(ctx, id)
	fmt.Println(t.Status.State, t.LastSeen.Format(time.TimeOnly), t.LastResult.Outcome, len(t.Directives))
	// Output:
	// token of t-1
	// directives [check] <nil>
	// report: <nil>
	// again, duplicate: true
	// idle 10:00:00 committed 0
}

// Rollouts change by compare and swap: a writer that read an old version
// loses, reads again and retries.
func ExampleRollouts_UpdateRollout() {
	ctx := context.Background()
	s := memstore.New()
	r, _ := s.CreateRollout(ctx, store.Rollout{ID: "pos-app-1.1", Definition: []byte(`{"stages":[1,10,100]}`)})

	mine, theirs := r, r
	theirs.Status = []byte(`{"stage":1}`)
	s.UpdateRollout(ctx, theirs)

	mine.Status = []byte(`{"halted":true}`)
	_, err := s.UpdateRollout(ctx, mine)
	fmt.Println(errors.Is(err, store.ErrConflict), err)

	fresh, _ := s.Rollout(ctx, r.ID)
	fresh.Status = []byte(`{"stage":1,"halted":true}`)
	fresh, err = s.UpdateRollout(ctx, fresh)
	fmt.Println(fresh.Version, string(fresh.Status), err)
	// Output:
	// true store: rollout "pos-app-1.1": version conflict (stored version 2)
	// 3 {"stage":1,"halted":true} <nil>
}
