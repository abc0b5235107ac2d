package update_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/fileinstall"
	"github.com/upkeephq/upkeep/verify"
)

// The crash suite cuts the power at every filesystem operation of an
// update — every journal transition, every chunk written, every step of
// the backup, the install, the migration, the rollback — then restarts
// the agent on what survived, sometimes cutting it again, until the update
// settles. After every restart the journal must parse and the floor must
// not drop; at the end the terminal must be wholly on the new version
// (data migrated) or wholly back on the old one (data byte-identical), and
// the server must hold exactly one final report.
//
//	go test -run TestPowerCuts ./update              # the full run
//	go test -short -run TestPowerCuts ./update       # every fourth crash point
//	go test -run TestPowerCuts ./update -crash.replay=commit/lose-some/17/2891
var crashReplay = flag.String("crash.replay", "", "replay one crash run: scenario/loss/crash point/seed")

// crashScenario is an update whose end is known.
type crashScenario struct {
	name      string
	checkFail bool // the sign-in check fails
	migFail   bool // the migration fails
	probation bool // committed only once marked good (the first sale)
	want      transport.Outcome
}

var crashScenarios = []crashScenario{
	{name: "commit", want: transport.OutcomeCommitted},
	{name: "health-rollback", checkFail: true, want: transport.OutcomeRolledBack},
	{name: "migration-rollback", migFail: true, want: transport.OutcomeRolledBack},
	{name: "probation-commit", probation: true, want: transport.OutcomeCommitted},
}

var (
	oldApp  = bytes.Repeat([]byte("app 1.0.0 "), 3000)
	posData = map[string]string{
		"/pos/data/journal.db":      strings.Repeat("batch=17 trace=901 amount=12.50\n", 200),
		"/pos/data/esign/0001.sig":  "e-signature 1",
		"/pos/data/esign/0002.sig":  "e-signature 2",
		"/pos/data/params/tms.json": `{"merchant":"M0042","host":"10.1.2.3"}`,
	}
)

// terminal is one payment terminal whose every byte lives on a CrashFS.
type crashTerminal struct {
	fs  *durabletest.CrashFS
	srv *transporttest.Server
	cfg update.Config
	rel *transporttest.Release
}

// crashRelease is signed once for every run.
var crashRelease = sync.OnceValues(func() (*verify.KeyRing, *transporttest.Release) {
	keys, err := transporttest.NewKeys(transporttest.DefaultIssued(), transporttest.DefaultExpires())
	if err != nil {
		panic(err)
	}
	ring, _ := keys.KeyRing()
	art := bytes.Repeat([]byte("app 1.1.0 "), 3300) // 33,000 bytes: 9 chunks of 4 KiB
	rel, err := keys.NewRelease(verify.Manifest{Component: "app", Version: "1.1.0", Floor: "1.0.5"}, art)
	if err != nil {
		panic(err)
	}
	return ring, rel
})

