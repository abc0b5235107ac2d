package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/pgstore"
	"github.com/upkeephq/upkeep/update/server/store/storetest"
)

// EnvDSN names the environment variable with the test database's DSN.
const EnvDSN = "UPKEEP_TEST_POSTGRES"

func dsn(tb testing.TB) string {
	tb.Helper()
	d := os.Getenv(EnvDSN)
	if d == "" {
		tb.Skipf("PostgreSQL tests skipped: set %s to a database URL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", EnvDSN)
	}
	return d
}

// newSchema returns the name of a fresh schema, dropped when the test
// ends, so parallel test runs on one database never meet.
func newSchema(tb testing.TB) string {
	tb.Helper()
	d := dsn(tb)
	b := make([]byte, 8)
	rand.Read(b)
	name := "upkeep_test_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, d)
		if err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// open opens a store in schema; it is closed before the schema is dropped.
func open(tb testing.TB, schema string) *pgstore.Store {
	tb.Helper()
	s, err := pgstore.Open(context.Background(), dsn(tb), pgstore.Options{Schema: schema, MaxConns: 4})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dsn(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newSchema(t)) })
}

// raw connects to the test database with schema on the search_path, to
// look behind the store's back.
func raw(tb testing.TB, schema string) *pgx.Conn {
	tb.Helper()
	cfg, err := pgx.ParseConfig(dsn(tb))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// TestTwoReplicas opens two stores (two pools, as two server replicas
// would) on one schema at the same moment: each sees what the other
// writes, and a compare and swap through one makes the other's stale.
func TestTwoReplicas(t *testing.T) {
	schema := newSchema(t)
	var a, b *pgstore.Store
	var wg sync.WaitGroup
	wg.Go(func() { a = open(t, schema) })
	wg.Go(func() { b = open(t, schema) })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ctx := t.Context()
	var n int
	if err := raw(t, schema).QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != migrationCount(t) {
		t.Errorf("schema_migrations has %d rows, %v; want each of %d migrations once", n, err, migrationCount(t))
	}

	r, err := a.CreateRollout(ctx, store.Rollout{ID: "r1", Definition: []byte(`{"stages":[1,100]}`)})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Rollout(ctx, "r1") // replica b reads version 1
	if err != nil {
		t.Fatal(err)
	}
	r.Status = []byte(`{"stage":1}`)
	if r, err = a.UpdateRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	rb.Status = []byte(`{"halted":true}`)
	_, err = b.UpdateRollout(ctx, rb)
	var se *store.Error
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &se) || se.Version != 2 {
		t.Fatalf("stale swap through b = %v, want ErrConflict at stored version 2", err)
	}
	rb, err = b.Rollout(ctx, "r1")
	if err != nil || rb.Version != 2 || string(rb.Status) != `{"stage":1}` {
		t.Fatalf("b reads %+v, %v; want a's update at version 2", rb, err)
	}
	rb.Status = []byte(`{"stage":1,"halted":true}`)
	if _, err := b.UpdateRollout(ctx, rb); err != nil {
		t.Fatalf("fresh swap through b: %v", err)
	}
	if ra, err := a.Rollout(ctx, "r1"); err != nil || ra.Version != 3 {
		t.Errorf("a reads version %d, %v; want 3", ra.Version, err)
	}

	// A terminal registered through a, nudged through b, beats through a.
	if err := a.CreateTerminal(ctx, store.Terminal{ID: "t-1", Serial: "SN1", TokenHash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	if id, err := b.TokenOwner(ctx, []byte("h")); err != nil || id != "t-1" {
		t.Errorf("b: TokenOwner = %q, %v", id, err)
	}
	if _, err := b.UpdateTerminal(ctx, "t-1", func(tm *store.Terminal) error {
		tm.Directives = append(tm.Directives, "check")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Heartbeats(ctx, []store.Heartbeat{{DeviceID: "t-1", At: t0, Status: store.Status{State: "idle"}}})
	if err != nil || res[0].Err != nil || !slices.Equal(res[0].Directives, []string{"check"}) {
		t.Errorf("a: beat = %+v, %v; want b's nudge", res, err)
	}
	if tm, err := b.Terminal(ctx, "t-1"); err != nil || tm.Status.State != "idle" || len(tm.Directives) != 0 {
		t.Errorf("b reads %+v, %v; want a's beat", tm, err)
	}
}

// TestRolloutCountsStayExact writes device states through two replicas at
// once and checks the kept counters against counting the rows.
func TestRolloutCountsStayExact(t *testing.T) {
	schema := newSchema(t)
	a, b := open(t, schema), open(t, schema)
	ctx := t.Context()
	if _, err := a.CreateRollout(ctx, store.Rollout{ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	phases := []store.Phase{store.PhasePending, store.PhaseInProgress, store.PhaseSucceeded, store.PhaseFailed, store.PhaseOffline}
	var wg sync.WaitGroup
	for w, s := range []*pgstore.Store{a, b, a, b} {
		wg.Go(func() {
			for round := range 10 {
				var batch []store.RolloutDevice
				for i := range 30 {
					k := (w*7 + round*13 + i*5) % len(phases)
					batch = append(batch, store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%02d", (i*3+round+w)%40),
						Phase: phases[k], Reason: fmt.Sprint("reason-", k%2)})
				}
				if err := s.PutRolloutDevices(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := a.CountRolloutDevices(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := raw(t, schema).Query(ctx, "SELECT phase, reason, count(*) FROM rollout_devices WHERE rollout_id = 'r1' GROUP BY 1, 2 ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PhaseCount, error) {
		var c store.PhaseCount
		return c, row.Scan(&c.Phase, &c.Reason, &c.Count)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("counters %v, counted rows %v", got, want)
	}
}

func TestAuditAppendOnlyInTheDatabase(t *testing.T) {
	schema := newSchema(t)
	s := open(t, schema)
	ctx := t.Context()
	if _, err := s.AppendAudit(ctx, store.AuditEvent{At: t0, Actor: "alice", Action: "x"}); err != nil {
		t.Fatal(err)
	}
	conn := raw(t, schema)
	for _, q := range []string{"UPDATE audit SET actor = 'mallory'", "DELETE FROM audit", "TRUNCATE audit"} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s succeeded on the audit log", q)
		}
	}
	if evs, err := s.ListAudit(ctx, 0, 0); err != nil || len(evs) != 1 || evs[0].Actor != "alice" {
		t.Errorf("audit after tampering: %v, %v", evs, err)
	}
}

// migrationCount is how many migrations the package embeds.
func migrationCount(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestMigrations(t *testing.T) {
	schema := newSchema(t)
	s := open(t, schema)
	s.Close()
	// Reopening applies nothing again.
	open(t, schema)
	conn := raw(t, schema)
	ctx := t.Context()
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != migrationCount(t) {
		t.Errorf("schema_migrations has %d rows, %v; want %d", n, err, migrationCount(t))
	}
	// A schema migrated by a newer program is refused.
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')"); err != nil {
		t.Fatal(err)
	}
	if s, err := pgstore.Open(ctx, dsn(t), pgstore.Options{Schema: schema}); err == nil {
		s.Close()
		t.Error("Open of a schema from the future succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	for _, schema := range []string{"Upper", "semi;colon", "1digit", "a-b"} {
		if s, err := pgstore.Open(ctx, "postgres://127.0.0.1:1/x", pgstore.Options{Schema: schema}); err == nil {
			s.Close()
			t.Errorf("Open with schema %q succeeded", schema)
		}
	}
	if _, err := pgstore.Open(ctx, "postgres://127.0.0.1:1/x", pgstore.Options{MaxConns: -1}); err == nil {
		t.Error("Open with negative MaxConns succeeded")
	}
	if _, err := pgstore.Open(ctx, "not a dsn ::", pgstore.Options{}); err == nil {
		t.Error("Open of a malformed DSN succeeded")
	}
}

func TestClosed(t *testing.T) {
	s := open(t, newSchema(t))
	s.Close()
	if _, err := s.Terminal(t.Context(), "t-1"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Terminal after Close = %v, want ErrClosed", err)
	}
}

// BenchmarkHeartbeats writes batches of heartbeats: one transaction, two
// statements, per batch.
func BenchmarkHeartbeats(b *testing.B) {
	for _, size := range []int{1, 64, 256} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			s := open(b, newSchema(b))
			ctx := b.Context()
			const terminals = 2000
			for i := range terminals {
				if err := s.CreateTerminal(ctx, store.Terminal{ID: fmt.Sprintf("t-%06d", i), Serial: fmt.Sprint(i)}); err != nil {
					b.Fatal(err)
				}
			}
			batch := make([]store.Heartbeat, size)
			b.ResetTimer()
			for n := 0; b.Loop(); n++ {
				for i := range batch {
					batch[i] = store.Heartbeat{DeviceID: fmt.Sprintf("t-%06d", (n*size+i)%terminals), At: t0.Add(time.Duration(n) * time.Second),
						Interval: 5 * time.Minute, Status: store.Status{Seq: uint64(n), State: "idle", Network: "4g", Battery: &store.Battery{Percent: 80}}}
				}
				if _, err := s.Heartbeats(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "beats/s")
		})
	}
}
