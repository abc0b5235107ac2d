package update_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// committingInstaller stops the agent dead right after its Commit made the
// install permanent: the power cut between Commit and the journal.
type committingInstaller struct {
	*fakeInstaller
	cancel    func()
	failFirst int // Commit fails this many times first
	mu        sync.Mutex
	calls     int
}

func (c *committingInstaller) Commit(ctx context.Context, a *update.Artifact) error {
	c.mu.Lock()
	c.calls++
	n := c.calls
	c.mu.Unlock()
	if n <= c.failFirst {
		return errors.New("bootloader refused to mark the slot good")
	}
	if err := c.fakeInstaller.Commit(ctx, a); err != nil {
		return err
	}
	if c.cancel != nil && n == c.failFirst+1 {
		c.cancel()
		return ctx.Err()
	}
	return nil
}

func TestCrashAfterCommitGoesForward(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 20_000)
	f.publish(r)
	ctx, cancel := context.WithCancel(context.Background())
	checks := 0
	inst := &committingInstaller{fakeInstaller: f.inst, cancel: cancel}
	cfg := f.config(func(c *update.Config) {
		c.Installer = inst
		c.Checks = []verify.Check{{Name: "sign-in", Run: func(context.Context) error {
			checks++
			if checks > 1 {
				return errors.New("a flaky sign-in after the restart")
			}
			return nil
		}}}
	})
	a, _ := update.New(cfg)
	if _, err := a.Update(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pass: %v", err)
	}
	if st := a.Status(); st.State != update.StateCommitting {
		t.Fatalf("state %s after the cut, want committing", st.State)
	}
	a2, _ := update.New(cfg)
	res := mustUpdate(t, a2)
	if res.Outcome != transport.OutcomeCommitted || checks != 1 {
		t.Fatalf("resumed: %+v after %d check runs; want committed without checking again", res, checks)
	}
	if _, rollbacks, _ := f.inst.counts(); rollbacks != 0 || !bytes.Equal(f.inst.bytes(), r.Artifact) {
		t.Errorf("rolled back after the commit, or not on the new version")
	}
}

func TestCommitFailureNeedsAttention(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	a := f.agent(func(c *update.Config) { c.Installer = &committingInstaller{fakeInstaller: f.inst, failFirst: 2} })
	for i := 0; i < 2; i++ {
		res, err := a.Update(context.Background())
		if !errors.Is(err, update.ErrNeedsAttention) || res.Outcome != transport.OutcomeNeedsAttention {
			t.Fatalf("pass %d: %+v, %v; want needs attention", i, res, err)
		}
		if st := a.Status(); st.State != update.StateCommitting {
			t.Fatalf("state %s, want committing (never rolled back)", st.State)
		}
	}
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("third pass: %+v", res)
	}
	var outcomes []transport.Outcome
	for _, r := range f.srv.Reports() {
		outcomes = append(outcomes, r.Outcome)
	}
	if len(outcomes) != 2 || outcomes[0] != transport.OutcomeNeedsAttention || outcomes[1] != transport.OutcomeCommitted {
		t.Errorf("reports %v, want needs_attention then committed", outcomes)
	}
}

// TestBootLoopRollsBack: a new version that kills the terminal during its
// checks is rolled back after StepAttempts, not retried forever.
func TestBootLoopRollsBack(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	var crashes atomic.Int32
	var cfg update.Config
	for boot := 0; ; boot++ {
		ctx, cancel := context.WithCancel(context.Background())
		cfg = f.config(func(c *update.Config) {
			c.StepAttempts = 3
			c.Checks = []verify.Check{{Name: "starts", Run: func(ctx context.Context) error {
				crashes.Add(1)
				cancel() // the watchdog resets the terminal
				<-ctx.Done()
				return ctx.Err()
			}}}
		})
		a, err := update.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Update(ctx)
		cancel()
		if err == nil {
			if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonHealth {
				t.Fatalf("boot %d: %+v, want rolled back for health", boot, res)
			}
			break
		}
		if boot > 5 {
			t.Fatalf("still looping after %d boots: %v", boot, err)
		}
	}
	if n := crashes.Load(); n != 3 {
		t.Errorf("checks crashed the terminal %d times, want 3", n)
	}
}

