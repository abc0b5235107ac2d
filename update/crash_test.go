package update_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
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
//	go test -short -run TestPowerCuts ./update       # every eighth crash point
//	go test -run TestPowerCuts ./update -crash.replay=commit/lose-some/17/2891
var crashReplay = flag.String("crash.replay", "", "replay one crash run: scenario/loss/crash point/seed")

// crashScenario is an update whose end is known.
type crashScenario struct {
	name      string
	checkFail bool // the sign-in check fails
	migFail   bool // the migration fails
	probation bool // committed only once marked good (the first sale)
	beats     bool // committed after two heartbeats, counted across restarts
	ab        bool // an A/B installer that needs a reboot, under a one-shot bootloader
	want      transport.Outcome
}

var crashScenarios = []crashScenario{
	{name: "commit", want: transport.OutcomeCommitted},
	{name: "health-rollback", checkFail: true, want: transport.OutcomeRolledBack},
	{name: "migration-rollback", migFail: true, want: transport.OutcomeRolledBack},
	{name: "probation-commit", probation: true, want: transport.OutcomeCommitted},
	{name: "probation-beats", beats: true, want: transport.OutcomeCommitted},
	{name: "ab-reboot", ab: true, want: transport.OutcomeCommitted},
}

// The terminal starts at 1.0.8 with an anti-rollback floor of 1.0.7; the
// release raises the floor only to 1.0.5, so the floor must stay 1.0.7.
const (
	crashOldVersion = "1.0.8"
	crashFloor      = "1.0.7"
)

var (
	oldApp  = bytes.Repeat([]byte("app 1.0.0 "), 3000)
	posData = map[string]string{
		"/pos/data/journal.db":      strings.Repeat("batch=17 trace=901 amount=12.50\n", 200),
		"/pos/data/esign/0001.sig":  "e-signature 1",
		"/pos/data/esign/0002.sig":  "e-signature 2",
		"/pos/data/params/tms.json": `{"merchant":"M0042","host":"10.1.2.3"}`,
	}
)

// crashTerminal is one payment terminal whose every byte lives on a
// CrashFS.
type crashTerminal struct {
	net   *deadSource
	fs    *durabletest.CrashFS
	srv   *transporttest.Server
	cfg   update.Config
	rel   *transporttest.Release
	beats *beats       // heartbeats since this boot
	ab    *abInstaller // the A/B installer, in the ab scenario
}

// app returns the bytes the terminal boots: app.bin, or the A/B slot the
// bootloader will start.
func (term *crashTerminal) app() ([]byte, error) {
	if term.ab != nil {
		return term.ab.slot(term.ab.bootTarget())
	}
	return durable.ReadFile(term.fs, "/pos/app.bin", 1<<20, errors.New("big"))
}

// boot is the terminal starting: the bootloader picks the slot.
func (term *crashTerminal) boot() {
	term.beats.n.Store(0)
	if term.ab != nil {
		term.ab.boot()
	}
}

// deadSource is the terminal's network: it goes when the power goes, and
// with it the processor: the pass's context is cancelled, so nothing keeps
// running (retrying, backing off) on a terminal that is off.
type deadSource struct {
	update.Source
	fs     *durabletest.CrashFS
	mu     sync.Mutex
	cancel context.CancelFunc // the running pass's
}

func (d *deadSource) dead() bool {
	if !d.fs.Crashed() {
		return false
	}
	d.mu.Lock()
	if d.cancel != nil {
		d.cancel()
	}
	d.mu.Unlock()
	return true
}

func (d *deadSource) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	if d.dead() {
		return nil, durabletest.ErrCrashed
	}
	return d.Source.Check(ctx, req)
}

func (d *deadSource) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	if d.dead() {
		return nil, durabletest.ErrCrashed
	}
	return d.Source.OpenArtifact(ctx, req)
}