func newCrashTerminal(t *testing.T, sc crashScenario, seed uint64) *crashTerminal {
	t.Helper()
	ring, rel := crashRelease()
	fsys := durabletest.NewCrashFS(seed)
	for _, d := range []string{"/state", "/pos/data/esign", "/pos/data/params"} {
		if err := durable.MkdirAll(fsys, d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := durable.WriteFile(fsys, "/pos/app.bin", oldApp, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, content := range posData {
		if err := durable.WriteFile(fsys, p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys.Persist()

	srv := transporttest.NewServer(transporttest.Config{})
	if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{}); err != nil {
		t.Fatal(err)
	}
	client := srv.Client()
	if _, err := client.Register(context.Background(), &transport.RegisterRequest{
		Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "P300"}); err != nil {
		t.Fatal(err)
	}
	hook, err := backup.NewFilesOn(fsys, "pos-data", "/pos/data")
	if err != nil {
		t.Fatal(err)
	}
	mig := update.Migration{Name: "journal-v2", Run: func(ctx context.Context, a *update.Artifact) error {
		b, err := durable.ReadFile(fsys, "/pos/data/journal.db", 1<<20, errors.New("big"))
		if err != nil {
			return err
		}
		if err := durable.WriteFile(fsys, "/pos/data/journal.db", append([]byte("schema=2\n"), b...), 0o644); err != nil {
			return err
		}
		if sc.migFail {
			return errors.New("index build failed")
		}
		return nil
	}}
	check := verify.Check{Name: "sign-in", Run: func(context.Context) error {
		if sc.checkFail {
			return errors.New("host refused sign-in")
		}
		return nil
	}}
	var probation update.Probation
	if sc.probation {
		probation = update.Probation{UntilMarkedGood: true}
	}
	return &crashTerminal{fs: fsys, srv: srv, rel: rel, cfg: update.Config{
		Probation: probation,
		Source:    client, Keys: ring, FS: fsys, StateDir: "/state",
		Installer:   &fileinstall.Installer{Path: "/pos/app.bin", FS: fsys},
		Device:      update.Device{Model: "P300"},
		Installed:   map[string]string{"app": "1.0.0"},
		Backups:     []backup.Hook{hook},
		Migrations:  []update.Migration{mig},
		Checks:      []verify.Check{check},
		Now:         func() time.Time { return transporttest.DefaultIssued().AddDate(1, 0, 0) },
		MaxAttempts: 1,
	}}
}

// crashRun is one update of a terminal through a list of power cuts.
type crashRun struct {
	sc      crashScenario
	loss    durabletest.Loss
	point   int // the first crash point
	seed    uint64
	crashes int // power cuts that happened
}

func (r crashRun) String() string {
	return fmt.Sprintf("%s/%s/%d/%d", r.sc.name, r.loss, r.point, r.seed)
}

// run updates the terminal, cutting the power at r.point and then at
// random points, and checks every invariant. It returns the mutating
// operations an uninterrupted run takes, when r.point is 0.
func (r *crashRun) run(t *testing.T) int {
	term := newCrashTerminal(t, r.sc, r.seed)
	rng := rand.New(rand.NewPCG(r.seed, 7))
	ctx := context.Background()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s\nreplay: go test -run TestPowerCuts ./update -crash.replay=%s\nlast operations:\n  %s",
			r, fmt.Sprintf(format, args...), r, strings.Join(term.fs.Trace(), "\n  "))
	}
	start := term.fs.Ops()
	floor := ""
	var a *update.Agent
	for boot := 0; ; boot++ {
		if boot > 40 {
			fail("the update never settled")
		}
		switch {
		case boot == 0 && r.point > 0:
			term.fs.CrashAfter(r.point)
		case boot > 0 && boot < 4 && rng.IntN(2) == 0:
			term.fs.CrashAfter(1 + rng.IntN(120)) // another cut, anywhere
		}
		var err error
		a, err = update.New(term.cfg)
		if err != nil {
			if !term.fs.Crashed() {
				fail("New after a restart: %v (the journal must always parse)", err)
			}
			r.restart(term)
			continue
		}
		if f := componentFloor(a, "app"); floorBelow(f, floor) {
			fail("the floor went down from %q to %q", floor, f)
		} else {
			floor = f
		}
		settled := false
		for pass := 0; pass < 10 && !term.fs.Crashed(); pass++ {
			_, err := a.Update(ctx)
			st := a.Status()
			if st.State == update.StateIdle && st.Last != nil && st.Last.Release == "app@1.1.0" {
				settled = true
				break
			}
			if err != nil && !term.fs.Crashed() && !errors.Is(err, update.ErrNeedsAttention) {
				fail("pass failed without a crash: %v", err)
			}
			if st.State == update.StateProbation && !term.fs.Crashed() {
				// The first sale went through: the vendor vouches for it.
				if err := a.MarkGood(ctx); err != nil && !term.fs.Crashed() {
					fail("MarkGood: %v", err)
				}
			}
		}
		if settled && !term.fs.Crashed() {
			break
		}
		if !term.fs.Crashed() {
			fail("the update stopped in %s without a crash", a.Status().State)
		}
		r.restart(term)
	}
	ops := term.fs.Ops() - start
	term.fs.CrashAfter(0)
	if err := a.Flush(ctx); err != nil {
		fail("final flush: %v", err)
	}
	r.check(t, term, a, fail)
	return ops
}

func (r *crashRun) restart(term *crashTerminal) {
	r.crashes++
	term.fs.Restart(r.loss)
}

func (r *crashRun) check(t *testing.T, term *crashTerminal, a *update.Agent, fail func(string, ...any)) {
	t.Helper()
	st := a.Status()
	outcome := st.Last.Outcome
	// One power cut never changes how an update ends. Several may give a
	// step up after StepAttempts interrupted starts (a refusal before the
	// install, a rollback after it): a correct end too, checked below.
	if outcome != r.sc.want && (r.crashes <= 1 || outcome == transport.OutcomeCommitted) {
		detail := ""
		for _, rep := range term.srv.Reports() {
			detail += "\n  report: " + string(rep.Outcome) + " " + string(rep.Reason) + ": " + rep.Detail
		}
		fail("outcome %s (%s), want %s%s", outcome, st.Last.Reason, r.sc.want, detail)
	}
	app, err := durable.ReadFile(term.fs, "/pos/app.bin", 1<<20, errors.New("big"))
	if err != nil {
		fail("app.bin: %v", err)
	}
	data := map[string]string{}
	if err := walkFiles(term.fs, "/pos/data", data); err != nil {
		fail("data: %v", err)
	}
	version := componentVersion(a, "app")
	switch outcome {
	case transport.OutcomeCommitted:
		want := map[string]string{}
		for p, c := range posData {
			want[p] = c
		}
		want["/pos/data/journal.db"] = "schema=2\n" + posData["/pos/data/journal.db"]
		switch {
		case version != "1.1.0":
			fail("committed, but the journal says app %s", version)
		case !bytes.Equal(app, term.rel.Artifact):
			fail("committed, but app.bin is not the new version (mixed state)")
		case !maps2Equal(data, want):
			fail("committed, but the data is not migrated exactly once: %v", diffKeys(data, want))
		}
	case transport.OutcomeRolledBack, transport.OutcomeRefused:
		switch {
		case version != "1.0.0":
			fail("%s, but the journal says app %s", outcome, version)
		case !bytes.Equal(app, oldApp):
			fail("%s, but app.bin is not the old version (mixed state)", outcome)
		case !maps2Equal(data, posData):
			fail("%s, but the data differs from the backup: %v", outcome, diffKeys(data, posData))
		}
	default:
		fail("outcome %s", outcome)
	}
	var finals []transport.ReportRequest
	for _, rep := range term.srv.Reports() {
		if rep.Release == "app@1.1.0" && rep.Reason != transport.ReasonAttempts && rep.Outcome != transport.OutcomeNeedsAttention {
			finals = append(finals, rep)
		}
	}
	if len(finals) != 1 || finals[0].Outcome != outcome {
		fail("the server holds %d final reports (%v), want one %s", len(finals), finals, outcome)
	}
	for _, dir := range []string{"/state/downloads", "/state/bundles"} {
		if entries, _ := term.fs.ReadDir(dir); len(entries) > 0 {
			fail("%s holds %d leftovers", dir, len(entries))
		}
	}
}

func TestPowerCuts(t *testing.T) {
	var total, runs atomic.Int64
	if *crashReplay != "" {
		r := parseReplay(t, *crashReplay)
		r.run(t)
		t.Logf("%s: %d power cuts, recovered", r, r.crashes)
		return
	}
	step := 1
	if testing.Short() {
		step = 4
	}
	for _, sc := range crashScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			dry := &crashRun{sc: sc, seed: 1}
			n := dry.run(t)
			for _, loss := range []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome} {
				for k := 1; k <= n; k += step {
					r := &crashRun{sc: sc, loss: loss, point: k, seed: seedOf(sc.name, loss, k)}
					r.run(t)
					total.Add(int64(r.crashes))
					runs.Add(1)
					if t.Failed() {
						return
					}
				}
			}
		})
	}
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("%d power cuts in %d runs over %d scenarios, every one recovered", total.Load(), runs.Load(), len(crashScenarios))
		}
	})
}