// TestJunkCannotEvictAFailedRelease: unverifiable bundles are remembered
// apart from releases that failed, so a flood of junk never makes the
// agent install a known-bad release again.
func TestJunkCannotEvictAFailedRelease(t *testing.T) {
	f := newFixture(t)
	bad := f.release("1.1.0", 20_000)
	f.publish(bad)
	a := f.agent(func(c *update.Config) {
		c.MaxAttempts = 1
		c.Checks = []verify.Check{{Name: "sign-in", Run: func(context.Context) error { return errors.New("refused") }}}
	})
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeRolledBack {
		t.Fatal(res)
	}
	src := &offering{Source: f.client}
	a2 := f.agent(func(c *update.Config) { c.Source = src; c.MaxAttempts = 1 })
	for round := 0; round < 10; round++ {
		src.offers = nil
		for i := 0; i < 7; i++ {
			src.offers = append(src.offers, transport.Offer{Bundle: []byte(`{"junk":` + string(rune('0'+i)) + `}`)})
		}
		src.offers = append(src.offers, transport.Offer{Bundle: bad.Bundle})
		mustUpdate(t, a2)
	}
	if installs, _, _ := f.inst.counts(); installs != 1 {
		t.Errorf("a release that failed was installed %d times", installs)
	}
}

func TestTooManyOffersAreCut(t *testing.T) {
	f := newFixture(t)
	src := &offering{Source: f.client}
	for i := 0; i < 50; i++ {
		src.offers = append(src.offers, transport.Offer{Bundle: []byte(`"junk ` + string(rune('A'+i)) + `"`)})
	}
	mustUpdate(t, f.agent(func(c *update.Config) { c.Source = src }))
	if n := len(f.srv.Reports()); n != 8 {
		t.Errorf("%d refusals for 50 offers, want the first 8 only", n)
	}
}

func TestExpiredSigningKeyIsReportedAsExpired(t *testing.T) {
	f := newFixture(t)
	short, err := transporttest.NewKeys(f.Now().Add(-48*time.Hour), f.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f.keys = &transporttest.Keys{Root: f.keys.Root, Signing: short.Signing, Cert: certify(t, f.keys, short)}
	r := f.release("1.1.0", 10_000, func(m *verify.Manifest) { m.Issued = f.Now().Add(-24 * time.Hour) })
	a := f.agent(func(c *update.Config) {
		c.Source = &offering{Source: f.client, offers: []transport.Offer{{Bundle: r.Bundle}}}
	})
	res := mustUpdate(t, a)
	if res.Reason != transport.ReasonExpired {
		t.Errorf("reason %s (%v), want expired", res.Reason, res.Err)
	}
}

// certify has the fixture's root certify other's signing key for other's
// validity period (the one NewKeys gave it).
func certify(t *testing.T, root, other *transporttest.Keys) verify.Envelope {
	t.Helper()
	b, err := verify.ParseBundle(mustBundle(t, other))
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify.ParseKeyCert(b.Keys[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	return transporttest.SignEnvelope(root.Root, verify.PayloadSigningKey, mustJSON(t, c))
}

func mustBundle(t *testing.T, k *transporttest.Keys) []byte {
	t.Helper()
	r, err := k.NewRelease(verify.Manifest{Component: "x", Version: "1.0.0"}, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return r.Bundle
}

func TestObserveSeesARefusal(t *testing.T) {
	f := newFixture(t)
	var seen []update.Status
	a := f.agent(func(c *update.Config) {
		c.Source = &offering{Source: f.client, offers: []transport.Offer{{Bundle: []byte(`"junk"`)}}}
		c.Observe = func(s update.Status) { seen = append(seen, s) }
	})
	mustUpdate(t, a)
	if len(seen) != 1 || seen[0].State != update.StateIdle || seen[0].Last == nil || seen[0].Last.Outcome != transport.OutcomeRefused {
		t.Errorf("observed %+v, want one idle status with the refusal", seen)
	}
}

// TestNewRootsAfterInstall: the new firmware trusts other roots, so the
// stored bundle no longer verifies when the agent restarts mid-update; past
// the install the journal is trusted and the update finishes.
func TestNewRootsAfterInstall(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 20_000)
	f.publish(r)
	ctx, cancel := context.WithCancel(context.Background())
	f.inst.during = func(ctx context.Context) error { cancel(); return ctx.Err() }
	a := f.agent()
	if _, err := a.Update(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	f.inst.during = nil
	a2 := f.agent(func(c *update.Config) { c.Keys = mustRing(t) })
	if res := mustUpdate(t, a2); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("after the restart with new roots: %+v", res)
	}
	if !bytes.Equal(f.inst.bytes(), r.Artifact) {
		t.Error("not on the new version")
	}
}

func TestNewCleansWhatAPowerCutLeft(t *testing.T) {
	f := newFixture(t)
	f.agent()
	for _, p := range []string{".journal.json.tmp-1234", "outbox/.abc-refused.json.tmp-9", "bundles/0123.json"} {
		writeFile(t, filepath.Join(f.state, p), "half written")
	}
	f.agent()
	for _, p := range []string{".journal.json.tmp-1234", "outbox/.abc-refused.json.tmp-9", "bundles/0123.json"} {
		if _, err := os.Stat(filepath.Join(f.state, p)); !os.IsNotExist(err) {
			t.Errorf("%s survived New", p)
		}
	}
}

// TestReportThatCannotBeQueuedKeepsTheOutcome: if the outbox cannot take
// the final report, the journal keeps the ended update until it can.
func TestReportThatCannotBeQueuedKeepsTheOutcome(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	a := f.agent()
	box := filepath.Join(f.state, "outbox")
	os.RemoveAll(box)
	writeFile(t, box, "not a directory")
	if _, err := a.Update(context.Background()); err == nil {
		t.Fatal("Update succeeded without a place for its report")
	}
	if st := a.Status(); st.State != update.StateCommitted {
		t.Fatalf("state %s, want committed kept until reported", st.State)
	}
	os.Remove(box)
	os.Mkdir(box, 0o700)
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("retry: %+v", res)
	}
	if n := len(f.srv.Reports()); n != 1 {
		t.Errorf("%d reports, want 1", n)
	}
}

// TestClosedInstallGateDoesNotRehash: while the install gate stays closed
// after a restart, passes neither fetch nor hash the artifact again.
func TestClosedInstallGateDoesNotRehash(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 40_000))
	gate := func(ctx context.Context, req update.GateRequest) error {
		if req.Stage == update.StageInstall {
			return update.NotNow(time.Hour, "outside the install window")
		}
		return nil
	}
	if res := mustUpdate(t, f.agent(func(c *update.Config) { c.Gate = gate })); res.State != update.StateDownloaded {
		t.Fatal(res)
	}
	progress := 0
	a := f.agent(func(c *update.Config) { c.Gate = gate; c.Progress = func(update.Progress) { progress++ } })
	for i := 0; i < 3; i++ {
		if res := mustUpdate(t, a); res.State != update.StateDownloaded || res.Waiting == nil {
			t.Fatalf("pass %d: %+v", i, res)
		}
	}
	if progress != 0 {
		t.Errorf("the artifact was verified again %d times while the gate was closed", progress)
	}
}

