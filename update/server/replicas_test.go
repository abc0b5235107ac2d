package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update/rollout"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/boltstore"
	"github.com/upkeephq/upkeep/update/server/store/memstore"
	"github.com/upkeephq/upkeep/update/server/store/pgstore"
	"github.com/upkeephq/upkeep/verify"
)

// backend opens the store two replicas share: for an embedded store one
// Store in one process; for PostgreSQL a connection pool each, to one
// schema, as two processes would have.
type backend struct {
	name string
	open func(t *testing.T) [2]store.Store
}

var backends = []backend{
	{"memstore", func(t *testing.T) [2]store.Store {
		s := memstore.New()
		return [2]store.Store{s, s}
	}},
	{"boltstore", func(t *testing.T) [2]store.Store {
		s, err := boltstore.Open(t.TempDir(), boltstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return [2]store.Store{s, s}
	}},
	{"pgstore", func(t *testing.T) [2]store.Store {
		dsn := os.Getenv("UPKEEP_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL replicas skipped: set UPKEEP_TEST_POSTGRES to a database URL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
		}
		schema := newSchema(t, dsn)
		var out [2]store.Store
		for i := range out {
			s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema, MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			out[i] = s
		}
		return out
	}},
}

// newSchema names a fresh PostgreSQL schema, dropped when the test ends.
func newSchema(t *testing.T, dsn string) string {
	b := make([]byte, 8)
	rand.Read(b)
	name := "upkeep_server_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// forEachBackend runs test with two replicas on each backend.
func forEachBackend(t *testing.T, test func(t *testing.T, a, b *env, clk *clock)) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			a, b, clk := replicas(t, be.open(t))
			test(t, a, b, clk)
		})
	}
}

// replicas starts two servers, each behind its own loopback HTTP server,
// on one store and one clock, trusting the same keys, with firmware 1.1.0
// published through the first.
func replicas(t *testing.T, st [2]store.Store) (a, b *env, clk *clock) {
	t.Helper()
	clk = newClock()
	a = newEnv(t, withOperators, func(c *server.Config) { c.Store, c.Now = st[0], clk.Now })
	b = newEnv(t, withOperators, func(c *server.Config) { c.Store, c.Now, c.Keys = st[1], clk.Now, a.ring })
	a.publish(a.pack(a.keys, "1.1.0", content(10_000, 11), func(m *verify.Manifest) { m.From = []string{"~1.0"} }))
	return a, b, clk
}

// terminalOn is one terminal with a client for each replica.
type terminalOn struct {
	id   string
	via  [2]*httptransport.Client
	reps int
}