func (d *deadSource) Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	if d.dead() {
		return nil, durabletest.ErrCrashed
	}
	return d.Source.Report(ctx, req)
}

// abInstaller writes the artifact to the inactive slot and asks for a
// reboot. The bootloader tries a new slot once: if the agent has not
// committed it by the next boot, the old slot starts again.
type abInstaller struct {
	fs     *durabletest.CrashFS
	booted string // the slot running, in RAM: "a" or "b"
}

type bootState struct {
	Active string `json:"active"`
	Try    string `json:"try,omitempty"`
}

func (ab *abInstaller) state() bootState {
	var st bootState
	b, err := durable.ReadFile(ab.fs, "/pos/boot.json", 4096, errors.New("big"))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		panic(fmt.Sprintf("boot.json: %v", err)) // written atomically: never torn
	}
	return st
}

func (ab *abInstaller) setState(st bootState) error {
	b, _ := json.Marshal(st)
	return durable.WriteFile(ab.fs, "/pos/boot.json", b, 0o644)
}

func (ab *abInstaller) slot(name string) ([]byte, error) {
	return durable.ReadFile(ab.fs, "/pos/slot-"+name+".bin", 1<<20, errors.New("big"))
}

// bootTarget is the slot the next boot starts, as the bootloader decides.
func (ab *abInstaller) bootTarget() string {
	st := ab.state()
	if st.Try != "" {
		return st.Try
	}
	return st.Active
}

// boot is the bootloader: a slot to try runs once, then is forgotten.
func (ab *abInstaller) boot() {
	st := ab.state()
	ab.booted = st.Active
	if st.Try != "" {
		ab.booted = st.Try
		st.Try = ""
		if err := ab.setState(st); err != nil {
			panic(err)
		}
	}
}

func other(slot string) string {
	if slot == "a" {
		return "b"
	}
	return "a"
}

func (ab *abInstaller) Install(ctx context.Context, a *update.Artifact) error {
	// A cut in an earlier call may have left a temporary slot image: an
	// installer cleans up after itself, as fileinstall does.
	if _, err := durable.CleanTemp(ab.fs, "/pos"); err != nil {
		return err
	}
	b, err := durable.ReadFile(ab.fs, a.Path, 1<<20, errors.New("big"))
	if err != nil {
		return err
	}
	st := ab.state()
	target := other(st.Active)
	if err := durable.WriteFile(ab.fs, "/pos/slot-"+target+".bin", b, 0o755); err != nil {
		return err
	}
	st.Try = target
	if err := ab.setState(st); err != nil {
		return err
	}
	return update.ErrRebootRequired
}

func (ab *abInstaller) Rollback(ctx context.Context, a *update.Artifact) error {
	if _, err := durable.CleanTemp(ab.fs, "/pos"); err != nil {
		return err
	}
	st := ab.state()
	st.Try = "" // the active slot stays the old one
	return ab.setState(st)
}

func (ab *abInstaller) Commit(ctx context.Context, a *update.Artifact) error {
	if _, err := durable.CleanTemp(ab.fs, "/pos"); err != nil {
		return err
	}
	return ab.setState(bootState{Active: ab.booted})
}