func seedOf(name string, loss durabletest.Loss, k int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%d", name, loss, k)
	return h.Sum64() % 1_000_000
}

func parseReplay(t *testing.T, s string) *crashRun {
	var name, loss string
	var k int
	var seed uint64
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		t.Fatalf("-crash.replay=%q: want scenario/loss/point/seed", s)
	}
	name, loss = parts[0], parts[1]
	fmt.Sscan(parts[2], &k)
	fmt.Sscan(parts[3], &seed)
	for _, sc := range crashScenarios {
		if sc.name == name {
			l := durabletest.LoseUnsynced
			if loss == durabletest.LoseSome.String() {
				l = durabletest.LoseSome
			}
			return &crashRun{sc: sc, loss: l, point: k, seed: seed}
		}
	}
	t.Fatalf("no scenario %q", name)
	return nil
}

func componentVersion(a *update.Agent, name string) string {
	for _, c := range a.Status().Components {
		if c.Name == name {
			return c.Version
		}
	}
	return ""
}

func componentFloor(a *update.Agent, name string) string {
	for _, c := range a.Status().Components {
		if c.Name == name {
			return c.Floor
		}
	}
	return ""
}

// floorBelow reports whether floor f is lower than g ("" is lowest).
func floorBelow(f, g string) bool {
	switch {
	case g == "":
		return false
	case f == "":
		return true
	}
	less, err := version.Less(f, g)
	return err != nil || less
}

func walkFiles(fsys durable.FS, dir string, out map[string]string) error {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if err := walkFiles(fsys, p, out); err != nil {
				return err
			}
			continue
		}
		if e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		b, err := durable.ReadFile(fsys, p, 1<<20, errors.New("big"))
		if err != nil {
			return err
		}
		out[p] = string(b)
	}
	return nil
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func diffKeys(got, want map[string]string) []string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			out = append(out, "missing "+k)
		} else if g != v {
			out = append(out, fmt.Sprintf("%s differs (%d bytes, want %d)", k, len(g), len(v)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	slices.Sort(out)
	return out
}
