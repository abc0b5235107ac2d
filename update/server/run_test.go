package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/memstore"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// batchLog is a store that records the size of each heartbeat batch.
type batchLog struct {
	store.Store
	mu      sync.Mutex
	batches []int
}

func (s *batchLog) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	s.mu.Lock()
	s.batches = append(s.batches, len(beats))
	s.mu.Unlock()
	return s.Store.Heartbeats(ctx, beats)
}

// TestRun: while Run runs, concurrent heartbeats share store transactions,
// and its timer sweeps rollouts, so that a terminal that went silent is
// counted offline without any request; when ctx ends, Run returns and
// heartbeats are written one by one again.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys, err := sign.NewKeyDir(nil, time.Now().Add(-time.Hour), 30*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := keys.KeyRing()
		if err != nil {
			t.Fatal(err)
		}
		st := &batchLog{Store: memstore.New()}
		srv, err := server.New(server.Config{Keys: ring, Enrollment: enrollment, Store: st, HeartbeatInterval: time.Minute,
			RolloutEvery: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, keys: keys, ring: ring, srv: srv}
		e.publish(e.pack(keys, "1.1.0", content(10_000, 12), func(m *verify.Manifest) { m.From = []string{"~1.0"} }))
		ids := make([]string, 5)
		for i := range ids {
			ids[i] = e.register(fmt.Sprintf("SN%d", i), "P300")
		}
		ctx := context.Background()
		beatAll := func(ids []string) {
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Go(func() {
					if _, err := srv.Heartbeat(ctx, id, &transport.HeartbeatRequest{Seq: 1, State: "idle"}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		beatAll(ids)
		if _, err := srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r1", Release: fwRelease, Batches: []float64{100}}); err != nil {
			t.Fatal(err)
		}

		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- srv.Run(runCtx) }()
		synctest.Wait()
		st.mu.Lock()
		st.batches = nil
		st.mu.Unlock()
		// Four terminals keep beating for five minutes; one is silent.
		for range 10 {
			beatAll(ids[1:])
			time.Sleep(30 * time.Second)
		}
		st.mu.Lock()
		batched := slices.Max(st.batches) > 1
		st.mu.Unlock()
		if !batched {
			t.Errorf("heartbeat batches under Run: %v, want some of more than one beat", st.batches)
		}
		r, err := srv.Rollout(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Total.Offline != 1 || r.Total.Pending != 4 {
			t.Errorf("after five minutes: %+v, want one terminal offline", r.Total)
		}

		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		beatAll(ids[:1])
		if term := find(t, srv.Terminals(), ids[0]); !term.Online {
			t.Errorf("a heartbeat after Run returned was not recorded: %+v", term)
		}
	})
}

// giveUp is a store that, as it writes a heartbeat batch, cancels the
// context of the request that is waiting for it: the terminal gives up on
// a slow network while its beat is written.
type giveUp struct {
	store.Store
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (s *giveUp) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	s.mu.Unlock()
	return s.Store.Heartbeats(context.WithoutCancel(ctx), beats)
}

// A nudge taken by a heartbeat that could not be answered waits for the
// next heartbeat, batched or not (review M4).
func TestNudgeOutlivesAnUnansweredHeartbeat(t *testing.T) {
	for _, run := range []bool{false, true} {
		t.Run(fmt.Sprintf("Run %v", run), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				keys, err := sign.NewKeyDir(nil, time.Now().Add(-time.Hour), 24*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				ring, err := keys.KeyRing()
				if err != nil {
					t.Fatal(err)
				}
				st := &giveUp{Store: memstore.New()}
				srv, err := server.New(server.Config{Keys: ring, Enrollment: enrollment, Store: st})
				if err != nil {
					t.Fatal(err)
				}
				e := &env{t: t, keys: keys, ring: ring, srv: srv}
				id := e.register("SN1", "P300")
				if run {
					runCtx, stop := context.WithCancel(context.Background())
					done := make(chan error)
					go func() { done <- e.srv.Run(runCtx) }()
					defer func() { stop(); <-done }()
					synctest.Wait()
				}
				if err := e.srv.Nudge(id); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				st.mu.Lock()
				st.cancel = cancel
				st.mu.Unlock()
				if _, err := e.srv.Heartbeat(ctx, id, &transport.HeartbeatRequest{Seq: 1, State: "idle"}); !errors.Is(err, context.Canceled) {
					t.Errorf("unanswered heartbeat: %v, want context.Canceled", err)
				}
				resp, err := e.srv.Heartbeat(context.Background(), id, &transport.HeartbeatRequest{Seq: 2, State: "idle"})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(resp.Directives, []transport.Directive{transport.DirectiveCheck}) {
					t.Errorf("next heartbeat's directives: %v, want the nudge", resp.Directives)
				}
			})
		})
	}
}