func (ab *abInstaller) Running(ctx context.Context, component string) (string, error) {
	b, err := ab.slot(ab.booted)
	if err != nil {
		return "", err
	}
	if bytes.Equal(b, oldApp) {
		return crashOldVersion, nil
	}
	return "1.1.0", nil
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
	if sc.ab {
		for _, f := range []struct{ name, content string }{
			{"/pos/slot-a.bin", string(oldApp)}, {"/pos/slot-b.bin", ""}, {"/pos/boot.json", `{"active":"a"}`},
		} {
			if err := durable.WriteFile(fsys, f.name, []byte(f.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A terminal that has been updated before: its journal holds a floor.
	journal := fmt.Sprintf(`{"schema":1,"components":{"app":{"version":%q,"floor":%q}}}`, crashOldVersion, crashFloor)
	if err := durable.WriteFile(fsys, "/state/journal.json", []byte(journal), 0o600); err != nil {
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
	switch {
	case sc.probation:
		probation = update.Probation{UntilMarkedGood: true}
	case sc.beats:
		probation = update.Probation{Beats: 2}
	}
	term := &crashTerminal{fs: fsys, srv: srv, rel: rel, beats: &beats{}}
	var inst update.Installer = &fileinstall.Installer{Path: "/pos/app.bin", FS: fsys}
	if sc.ab {
		term.ab = &abInstaller{fs: fsys}
		inst = term.ab
	}
	term.net = &deadSource{Source: client, fs: fsys}
	term.cfg = update.Config{
		Source:      term.net,
		Keys:        ring,
		FS:          fsys,
		StateDir:    "/state",
		Installer:   inst,
		Device:      update.Device{Model: "P300"},
		Installed:   map[string]string{"app": crashOldVersion}, // read only without a journal
		Backups:     []backup.Hook{hook},
		Migrations:  []update.Migration{mig},
		Checks:      []verify.Check{check},
		Probation:   probation,
		Beats:       term.beats,
		Now:         func() time.Time { return transporttest.DefaultIssued().AddDate(1, 0, 0) },
		MaxAttempts: 1,
	}
	return term
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
	floor := crashFloor
	var a *update.Agent
	for boot := 0; ; boot++ {
		if boot > 40 {
			fail("the update never settled")
		}
		term.fs.CrashAfter(0) // a cut armed before a clean reboot did not happen
		term.boot()
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
		r.checkConsistent(term, a, fail)
		settled, reboot := false, false
		for pass := 0; pass < 10 && !term.fs.Crashed(); pass++ {
			passCtx, cancel := context.WithCancel(ctx)
			term.net.mu.Lock()
			term.net.cancel = cancel
			term.net.mu.Unlock()
			res, err := a.Update(passCtx)
			cancel()
			term.beats.n.Add(1) // a heartbeat went through between passes
			st := a.Status()
			if st.State == update.StateIdle && st.Last != nil && st.Last.Release == "app@1.1.0" {
				settled = true
				break
			}
			if res.RebootRequired {
				reboot = true
				break
			}
			if err != nil && !term.fs.Crashed() && !errors.Is(err, update.ErrNeedsAttention) {
				fail("pass failed without a crash: %v", err)
			}
			if st.State == update.StateProbation && r.sc.probation && !term.fs.Crashed() {
				// The first sale went through: the vendor vouches for it.
				if err := a.MarkGood(ctx); err != nil && !term.fs.Crashed() {
					fail("MarkGood: %v", err)
				}
			}
		}
		switch {
		case term.fs.Crashed():
			r.restart(term)
		case reboot:
			term.fs.Persist() // a clean reboot flushes the disks
		case settled:
			ops := term.fs.Ops() - start
			term.fs.CrashAfter(0)
			if err := a.Flush(ctx); err != nil {
				fail("final flush: %v", err)
			}
			r.check(t, term, a, fail)
			return ops
		default:
			fail("the update stopped in %s without a crash", a.Status().State)
		}
	}
}

func (r *crashRun) restart(term *crashTerminal) {
	r.crashes++
	term.fs.Restart(r.loss)
}

// checkConsistent checks, after any start, that an idle terminal runs what
// its journal says: never a mixed state, even between updates.
func (r *crashRun) checkConsistent(term *crashTerminal, a *update.Agent, fail func(string, ...any)) {
	if a.Status().State != update.StateIdle || term.fs.Crashed() {
		return
	}
	app, err := term.app()
	if err != nil {
		fail("reading the app: %v", err)
	}
	switch v := componentVersion(a, "app"); {
	case v == crashOldVersion && !bytes.Equal(app, oldApp):
		fail("idle on %s but the terminal boots other bytes (mixed state)", v)
	case v == "1.1.0" && !bytes.Equal(app, term.rel.Artifact):
		fail("idle on %s but the terminal boots other bytes (mixed state)", v)
	}
}

func (r *crashRun) check(t *testing.T, term *crashTerminal, a *update.Agent, fail func(string, ...any)) {
	t.Helper()
	st := a.Status()
	outcome, reason := st.Last.Outcome, st.Last.Reason
	var finals []transport.ReportRequest
	for _, rep := range term.srv.Reports() {
		if rep.Release == "app@1.1.0" && rep.Reason != transport.ReasonAttempts && rep.Outcome != transport.OutcomeNeedsAttention {
			finals = append(finals, rep)
		}
	}
	if len(finals) != 1 || finals[0].Outcome != outcome {
		fail("the server holds %d final reports (%v), want one %s", len(finals), finals, outcome)
	}
	final := finals[0]
	switch {
	case outcome == r.sc.want:
	case r.sc.ab && outcome == transport.OutcomeRolledBack && reason == transport.ReasonBoot && r.crashes > 0:
		// A cut after the reboot into the new slot, before it was
		// committed: the one-shot bootloader started the old slot again,
		// and the agent noticed.
	case r.crashes >= r.stepAttempts(term) && outcome != transport.OutcomeCommitted &&
		(strings.Contains(final.Detail, "interrupted") || strings.Contains(final.Detail, "restarted")):
		// A step cut StepAttempts times is given up: a correct end too.
	default:
		fail("outcome %s (%s: %s) after %d power cuts, want %s", outcome, reason, final.Detail, r.crashes, r.sc.want)
	}
	app, err := term.app()
	if err != nil {
		fail("app: %v", err)
	}
	data := map[string]string{}
	if err := walkFiles(term.fs, "/pos/data", data); err != nil {
		fail("data: %v", err)
	}
	version := componentVersion(a, "app")
	if f := componentFloor(a, "app"); f != crashFloor {
		fail("the floor is %q, want %s (the higher of the terminal's and the release's)", f, crashFloor)
	}
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
			fail("committed, but the terminal does not boot the new version (mixed state)")
		case !maps2Equal(data, want):
			fail("committed, but the data is not migrated exactly once: %v", diffKeys(data, want))
		}
	case transport.OutcomeRolledBack, transport.OutcomeRefused:
		switch {
		case version != crashOldVersion:
			fail("%s, but the journal says app %s", outcome, version)
		case !bytes.Equal(app, oldApp):
			fail("%s, but the terminal does not boot the old version (mixed state)", outcome)
		case !maps2Equal(data, posData):
			fail("%s, but the data differs from the backup: %v", outcome, diffKeys(data, posData))
		}
	default:
		fail("outcome %s", outcome)
	}
	for _, dir := range []string{"/state/downloads", "/state/bundles"} {
		if entries, _ := term.fs.ReadDir(dir); len(entries) > 0 {
			fail("%s holds %d leftovers", dir, len(entries))
		}
	}
	entries, _ := term.fs.ReadDir("/pos")
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") || strings.Contains(e.Name(), ".prev-") || strings.Contains(e.Name(), ".absent-") {
			fail("/pos holds %s, left by the installer", e.Name())
		}
	}
}

func (r *crashRun) stepAttempts(term *crashTerminal) int {
	if n := term.cfg.StepAttempts; n > 0 {
		return n
	}
	return update.DefaultStepAttempts
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
		step = 8
	}
	for _, sc := range crashScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			dry := &crashRun{sc: sc, seed: 1}
			n := dry.run(t)
			for _, loss := range []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome, durabletest.LoseAny} {
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
			for _, l := range []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome, durabletest.LoseAny} {
				if loss == l.String() {
					return &crashRun{sc: sc, loss: l, point: k, seed: seed}
				}
			}
			t.Fatalf("no loss %q", loss)
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
