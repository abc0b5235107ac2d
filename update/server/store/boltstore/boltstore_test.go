package boltstore_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/boltstore"
	"github.com/upkeephq/upkeep/update/server/store/storetest"
)

func open(t *testing.T, dir string, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// fsync on every commit would make the suite slow, not surer: what
		// it checks is the same either way. TestDurableDefault keeps it.
		return open(t, t.TempDir(), boltstore.Options{NoSync: true})
	})
}

// TestDurableDefault writes with the default options, closes, and finds
// everything again after reopening.
func TestDurableDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx := t.Context()
	s, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	if err := s.CreateTerminal(ctx, store.Terminal{ID: "t-1", Serial: "SN1", TokenHash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeats(ctx, []store.Heartbeat{{DeviceID: "t-1", At: at, Status: store.Status{State: "idle"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, store.AuditEvent{At: at, Actor: "alice", Action: "terminal.register"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Terminal(ctx, "t-1"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Terminal after Close = %v, want ErrClosed", err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("data directory: %v, %v; want mode 0700", info, err)
	}

	s = open(t, dir, boltstore.Options{})
	tm, err := s.Terminal(ctx, "t-1")
	if err != nil || tm.Status.State != "idle" || !tm.LastSeen.Equal(at) {
		t.Errorf("after reopening: %+v, %v", tm, err)
	}
	if id, err := s.TokenOwner(ctx, []byte("h")); err != nil || id != "t-1" {
		t.Errorf("TokenOwner after reopening = %q, %v", id, err)
	}
	if evs, err := s.ListAudit(ctx, 0, 0); err != nil || len(evs) != 1 {
		t.Errorf("audit after reopening: %v, %v", evs, err)
	}
	// The sequence goes on where it was.
	e, err := s.AppendAudit(ctx, store.AuditEvent{At: at, Actor: "bob", Action: "x"})
	if err != nil || e.Seq != 2 {
		t.Errorf("AppendAudit after reopening: Seq %d, %v; want 2", e.Seq, err)
	}
}

// TestLocked: a second process (here, a second Open) cannot open a data
// directory in use.
func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, boltstore.Options{NoSync: true})
	if s, err := boltstore.Open(dir, boltstore.Options{Timeout: 50 * time.Millisecond}); err == nil {
		s.Close()
		t.Fatal("a second Open of a directory in use succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := boltstore.Open(t.TempDir(), boltstore.Options{Timeout: -1}); err == nil {
		t.Error("Open with a negative timeout succeeded")
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := boltstore.Open(notDir, boltstore.Options{}); err == nil {
		t.Error("Open of a file as the data directory succeeded")
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, boltstore.FileName), []byte("not a database, but long enough to be read as one......"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := boltstore.Open(garbage, boltstore.Options{Timeout: time.Second}); err == nil {
		s.Close()
		t.Error("Open of a garbage file succeeded")
	}
}

func TestNewerLayoutRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("version"), binary.BigEndian.AppendUint64(nil, 99))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := boltstore.Open(dir, boltstore.Options{}); err == nil {
		s.Close()
		t.Error("Open of a newer layout succeeded")
	}
}

// BenchmarkHeartbeats writes batches of heartbeats to a durable store: one
// fsync per batch.
func BenchmarkHeartbeats(b *testing.B) {
	for _, size := range []int{1, 64, 256} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			dir := b.TempDir()
			const terminals = 10000
			s, err := boltstore.Open(dir, boltstore.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			for i := range terminals {
				if err := s.CreateTerminal(b.Context(), store.Terminal{ID: fmt.Sprintf("t-%06d", i), Serial: fmt.Sprint(i)}); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			s, err = boltstore.Open(dir, boltstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
			batch := make([]store.Heartbeat, size)
			b.ResetTimer()
			for n := 0; b.Loop(); n++ {
				for i := range batch {
					batch[i] = store.Heartbeat{DeviceID: fmt.Sprintf("t-%06d", (n*size+i)%terminals), At: at.Add(time.Duration(n) * time.Second),
						Interval: 5 * time.Minute, Status: store.Status{Seq: uint64(n), State: "idle", Network: "4g", Battery: &store.Battery{Percent: 80}}}
				}
				if _, err := s.Heartbeats(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "beats/s")
		})
	}
}