// TestRunWaitsAreBounded: a gate that says "now" (0) cannot make Run spin,
// and a server's absurd Retry-After cannot park the agent for years.
func TestRunWaitsAreBounded(t *testing.T) {
	t.Run("gate says zero", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t)
			f.publish(f.release("1.1.0", 20_000))
			var asked atomic.Int32
			a := f.agent(func(c *update.Config) {
				c.Now = nil
				c.Gate = func(context.Context, update.GateRequest) error { asked.Add(1); return update.NotNow(0, "busy") }
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a.Run(ctx)
			if n := asked.Load(); n > 12 {
				t.Errorf("gate asked %d times in 10s, want about one a second", n)
			}
		})
	})
	t.Run("server says forever", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t)
			src := &retryAfter{Source: f.client, seconds: math.MaxInt}
			a := f.agent(func(c *update.Config) { c.Now = nil; c.Source = src })
			ctx, cancel := context.WithTimeout(context.Background(), 27*time.Hour)
			defer cancel()
			a.Run(ctx)
			if n := src.checks.Load(); n != 2 {
				t.Errorf("%d checks in 27h, want 2 (the wait is capped at a day)", n)
			}
		})
	})
}

type retryAfter struct {
	update.Source
	seconds int
	checks  atomic.Int32
}

func (r *retryAfter) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	r.checks.Add(1)
	return &transport.CheckResponse{RetryAfterSeconds: r.seconds}, nil
}

func TestConcurrentFlushSendsEachReportOnce(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	f.srv.FailNextCall(transporttest.CallReport, 1, transport.CodeUnavailable)
	a := f.agent()
	mustUpdate(t, a)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- a.Flush(context.Background()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Flush: %v", err)
		}
	}
	sent := 0
	for _, r := range f.srv.Requests() {
		if r.Call == transporttest.CallReport && r.Code == "" {
			sent++
		}
	}
	if sent != 1 {
		t.Errorf("report sent %d times, want once", sent)
	}
}