// enroll registers a terminal through replica i of envs.
func enroll(t *testing.T, envs [2]*env, serial string, i int) *terminalOn {
	t.Helper()
	c, id := envs[i].client(serial, "P300")
	other, err := httptransport.New(httptransport.Config{BaseURL: envs[1-i].http.URL, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	other.SetToken(c.Token())
	term := &terminalOn{id: id}
	term.via[i], term.via[1-i] = c, other
	return term
}

func (term *terminalOn) check(t *testing.T, i int) bool {
	t.Helper()
	resp, err := term.via[i].Check(context.Background(), &transport.CheckRequest{Model: "P300",
		Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
	if err != nil {
		t.Fatalf("check %s via replica %d: %v", term.id, i, err)
	}
	return len(resp.Offers) == 1
}

func (term *terminalOn) report(t *testing.T, i int, outcome transport.Outcome, reason transport.Reason) {
	t.Helper()
	term.reps++
	_, err := term.via[i].Report(context.Background(), &transport.ReportRequest{ID: fmt.Sprintf("%s-%d", term.id, term.reps),
		Release: fwRelease, To: "1.1.0", Phase: "verifying", Outcome: outcome, Reason: reason, At: time.Now()})
	if err != nil {
		t.Fatalf("report %s via replica %d: %v", term.id, i, err)
	}
}

func rolloutVia(t *testing.T, e *env, id string) server.RolloutStatus {
	t.Helper()
	status, body := e.call("GET", "/v1/operator/rollouts/"+id, viewerToken, "")
	if status != http.StatusOK {
		t.Fatalf("rollout %s: %d %s", id, status, body)
	}
	var st server.RolloutStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReplicasShareOneRollout runs two server replicas on one store: a
// terminal sees one consistent rollout through either, a report through
// one moves the rollout the other serves, the halt is decided and audited
// once, and a nudge given to one reaches a heartbeat served by the other.
func TestReplicasShareOneRollout(t *testing.T) { forEachBackend(t, testReplicasShareOneRollout) }

func testReplicasShareOneRollout(t *testing.T, a, b *env, _ *clock) {
	envs := [2]*env{a, b}
	var fleet []*terminalOn
	for i := range 12 {
		fleet = append(fleet, enroll(t, envs, fmt.Sprintf("SN%02d", i), i%2))
	}
	pilots := []string{fleet[0].id, fleet[1].id}
	spec := server.RolloutSpec{ID: "fw-1.1", Release: fwRelease, Pilot: pilots, Batches: []float64{100},
		MinFinished: 2, FailureRate: 10}
	body, _ := json.Marshal(spec)
	if status, resp := b.call("POST", "/v1/operator/rollouts", adminToken, string(body)); status != http.StatusOK {
		t.Fatalf("create through replica b: %d %s", status, resp)
	}

	// Stage 0: the same answer through either replica.
	for _, term := range fleet {
		pilot := term.id == pilots[0] || term.id == pilots[1]
		for i := range 2 {
			if got := term.check(t, i); got != pilot {
				t.Errorf("stage 0: %s via replica %d offered %v, want %v", term.id, i, got, pilot)
			}
		}
	}

	// The pilots commit, one through each replica: both see stage 1 open.
	fleet[0].report(t, 0, transport.OutcomeCommitted, transport.ReasonOK)
	fleet[1].report(t, 1, transport.OutcomeCommitted, transport.ReasonOK)
	sa, sb := rolloutVia(t, a, spec.ID), rolloutVia(t, b, spec.ID)
	if sa.State != rollout.StateRunning || sa.Stage != 1 || sa.Version != sb.Version || sb.Stage != 1 ||
		sa.Total.Installed != 2 || sb.Total.Installed != 2 {
		t.Fatalf("after the pilots: a %s stage %d v%d, b %s stage %d v%d", sa.State, sa.Stage, sa.Version, sb.State, sb.Stage, sb.Version)
	}
	for _, term := range fleet[2:5] {
		if !term.check(t, 0) || !term.check(t, 1) {
			t.Errorf("stage 1: %s not offered through both replicas", term.id)
		}
	}

	// Two boot failures, one through each replica, halt it for both.
	fleet[2].report(t, 1, transport.OutcomeRolledBack, transport.ReasonBoot)
	fleet[3].report(t, 0, transport.OutcomeRolledBack, transport.ReasonBoot)
	for i, e := range envs {
		if st := rolloutVia(t, e, spec.ID); st.State != rollout.StateHalted || st.Stages[1].Failed != 2 {
			t.Errorf("replica %d sees %s with %d failures, want halted with 2", i, st.State, st.Stages[1].Failed)
		}
		if fleet[6].check(t, i) {
			t.Errorf("replica %d offered the release of a halted rollout", i)
		}
	}
	if n := count(auditActions(t, a.srv), "rollout.halted"); n != 1 {
		t.Errorf("%d halts audited, want 1", n)
	}

	// A nudge given to a is taken by a heartbeat served by b.
	if status, resp := a.call("POST", "/v1/operator/terminals/"+fleet[7].id+"/nudge", adminToken, ""); status != http.StatusOK {
		t.Fatalf("nudge: %d %s", status, resp)
	}
	hb, err := fleet[7].via[1].Heartbeat(context.Background(), &transport.HeartbeatRequest{Seq: 1, State: "idle"})
	if err != nil || len(hb.Directives) != 1 || hb.Directives[0] != transport.DirectiveCheck {
		t.Errorf("heartbeat via b after a nudge via a: %+v, %v", hb, err)
	}
	if term := find(t, b.srv.Terminals(), fleet[7].id); term.State != "idle" || !term.Online {
		t.Errorf("replica b lists %+v", term)
	}
	if term := find(t, a.srv.Terminals(), fleet[7].id); term.State != "idle" || !term.Online {
		t.Errorf("replica a lists %+v", term)
	}
}

// TestReplicasShareTheStartCap: terminals checking at once through two
// replicas start no more devices in a minute than the rollout allows.
func TestReplicasShareTheStartCap(t *testing.T) { forEachBackend(t, testReplicasShareTheStartCap) }

func testReplicasShareTheStartCap(t *testing.T, a, b *env, clk *clock) {
	envs := [2]*env{a, b}
	var fleet []*terminalOn
	for i := range 10 {
		fleet = append(fleet, enroll(t, envs, fmt.Sprintf("SN%02d", i), i%2))
	}
	if _, err := a.srv.CreateRollout(context.Background(), admin, server.RolloutSpec{ID: "r1", Release: fwRelease,
		Batches: []float64{100}, MaxStartsPerMinute: 3}); err != nil {
		t.Fatal(err)
	}
	offers := func() int {
		var mu sync.Mutex
		var wg sync.WaitGroup
		n := 0
		for i, term := range fleet {
			wg.Go(func() {
				resp, err := term.via[i%2].Check(context.Background(), &transport.CheckRequest{Model: "P300",
					Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				n += len(resp.Offers)
				mu.Unlock()
			})
		}
		wg.Wait()
		return n
	}
	if n := offers(); n != 3 {
		t.Errorf("%d offers in the first minute, want 3", n)
	}
	clk.Add(time.Minute)
	if n := offers(); n != 6 {
		t.Errorf("%d offers in the second minute, want 6: 3 again and 3 new", n)
	}
}

// TestReplicasHoldTheCaps: a burst of first checks through two replicas
// at once offers no more than a rollout's caps allow, and refuses none of
// the checks with an error; the caps are taken in the store with the
// device's offer, not by a compare and swap on the rollout that the
// checks fight over (review H3, M1).
func TestReplicasHoldTheCaps(t *testing.T) { forEachBackend(t, testReplicasHoldTheCaps) }

func testReplicasHoldTheCaps(t *testing.T, a, b *env, _ *clock) {
	ctx := context.Background()
	tests := []struct {
		name      string
		terminals int
		spec      server.RolloutSpec
		want      int
	}{
		{"concurrency", 40, server.RolloutSpec{MaxConcurrent: 5}, 5},
		{"starts", 40, server.RolloutSpec{MaxStartsPerMinute: 7}, 7},
		{"both", 40, server.RolloutSpec{MaxConcurrent: 5, MaxStartsPerMinute: 7}, 5},
		{"burst", 120, server.RolloutSpec{MaxStartsPerMinute: 10_000}, 120},
	}
	srvs := [2]*server.Server{a.srv, b.srv}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := make([]string, tt.terminals)
			for i := range ids {
				ids[i] = a.register(fmt.Sprintf("%s-%03d", tt.name, i), "P300")
				if err := a.srv.SetLabels(ctx, admin, ids[i], tt.name, nil); err != nil {
					t.Fatal(err)
				}
			}
			spec := tt.spec
			spec.ID, spec.Release, spec.Groups, spec.Batches = tt.name, fwRelease, []string{tt.name}, []float64{100}
			if _, err := a.srv.CreateRollout(ctx, admin, spec); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			offers, refused := 0, 0
			var errs []error
			for i, id := range ids {
				wg.Go(func() {
					resp, err := srvs[i%2].Check(ctx, id, &transport.CheckRequest{Model: "P300",
						Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						errs = append(errs, err)
					case len(resp.Offers) > 0:
						offers++
					case resp.RetryAfterSeconds > 0 && resp.RetryAfterSeconds <= 120:
						refused++
					default:
						errs = append(errs, fmt.Errorf("no offer and retry after %ds", resp.RetryAfterSeconds))
					}
				})
			}
			wg.Wait()
			st := rolloutOf(t, a.srv, tt.name)
			if len(errs) > 0 {
				t.Errorf("%d of %d checks failed, e.g. %v", len(errs), len(ids), errs[0])
			}
			if offers != tt.want || st.Total.Offered != tt.want || refused != len(ids)-tt.want {
				t.Errorf("%d offers, %d devices offered, %d told to come back within 2 minutes; want %d, %d, %d",
					offers, st.Total.Offered, refused, tt.want, tt.want, len(ids)-tt.want)
			}
		})
	}
}
