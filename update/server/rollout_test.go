package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/memstore"
	"github.com/upkeephq/upkeep/verify"
)

// clock is a time the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Hour).Add(time.Minute)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const fwRelease = "firmware@1.1.0"

var admin = server.Operator{Name: "alice", Role: server.RoleAdmin}

// rolloutEnv is a server with firmware 1.1.0 published and n P300
// terminals at 1.0.0, on a clock the test moves.
func rolloutEnv(t *testing.T, n int, mods ...func(*server.Config)) (*env, *clock, []string) {
	t.Helper()
	clk := newClock()
	e := newEnv(t, append([]func(*server.Config){func(c *server.Config) { c.Now = clk.Now }}, mods...)...)
	e.publish(e.pack(e.keys, "1.1.0", content(10_000, 9), func(m *verify.Manifest) { m.From = []string{"~1.0"} }))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.register(fmt.Sprintf("SN%03d", i), "P300")
	}
	return e, clk, ids
}

// register enrolls a terminal through the service and returns its ID.
func (e *env) register(serial, model string) string {
	e.t.Helper()
	resp, err := e.srv.Register(context.Background(), &transport.RegisterRequest{Enrollment: enrollment, Serial: serial,
		Model: model, Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.DeviceID
}

// offered reports whether a check by terminal id gets the release.
func offered(t *testing.T, srv *server.Server, id string) bool {
	t.Helper()
	resp, err := srv.Check(context.Background(), id, &transport.CheckRequest{Model: "P300",
		Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
	if err != nil {
		t.Fatalf("Check(%s): %v", id, err)
	}
	if len(resp.Offers) == 0 && (resp.RetryAfterSeconds <= 0 || resp.Reason == "") {
		t.Errorf("Check(%s) = %+v: no offer needs a reason and a retry", id, resp)
	}
	return len(resp.Offers) == 1
}

var reportN int

func report(t *testing.T, srv *server.Server, id string, outcome transport.Outcome, reason transport.Reason) {
	t.Helper()
	reportN++
	_, err := srv.Report(context.Background(), id, &transport.ReportRequest{ID: fmt.Sprintf("rep-%d", reportN),
		Release: fwRelease, To: "1.1.0", Outcome: outcome, Reason: reason, At: time.Now()})
	if err != nil {
		t.Fatalf("Report(%s): %v", id, err)
	}
}

func rolloutOf(t *testing.T, srv *server.Server, id string) server.RolloutStatus {
	t.Helper()
	st, err := srv.Rollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// byStage splits device IDs by their stage in r.
func byStage(r rollout.Rollout, ids []string) map[int][]string {
	out := map[int][]string{}
	for _, id := range ids {
		out[rollout.Batch(r, id)] = append(out[rollout.Batch(r, id)], id)
	}
	return out
}

func TestRolloutGatesChecksByStageAndHaltsOnReports(t *testing.T) {
	e, _, ids := rolloutEnv(t, 24)
	ctx := context.Background()
	spec := server.RolloutSpec{ID: "fw-1.1", Release: fwRelease, Pilot: ids[:2], Batches: []float64{50, 100},
		MinFinished: 2, FailureRate: 20}
	st, err := e.srv.CreateRollout(ctx, admin, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != rollout.StateRunning || st.Stage != 0 || st.Total.Pending != 24 {
		t.Fatalf("new rollout: %+v", st)
	}
	stages := byStage(rollout.Rollout{ID: spec.ID, Pilot: spec.Pilot, Batches: spec.Batches}, ids)
	if len(stages[1]) < 3 || len(stages[2]) == 0 {
		t.Skipf("cohorts put %d devices in stage 1 and %d in stage 2; the test needs 3 and 1", len(stages[1]), len(stages[2]))
	}

	// Stage 0: only the pilots are offered the release.
	for _, id := range ids {
		if got, want := offered(t, e.srv, id), slices.Contains(spec.Pilot, id); got != want {
			t.Errorf("stage 0: %s offered %v, want %v", id, got, want)
		}
	}
	if st := rolloutOf(t, e.srv, spec.ID); st.Stages[0].Offered != 2 || st.Stages[1].Pending != len(stages[1]) {
		t.Errorf("stage 0 counts: %+v", st.Stages)
	}

	// The pilots succeed: stage 1 opens, at once, on their reports.
	for _, id := range spec.Pilot {
		report(t, e.srv, id, transport.OutcomeCommitted, transport.ReasonOK)
	}
	if st := rolloutOf(t, e.srv, spec.ID); st.Stage != 1 || st.Stages[0].Installed != 2 {
		t.Fatalf("after the pilots: stage %d, counts %+v", st.Stage, st.Stages[0])
	}
	for _, id := range slices.Concat(stages[1][:1], stages[2]) {
		if got, want := offered(t, e.srv, id), rollout.Batch(rollout.Rollout{ID: spec.ID, Pilot: spec.Pilot, Batches: spec.Batches}, id) == 1; got != want {
			t.Errorf("stage 1: %s offered %v, want %v", id, got, want)
		}
	}
	offered(t, e.srv, stages[1][1])

	// Two failures of two finished in stage 1 pass 20%: the rollout halts
	// by itself, and nothing more is offered.
	report(t, e.srv, stages[1][0], transport.OutcomeRolledBack, transport.ReasonBoot)
	report(t, e.srv, stages[1][1], transport.OutcomeRolledBack, transport.ReasonBoot)
	st = rolloutOf(t, e.srv, spec.ID)
	if st.State != rollout.StateHalted || st.Breach == nil || st.Breach.Stage != 1 || st.Stages[1].Failed != 2 ||
		st.Stages[1].FailedByReason[transport.ReasonBoot] != 2 {
		t.Fatalf("after two failures: %+v", st)
	}
	if offered(t, e.srv, stages[1][2]) {
		t.Error("a halted rollout offered its release")
	}
	// A repeated report changes nothing.
	_, err = e.srv.Report(ctx, stages[1][1], &transport.ReportRequest{ID: fmt.Sprintf("rep-%d", reportN),
		Release: fwRelease, Outcome: transport.OutcomeRolledBack, Reason: transport.ReasonBoot})
	if err != nil {
		t.Fatal(err)
	}

	// The operator accepts the failures and resumes: offers go on.
	st, err = e.srv.ResumeRollout(ctx, admin, spec.ID, "bad batch of SIMs")
	if err != nil || st.State != rollout.StateRunning || st.Stages[1].Accepted != 2 {
		t.Fatalf("resume: %+v, %v", st, err)
	}
	if !offered(t, e.srv, stages[1][2]) {
		t.Error("a resumed rollout offered nothing to an open stage")
	}

	audit := auditActions(t, e.srv)
	for _, want := range []string{"release.publish", "rollout.create", "rollout.started", "rollout.stage_opened",
		"rollout.halted", "rollout.resume"} {
		if !slices.Contains(audit, want) {
			t.Errorf("audit log %v lacks %s", audit, want)
		}
	}
	if n := count(audit, "rollout.halted"); n != 1 {
		t.Errorf("%d halts in the audit log, want 1", n)
	}
}

func auditActions(t *testing.T, srv *server.Server) []string {
	t.Helper()
	evs, err := srv.Audit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action)
	}
	return out
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestRolloutCapsAndTargeting(t *testing.T) {
	tests := []struct {
		name   string
		spec   server.RolloutSpec
		offers int // of the 6 P300 and 2 A920 terminals, checking in one minute
	}{
		{"everyone at once", server.RolloutSpec{Batches: []float64{100}}, 6},
		{"two starts a minute", server.RolloutSpec{Batches: []float64{100}, MaxStartsPerMinute: 2}, 2},
		{"three at a time", server.RolloutSpec{Batches: []float64{100}, MaxConcurrent: 3}, 3},
		{"tagged only", server.RolloutSpec{Batches: []float64{100}, Tags: []string{"lab"}}, 2},
		{"not yet", server.RolloutSpec{Batches: []float64{100}, Start: time.Now().Add(48 * time.Hour)}, 0},
		{"another model", server.RolloutSpec{Batches: []float64{100}, Models: []string{"A920"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, clk, ids := rolloutEnv(t, 6)
			e.register("SN-A1", "A920")
			e.register("SN-A2", "A920")
			ctx := context.Background()
			for _, id := range ids[:2] {
				if err := e.srv.SetLabels(ctx, admin, id, "", []string{"lab"}); err != nil {
					t.Fatal(err)
				}
			}
			tt.spec.ID, tt.spec.Release = "r1", fwRelease
			if _, err := e.srv.CreateRollout(ctx, admin, tt.spec); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, id := range ids {
				if offered(t, e.srv, id) {
					n++
				}
			}
			if n != tt.offers {
				t.Errorf("%d offers, want %d", n, tt.offers)
			}
			if tt.spec.MaxStartsPerMinute > 0 {
				// The next minute brings the next starts; those offered
				// already are offered again outside the cap.
				clk.Add(time.Minute)
				n = 0
				for _, id := range ids {
					if offered(t, e.srv, id) {
						n++
					}
				}
				if n != 2*tt.offers {
					t.Errorf("next minute: %d offers, want %d", n, 2*tt.offers)
				}
			}
		})
	}
}

// Terminals that stop beating before they are offered the release are
// offline in the rollout, not failed, and do not hold their stage back.
// One that stops beating holding an offer may have been bricked by it: it
// holds its stage back until it beats again, or is lost (failed) after
// LostAfter (review H1).
func TestRolloutCountsSilentTerminals(t *testing.T) {
	e, clk, ids := rolloutEnv(t, 4)
	ctx := context.Background()
	beat := func(id, state string) {
		t.Helper()
		if _, err := e.srv.Heartbeat(ctx, id, &transport.HeartbeatRequest{Seq: 1, State: state, Release: fwRelease}); err != nil {
			t.Fatal(err)
		}
	}
	reconcile := func() server.RolloutStatus {
		t.Helper()
		if err := e.srv.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		return rolloutOf(t, e.srv, "r1")
	}
	for _, id := range ids {
		beat(id, "idle")
	}
	spec := server.RolloutSpec{ID: "r1", Release: fwRelease, Pilot: ids[:3], Batches: []float64{100}, MinFinished: 1,
		LostAfterSeconds: 3600}
	if _, err := e.srv.CreateRollout(ctx, admin, spec); err != nil {
		t.Fatal(err)
	}
	offered(t, e.srv, ids[0])
	offered(t, e.srv, ids[1]) // ids[2] never checks

	// ids[0] reports progress in its heartbeats; the others go silent.
	clk.Add(2 * time.Minute)
	beat(ids[0], "downloading")
	clk.Add(2 * time.Minute)
	beat(ids[0], "downloading")
	st := reconcile()
	if c := st.Stages[0]; c.Downloading != 1 || c.Silent != 1 || c.Offline != 1 || st.Total.Offline != 2 || st.Total.Failed != 0 {
		t.Fatalf("counts with three silent terminals: %+v", st.Stages)
	}
	// The pilot that is online succeeds, but the one silent since its
	// offer holds the next stage back; the one never offered does not.
	report(t, e.srv, ids[0], transport.OutcomeCommitted, transport.ReasonOK)
	if st := rolloutOf(t, e.srv, spec.ID); st.Stage != 0 {
		t.Fatalf("stage %d opened with a pilot silent since its offer: %+v", st.Stage, st.Stages)
	}
	// A silent terminal that beats again is back where it was.
	beat(ids[1], "idle")
	if st := reconcile(); st.Stages[0].Offered != 1 || st.Stages[0].Silent != 0 {
		t.Errorf("after beating again: %+v", st.Stages[0])
	}
	// Silent again, for LostAfter: lost, a failure, which halts.
	clk.Add(30 * time.Minute)
	if st := reconcile(); st.Stages[0].Silent != 1 || st.State != rollout.StateRunning {
		t.Fatalf("silent for half an hour: %s %+v", st.State, st.Stages[0])
	}
	clk.Add(time.Hour)
	st = reconcile()
	if c := st.Stages[0]; c.Silent != 0 || c.Failed != 1 || c.FailedByReason[rollout.ReasonLost] != 1 {
		t.Errorf("silent for LostAfter: %+v", c)
	}
	if st.State != rollout.StateHalted || st.Breach == nil || st.Breach.Failed != 1 {
		t.Errorf("a lost pilot did not halt the rollout: %s, breach %+v", st.State, st.Breach)
	}
}

// A release that bricks a fifth of a batch (those terminals go silent
// during the install and never report again) does not open the next
// batch, and halts once they are lost (review H1).
func TestRolloutBrickedTerminalsHalt(t *testing.T) {
	e, clk, ids := rolloutEnv(t, 60)
	ctx := context.Background()
	spec := server.RolloutSpec{ID: "brick", Release: fwRelease, Batches: []float64{50, 100}}
	if _, err := e.srv.CreateRollout(ctx, admin, spec); err != nil {
		t.Fatal(err)
	}
	stages := byStage(rollout.Rollout{ID: spec.ID, Batches: spec.Batches}, ids)
	s1 := stages[1]
	if len(s1) < 10 {
		t.Skipf("stage 1 has %d devices; the test needs 10", len(s1))
	}
	beat := func(id, state string) {
		t.Helper()
		if _, err := e.srv.Heartbeat(ctx, id, &transport.HeartbeatRequest{Seq: 1, State: state, Release: fwRelease}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		beat(id, "idle")
	}
	for _, id := range s1 {
		if !offered(t, e.srv, id) {
			t.Fatalf("%s in stage 1 not offered", id)
		}
		beat(id, "installing")
	}
	bricked := len(s1) / 5
	clk.Add(30 * time.Minute)
	for i, id := range s1 {
		if i < bricked {
			continue // silent from the middle of the install on
		}
		beat(id, "idle")
		report(t, e.srv, id, transport.OutcomeCommitted, transport.ReasonOK)
	}
	for _, id := range stages[2] {
		beat(id, "idle")
	}
	if err := e.srv.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	st := rolloutOf(t, e.srv, spec.ID)
	if st.Stage != 1 || st.Stages[1].Silent != bricked {
		t.Fatalf("%d of %d silent mid-install: stage %d, %+v", bricked, len(s1), st.Stage, st.Stages[1])
	}
	for range 2 { // a day later, beating all along but for the bricked
		clk.Add(12 * time.Hour)
		for _, id := range append(s1[bricked:], stages[2]...) {
			beat(id, "idle")
		}
		if err := e.srv.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st = rolloutOf(t, e.srv, spec.ID)
	if st.State != rollout.StateHalted || st.Stage != 1 || st.Stages[1].FailedByReason[rollout.ReasonLost] != bricked {
		t.Errorf("a day after %d of %d went silent mid-install: %s stage %d, %+v", bricked, len(s1), st.State, st.Stage, st.Stages[1])
	}
}

func TestRolloutOperatorCommands(t *testing.T) {
	e, _, ids := rolloutEnv(t, 3)
	ctx := context.Background()
	if _, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r1", Release: fwRelease}); err != nil {
		t.Fatal(err)
	}
	viewer := server.Operator{Name: "vic", Role: server.RoleViewer}
	tests := []struct {
		name  string
		do    func() (server.RolloutStatus, error)
		want  error
		state rollout.State
	}{
		{"viewer cannot pause", func() (server.RolloutStatus, error) { return e.srv.PauseRollout(ctx, viewer, "r1", "") }, transport.ErrForbidden, ""},
		{"pause", func() (server.RolloutStatus, error) { return e.srv.PauseRollout(ctx, admin, "r1", "night") }, nil, rollout.StatePaused},
		{"pause again", func() (server.RolloutStatus, error) { return e.srv.PauseRollout(ctx, admin, "r1", "") }, transport.ErrConflict, ""},
		{"resume", func() (server.RolloutStatus, error) { return e.srv.ResumeRollout(ctx, admin, "r1", "") }, nil, rollout.StateRunning},
		{"abort", func() (server.RolloutStatus, error) { return e.srv.AbortRollout(ctx, admin, "r1", "wrong build") }, nil, rollout.StateAborted},
		{"resume aborted", func() (server.RolloutStatus, error) { return e.srv.ResumeRollout(ctx, admin, "r1", "") }, transport.ErrConflict, ""},
		{"unknown", func() (server.RolloutStatus, error) { return e.srv.PauseRollout(ctx, admin, "nope", "") }, transport.ErrNotFound, ""},
		{"duplicate ID", func() (server.RolloutStatus, error) {
			return e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r1", Release: fwRelease})
		}, transport.ErrConflict, ""},
		{"unpublished release", func() (server.RolloutStatus, error) {
			return e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r2", Release: "firmware@9.0.0"})
		}, transport.ErrNotFound, ""},
		{"invalid", func() (server.RolloutStatus, error) {
			return e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r3", Release: fwRelease, Batches: []float64{50, 10}})
		}, transport.ErrBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := tt.do()
			if !errors.Is(err, tt.want) || (tt.want == nil && st.State != tt.state) {
				t.Errorf("= %s, %v; want %s, %v", st.State, err, tt.state, tt.want)
			}
		})
	}
	// An aborted rollout offers nothing, and its release goes to no one.
	if offered(t, e.srv, ids[0]) {
		t.Error("the release of an aborted rollout was offered")
	}
}

// A rollout's device states and counts are in the store, where another
// replica reads them.
func TestRolloutStateIsInTheStore(t *testing.T) {
	st := memstore.New()
	e, _, ids := rolloutEnv(t, 2, func(c *server.Config) { c.Store = st })
	ctx := context.Background()
	if _, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r1", Release: fwRelease, Batches: []float64{100}}); err != nil {
		t.Fatal(err)
	}
	offered(t, e.srv, ids[0])
	d, err := st.RolloutDevice(ctx, "r1", ids[0])
	if err != nil || d.Phase != "offered" {
		t.Errorf("device state in the store: %+v, %v", d, err)
	}
	d, err = st.RolloutDevice(ctx, "r1", ids[1])
	if err != nil || d.Phase != store.PhasePending {
		t.Errorf("device state in the store: %+v, %v", d, err)
	}
}

// Terminals that run the release already install nothing: they neither
// meet a stage's success threshold before anything was installed nor
// dilute the failures of those that install (review H2).
func TestRolloutTerminalsAlreadyCurrent(t *testing.T) {
	e, _, old := rolloutEnv(t, 10)
	ctx := context.Background()
	for i := range 190 {
		if _, err := e.srv.Register(ctx, &transport.RegisterRequest{Enrollment: enrollment, Serial: fmt.Sprintf("UP%03d", i),
			Model: "P300", Components: []transport.Component{{Name: "firmware", Version: "1.1.0"}}}); err != nil {
			t.Fatal(err)
		}
	}
	spec := server.RolloutSpec{ID: "up", Release: fwRelease, Batches: []float64{50, 100}}
	n := len(byStage(rollout.Rollout{ID: spec.ID, Batches: spec.Batches}, old)[1])
	if n < 2 {
		t.Skipf("%d terminals of stage 1 at 1.0.0; the test needs 2", n)
	}
	st, err := e.srv.CreateRollout(ctx, admin, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.Stage != 1 || st.Total.Current != 190 || st.Total.Installed != 0 || st.Total.Pending != 10 {
		t.Fatalf("at creation: stage %d, %+v", st.Stage, st.Total)
	}
	for _, id := range old {
		if offered(t, e.srv, id) {
			report(t, e.srv, id, transport.OutcomeRolledBack, transport.ReasonBoot)
		}
	}
	st = rolloutOf(t, e.srv, "up")
	if st.State != rollout.StateHalted || st.Breach == nil || st.Breach.Finished != n {
		t.Errorf("every install failed (%d of %d): %s stage %d, breach %+v, %+v", n, n, st.State, st.Stage, st.Breach, st.Stages)
	}
}

// A terminal tracked at its release's old version that gets it another
// way before its offer is current, not pending for ever.
func TestRolloutTerminalCurrentBeforeItsOffer(t *testing.T) {
	e, _, ids := rolloutEnv(t, 3)
	ctx := context.Background()
	if _, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "r", Release: fwRelease, Batches: []float64{100}}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Check(ctx, ids[0], &transport.CheckRequest{Model: "P300",
		Components: []transport.Component{{Name: "firmware", Version: "1.1.0"}}})
	if err != nil || len(resp.Offers) != 0 {
		t.Fatalf("Check at 1.1.0 = %+v, %v", resp, err)
	}
	if st := rolloutOf(t, e.srv, "r"); st.Total.Current != 1 || st.Total.Pending != 2 {
		t.Errorf("counts: %+v", st.Total)
	}
}

// hookStore runs hook once, after a ListTerminals has read its page: in
// the middle of a sweep.
type hookStore struct {
	store.Store
	mu   sync.Mutex
	hook func()
}

func (h *hookStore) ListTerminals(ctx context.Context, after string, limit int) ([]store.Terminal, error) {
	ts, err := h.Store.ListTerminals(ctx, after, limit)
	h.mu.Lock()
	hook := h.hook
	h.hook = nil
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return ts, err
}

// A failure reported while a sweep is under way outlives the sweep's
// write of what it read before, even when the terminal's clock is off so
// that no later sweep could bring it back from the terminal's record
// (review M2).
func TestRolloutSweepKeepsAConcurrentReport(t *testing.T) {
	hs := &hookStore{Store: memstore.New()}
	e, clk, ids := rolloutEnv(t, 4, func(c *server.Config) { c.Store = hs })
	ctx := context.Background()
	if _, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "sw", Release: fwRelease,
		Batches: []float64{100}, MinFinished: 100}); err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	if !offered(t, e.srv, id) {
		t.Fatal("not offered")
	}
	clk.Add(time.Second)
	if _, err := e.srv.Heartbeat(ctx, id, &transport.HeartbeatRequest{Seq: 2, State: "installing", Release: fwRelease}); err != nil {
		t.Fatal(err)
	}
	hs.mu.Lock()
	hs.hook = func() {
		if _, err := e.srv.Report(ctx, id, &transport.ReportRequest{ID: "fail-1", Release: fwRelease,
			Outcome: transport.OutcomeRolledBack, Reason: transport.ReasonBoot, At: time.Unix(86400, 0)}); err != nil {
			t.Error(err)
		}
	}
	hs.mu.Unlock()
	for range 2 {
		if err := e.srv.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := rolloutOf(t, e.srv, "sw"); st.Total.Failed != 1 || st.Total.Installing != 0 {
		t.Errorf("after two sweeps: %+v; want the boot failure kept", st.Total)
	}
}

// A device that rolled back is not offered the release again by its
// rollout (one attempt each, so the rates measure the release); when it
// commits the release after all (a technician installs it), it counts as
// installed, not failed (review M3).
func TestRolloutSuccessOverridesAFailure(t *testing.T) {
	e, _, ids := rolloutEnv(t, 4)
	ctx := context.Background()
	if _, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "rb", Release: fwRelease,
		Batches: []float64{100}, MinFinished: 100}); err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	if !offered(t, e.srv, id) {
		t.Fatal("not offered")
	}
	report(t, e.srv, id, transport.OutcomeRolledBack, transport.ReasonDownload)
	if offered(t, e.srv, id) {
		t.Error("offered again after it failed")
	}
	if st := rolloutOf(t, e.srv, "rb"); st.Total.Failed != 1 {
		t.Fatalf("after the rollback: %+v", st.Total)
	}
	report(t, e.srv, id, transport.OutcomeCommitted, transport.ReasonOK)
	if st := rolloutOf(t, e.srv, "rb"); st.Total.Failed != 0 || st.Total.Installed != 1 {
		t.Errorf("after it committed: %+v; want it installed, not failed", st.Total)
	}
}

// flakyTracking is a store whose n-th ChangeRolloutDevices fails, and that
// records where each ListTerminals started.
type flakyTracking struct {
	store.Store
	mu     sync.Mutex
	failAt int // the call that fails, from 1; 0 never
	calls  int
	afters []string
}

func (f *flakyTracking) ChangeRolloutDevices(ctx context.Context, cs []store.DeviceChange) ([]bool, error) {
	f.mu.Lock()
	f.calls++
	fail := f.calls == f.failAt
	f.mu.Unlock()
	if fail {
		return nil, errors.New("connection reset")
	}
	return f.Store.ChangeRolloutDevices(ctx, cs)
}

func (f *flakyTracking) ListTerminals(ctx context.Context, after string, limit int) ([]store.Terminal, error) {
	f.mu.Lock()
	f.afters = append(f.afters, after)
	f.mu.Unlock()
	return f.Store.ListTerminals(ctx, after, limit)
}

// A rollout whose creation stops while it tracks the fleet is not left
// preparing for good: Reconcile, or creating it again with the same spec,
// takes it up where it stopped (review M6).
func TestRolloutCreationResumes(t *testing.T) {
	const fleet = 2100 // three pages
	tests := []struct {
		name   string
		resume func(e *env, clk *clock, spec server.RolloutSpec) error
	}{
		{"Reconcile", func(e *env, clk *clock, _ server.RolloutSpec) error {
			clk.Add(time.Minute) // two RolloutEvery without progress
			return e.srv.Reconcile(context.Background())
		}},
		{"created again", func(e *env, _ *clock, spec server.RolloutSpec) error {
			_, err := e.srv.CreateRollout(context.Background(), admin, spec)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &flakyTracking{Store: memstore.New()}
			e, clk, _ := rolloutEnv(t, 0, func(c *server.Config) { c.Store = fs })
			ctx := context.Background()
			var ids []string
			for i := range fleet {
				id := fmt.Sprintf("t-%05d", i)
				if err := fs.CreateTerminal(ctx, store.Terminal{ID: id, Serial: fmt.Sprintf("SN%05d", i), Model: "P300",
					Components: []store.Component{{Name: "firmware", Version: "1.0.0"}}}); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			fs.failAt = 2 // the second page
			spec := server.RolloutSpec{ID: "big", Release: fwRelease, Batches: []float64{100}}
			if _, err := e.srv.CreateRollout(ctx, admin, spec); !errors.Is(err, transport.ErrUnavailable) {
				t.Fatalf("CreateRollout with a store that fails: %v, want ErrUnavailable", err)
			}
			st := rolloutOf(t, e.srv, spec.ID)
			if !st.Preparing || st.Total.Pending != 1000 {
				t.Fatalf("after the failure: preparing %v, %+v", st.Preparing, st.Total)
			}
			if offered(t, e.srv, ids[0]) {
				t.Error("a rollout still preparing offered its release")
			}
			if err := e.srv.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if st := rolloutOf(t, e.srv, spec.ID); !st.Preparing {
				t.Fatal("Reconcile took up a creation that another may still be making")
			}
			_, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "big", Release: fwRelease})
			if !errors.Is(err, transport.ErrConflict) {
				t.Errorf("another spec under the same ID: %v, want ErrConflict", err)
			}

			fs.mu.Lock()
			fs.afters = nil
			fs.mu.Unlock()
			if err := tt.resume(e, clk, spec); err != nil {
				t.Fatal(err)
			}
			st = rolloutOf(t, e.srv, spec.ID)
			if st.Preparing || st.State != rollout.StateRunning || st.Total.Pending != fleet {
				t.Errorf("resumed: preparing %v, %s, %+v", st.Preparing, st.State, st.Total)
			}
			fs.mu.Lock()
			defer fs.mu.Unlock()
			if len(fs.afters) == 0 || fs.afters[0] != ids[999] {
				t.Errorf("resumed reading the fleet after %q, want after the first page, %q", fs.afters, ids[999])
			}
			if !offered(t, e.srv, ids[0]) {
				t.Error("not offered once ready")
			}
		})
	}
}
