package update_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

func TestUpdateCommits(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 50_000, func(m *verify.Manifest) { m.From = []string{"~1.0"}; m.Floor = "1.0.5" })
	f.publish(r)
	var states []update.State
	a := f.agent(func(c *update.Config) {
		c.Observe = func(s update.Status) { states = append(states, s.State) }
	})

	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeCommitted || res.Reason != transport.ReasonOK || res.Err != nil {
		t.Fatalf("Update = %+v, want committed", res)
	}
	if res.Release != "firmware@1.1.0" || res.From != "1.0.0" || res.To != "1.1.0" {
		t.Errorf("Result names %s %s→%s", res.Release, res.From, res.To)
	}
	if !bytes.Equal(f.inst.bytes(), r.Artifact) {
		t.Error("installed bytes differ from the release's artifact")
	}
	if _, _, commits := f.inst.counts(); commits != 1 {
		t.Errorf("Commit called %d times, want 1", commits)
	}
	want := []update.State{update.StateOffered, update.StateDownloading, update.StateDownloaded, update.StateBackingUp,
		update.StateInstalling, update.StateVerifying, update.StateCommitting, update.StateCommitted, update.StateIdle}
	if strings.Join(stateNames(states), " ") != strings.Join(stateNames(want), " ") {
		t.Errorf("states %v, want %v", states, want)
	}
	st := a.Status()
	if st.State != update.StateIdle || f.component(a, "firmware") != "1.1.0" {
		t.Errorf("Status = %+v, want idle on 1.1.0", st)
	}
	for _, c := range st.Components {
		if c.Name == "firmware" && c.Floor != "1.0.5" {
			t.Errorf("floor %q, want the release's 1.0.5", c.Floor)
		}
	}
	if st.Last == nil || st.Last.Outcome != transport.OutcomeCommitted {
		t.Errorf("Last = %+v", st.Last)
	}
	if got := readFile(t, filepath.Join(f.data, "journal.db")); !strings.HasPrefix(got, "migrated ") {
		t.Errorf("data after commit = %q, want migrated", got)
	}
	reports := f.srv.Reports()
	if len(reports) != 1 || reports[0].Outcome != transport.OutcomeCommitted || reports[0].Reason != transport.ReasonOK ||
		reports[0].From != "1.0.0" || reports[0].To != "1.1.0" {
		t.Fatalf("reports = %+v", reports)
	}
	if left := f.downloads(); len(left) != 0 {
		t.Errorf("downloads left behind: %v", left)
	}

	// Nothing newer: the next pass does nothing.
	res = mustUpdate(t, a)
	if res.Outcome != "" || res.Release != "" {
		t.Errorf("second Update = %+v, want nothing", res)
	}
	if n := len(f.srv.Reports()); n != 1 {
		t.Errorf("%d reports after a quiet pass, want 1", n)
	}
}

func stateNames(s []update.State) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func TestHealthFailureRollsBackAndRestoresData(t *testing.T) {
	f := newFixture(t)
	before := readFile(t, filepath.Join(f.data, "journal.db"))
	r := f.release("1.1.0", 30_000)
	f.publish(r)
	a := f.agent(func(c *update.Config) {
		c.Checks = []verify.Check{
			{Name: "starts", Run: func(context.Context) error { return nil }},
			{Name: "payment-app", Run: func(context.Context) error { return errors.New("host refused the working key") }},
		}
	})
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonHealth {
		t.Fatalf("Update = %+v, want rolled back for health", res)
	}
	var check *verify.CheckError
	if !errors.As(res.Err, &check) || check.Name != "payment-app" {
		t.Errorf("Err = %v, want the failed check, typed", res.Err)
	}
	if res.State != update.StateIdle {
		t.Errorf("State = %s after the update ended, want idle", res.State)
	}
	if !bytes.Equal(f.inst.bytes(), []byte("factory")) {
		t.Errorf("installed = %q, want the factory version back", f.inst.bytes())
	}
	if got := readFile(t, filepath.Join(f.data, "journal.db")); got != before {
		t.Errorf("data after rollback = %q, want %q restored", got, before)
	}
	if v := f.component(a, "firmware"); v != "1.0.0" {
		t.Errorf("version %s after rollback, want 1.0.0", v)
	}
	reports := f.srv.Reports()
	if len(reports) != 1 || reports[0].Outcome != transport.OutcomeRolledBack || reports[0].Phase != string(update.StateVerifying) ||
		!strings.Contains(reports[0].Detail, "working key") {
		t.Fatalf("reports = %+v", reports)
	}
	if before2 := readFile(t, filepath.Join(f.data, "journal.db")); before2 != before {
		t.Fatal("data changed")
	}

	// It is tried once more (MaxAttempts 2), fails again, and is given up.
	if res = mustUpdate(t, a); res.Outcome != transport.OutcomeRolledBack {
		t.Fatalf("second attempt: %+v", res)
	}
	calls := len(f.artifactCalls())
	if res = mustUpdate(t, a); res.Outcome != "" || len(f.artifactCalls()) != calls {
		t.Errorf("release retried after its attempts: %+v", res)
	}
	if installs, _, _ := f.inst.counts(); installs != 2 {
		t.Errorf("%d installs, want 2", installs)
	}
	var got []string
	for _, r := range f.srv.Reports() {
		got = append(got, string(r.Outcome)+"/"+string(r.Reason))
	}
	if strings.Join(got, " ") != "rolled_back/health_failed rolled_back/health_failed refused/attempts_exhausted" {
		t.Errorf("reports %v", got)
	}
}

// TestFailedSignInIsAFailedUpdate: the built-in sign-in check failing
// rolls the update back with its own reason code, after the echo test and
// the vendor's function tests passed.
func TestFailedSignInIsAFailedUpdate(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	var ran []string
	ok := func(name string) func(context.Context) error {
		return func(context.Context) error { ran = append(ran, name); return nil }
	}
	a := f.agent(func(c *update.Config) {
		c.Checks = []verify.Check{
			verify.FunctionTest("card reader", 0, ok("card reader")),
			verify.Echo(ok("echo"), verify.Retry{}),
			verify.SignIn(func(context.Context) error {
				ran = append(ran, "sign-in")
				return errors.New("host refused the working key")
			}, verify.Retry{Attempts: 1}),
		}
	})
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonSignIn || !errors.Is(res.Err, verify.ErrSignIn) {
		t.Fatalf("Update = %+v, want rolled back for sign-in", res)
	}
	if strings.Join(ran, ",") != "card reader,echo,sign-in" {
		t.Errorf("checks ran: %v", ran)
	}
	if v := f.component(a, "firmware"); v != "1.0.0" {
		t.Errorf("version %s after the failed sign-in, want 1.0.0", v)
	}
	if reports := f.srv.Reports(); len(reports) != 1 || reports[0].Reason != transport.ReasonSignIn {
		t.Fatalf("reports = %+v", reports)
	}
}

func TestInstallFailureRollsBack(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	f.inst.failInstall = errors.New("package manager: dependency missing")
	a := f.agent()
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonInstall {
		t.Fatalf("Update = %+v, want rolled back for install", res)
	}
	if _, rollbacks, commits := f.inst.counts(); rollbacks != 1 || commits != 0 {
		t.Errorf("rollbacks %d commits %d", rollbacks, commits)
	}
	if got := readFile(t, filepath.Join(f.data, "journal.db")); strings.HasPrefix(got, "migrated") {
		t.Error("data not restored after a failed install")
	}
}

// TestRefusals checks that every kind of bad release is refused before
// anything is downloaded or installed, with its reason reported.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		offer  func(f *fixture) []byte // the bundle the server offers
		mod    func(c *update.Config)
		reason transport.Reason
		is     error
	}{
		{
			name: "tampered payload",
			offer: func(f *fixture) []byte {
				return tamper(t, f.release("1.1.0", 10_000).Bundle, func(b *verify.Bundle) {
					b.Manifest.Payload = bytes.Replace(b.Manifest.Payload, []byte(`"1.1.0"`), []byte(`"1.9.0"`), 1)
				})
			},
			reason: transport.ReasonSignature, is: verify.ErrSignature,
		},
		{
			name: "unknown signing key",
			offer: func(f *fixture) []byte {
				other, err := transporttest.NewKeys(transporttest.DefaultIssued(), transporttest.DefaultExpires())
				if err != nil {
					t.Fatal(err)
				}
				f.keys = other
				return f.release("1.1.0", 10_000).Bundle
			},
			reason: transport.ReasonUnknownKey, is: verify.ErrUnknownKey,
		},
		{
			name: "unsigned",
			offer: func(f *fixture) []byte {
				return tamper(t, f.release("1.1.0", 10_000).Bundle, func(b *verify.Bundle) { b.Manifest.Signatures = nil })
			},
			reason: transport.ReasonSignature, is: verify.ErrSignature,
		},
		{
			name: "expired",
			offer: func(f *fixture) []byte {
				return f.release("1.1.0", 10_000, func(m *verify.Manifest) {
					m.Issued = f.Now().Add(-48 * time.Hour)
					m.Expires = f.Now().Add(-time.Hour)
				}).Bundle
			},
			reason: transport.ReasonExpired, is: verify.ErrExpired,
		},
		{
			name: "another model",
			offer: func(f *fixture) []byte {
				return f.release("1.1.0", 10_000, func(m *verify.Manifest) { m.Models = []string{"A920"} }).Bundle
			},
			reason: transport.ReasonIncompatible,
		},
		{
			name: "another hardware revision",
			offer: func(f *fixture) []byte {
				return f.release("1.1.0", 10_000, func(m *verify.Manifest) { m.HardwareRevisions = []string{"C"} }).Bundle
			},
			reason: transport.ReasonIncompatible,
		},
		{
			name: "from-version not allowed",
			offer: func(f *fixture) []byte {
				return f.release("1.1.0", 10_000, func(m *verify.Manifest) { m.From = []string{"~0.9"} }).Bundle
			},
			reason: transport.ReasonIncompatible,
		},
		{
			name:   "downgrade",
			offer:  func(f *fixture) []byte { return f.release("0.9.0", 10_000).Bundle },
			reason: transport.ReasonDowngrade, is: verify.ErrDowngrade,
		},
		{
			name:   "too large for the terminal",
			offer:  func(f *fixture) []byte { return f.release("1.1.0", 100_000).Bundle },
			mod:    func(c *update.Config) { c.MaxArtifactSize = 64 << 10 },
			reason: transport.ReasonTooLarge, is: verify.ErrTooLarge,
		},
		{
			name:   "not JSON",
			offer:  func(f *fixture) []byte { return []byte(`"just a string"`) },
			reason: transport.ReasonMalformed, is: verify.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			bundle := tt.offer(f)
			a := f.agent(func(c *update.Config) {
				c.Source = &offering{Source: f.client, offers: []transport.Offer{{Bundle: bundle}}}
				if tt.mod != nil {
					tt.mod(c)
				}
			})
			res := mustUpdate(t, a)
			if res.Outcome != transport.OutcomeRefused || res.Reason != tt.reason {
				t.Fatalf("Update = %+v, want refused with %s", res, tt.reason)
			}
			if tt.is != nil && !errors.Is(res.Err, tt.is) {
				t.Errorf("Err = %v, want %v", res.Err, tt.is)
			}
			if installs, _, _ := f.inst.counts(); installs != 0 {
				t.Error("a refused release was installed")
			}
			if n := len(f.artifactCalls()); n != 0 {
				t.Errorf("%d artifact requests for a refused release", n)
			}
			reports := f.srv.Reports()
			if len(reports) != 1 || reports[0].Outcome != transport.OutcomeRefused || reports[0].Reason != tt.reason {
				t.Errorf("reports = %+v", reports)
			}
			if st := a.Status(); st.State != update.StateIdle || f.component(a, "firmware") != "1.0.0" {
				t.Errorf("status after refusal: %+v", st)
			}
			// Offered again, it is not processed or reported again.
			res = mustUpdate(t, a)
			if res.Outcome != "" || len(f.srv.Reports()) != 1 {
				t.Errorf("refused bundle processed twice: %+v, %d reports", res, len(f.srv.Reports()))
			}
		})
	}
}

func tamper(t *testing.T, bundle []byte, change func(*verify.Bundle)) []byte {
	t.Helper()
	b, err := verify.ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	change(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFloorRefusesLaterDowngrade(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.2.0", 10_000, func(m *verify.Manifest) { m.Floor = "1.2.0" }))
	a := f.agent()
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("first update: %+v", res)
	}
	// A signed downgrade to 1.1.5 is still below the floor 1.2.0 adopted.
	down := f.release("1.1.5", 10_000, func(m *verify.Manifest) { m.Downgrade = true })
	a2 := f.agent(func(c *update.Config) {
		c.Source = &offering{Source: f.client, offers: []transport.Offer{{Bundle: down.Bundle}}}
	})
	res := mustUpdate(t, a2)
	if res.Outcome != transport.OutcomeRefused || res.Reason != transport.ReasonDowngrade {
		t.Fatalf("Update = %+v, want refused as a downgrade", res)
	}
}

func TestCorruptChunk(t *testing.T) {
	t.Run("fetched again and committed", func(t *testing.T) {
		f := newFixture(t)
		r := f.release("1.1.0", 40_000)
		f.publish(r)
		src := &corrupting{Source: f.client, offset: 20_000, n: 2}
		a := f.agent(func(c *update.Config) { c.Source = src })
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("Update = %+v, want committed after refetching the chunk", res)
		}
		if !bytes.Equal(f.inst.bytes(), r.Artifact) {
			t.Error("installed bytes differ")
		}
	})
	t.Run("refused after the attempts", func(t *testing.T) {
		f := newFixture(t)
		r := f.release("1.1.0", 40_000)
		f.publish(r)
		if err := f.srv.CorruptArtifact(r.Digest(), 20_000); err != nil {
			t.Fatal(err)
		}
		a := f.agent(func(c *update.Config) { c.ChunkAttempts = 3 })
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeRefused || res.Reason != transport.ReasonDigest {
			t.Fatalf("Update = %+v, want refused with digest_mismatch", res)
		}
		if !strings.Contains(res.Err.Error(), "chunk 4") {
			t.Errorf("Err = %v, want it to name chunk 4", res.Err)
		}
		if installs, _, _ := f.inst.counts(); installs != 0 {
			t.Error("a corrupt artifact was installed")
		}
		if left := f.downloads(); len(left) != 0 {
			t.Errorf("partial files left after a refusal: %v", left)
		}
	})
}

// TestTruncatedArtifact: a server that keeps cutting the artifact short is
// a network problem, not the release's: the agent keeps what verified and
// tries again every pass, and gives the release up only when it expires.
func TestTruncatedArtifact(t *testing.T) {
	// The engine backs off between attempts: in a bubble, those waits cost
	// no real time.
	synctest.Test(t, truncatedArtifact)
}

func truncatedArtifact(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 40_000, func(m *verify.Manifest) { m.Expires = f.Now().Add(48 * time.Hour) })
	f.publish(r)
	if err := f.srv.TruncateArtifact(r.Digest(), 10_000); err != nil {
		t.Fatal(err)
	}
	a := f.agent()
	for pass := 0; pass < 12; pass++ {
		res, err := a.Update(context.Background())
		var step *update.StepError
		if !errors.As(err, &step) || step.State != update.StateDownloading || res.Outcome != "" {
			t.Fatalf("pass %d: %+v, %v; want a download error and no outcome", pass, res, err)
		}
		f.advance(time.Hour)
	}
	if st := a.Status(); st.State != update.StateDownloading {
		t.Errorf("state %s after failed downloads, want downloading", st.State)
	}
	if n := len(f.srv.Reports()); n != 0 {
		t.Errorf("%d reports for a download that may still succeed", n)
	}
	f.advance(48 * time.Hour)
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRefused || res.Reason != transport.ReasonExpired {
		t.Fatalf("after expiry: %+v, want refused as expired", res)
	}
	if left := f.downloads(); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
}

func TestResumeDownloadFetchesOnlyWhatIsMissing(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 400_000) // 98 chunks of 4 KiB
	f.publish(r)
	ctx, cancel := context.WithCancel(context.Background())
	src := &killing{Source: f.client, after: 200_000, kill: cancel}
	a := f.agent(func(c *update.Config) { c.Source = src })
	if _, err := a.Update(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pass: %v", err)
	}
	if st := a.Status(); st.State != update.StateDownloading {
		t.Fatalf("state %s after the kill, want downloading", st.State)
	}
	first := src.read.Load()

	again := &killing{Source: f.client}
	var start *update.Progress
	a2 := f.agent(func(c *update.Config) {
		c.Source = again
		c.Progress = func(p update.Progress) {
			if start == nil {
				start = &p
			}
		}
	})
	if res := mustUpdate(t, a2); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("resumed pass: %+v", res)
	}
	if !bytes.Equal(f.inst.bytes(), r.Artifact) {
		t.Error("installed bytes differ")
	}
	// The restart fetched what was missing, give or take the pieces the
	// workers were in when the kill came.
	if total, limit := first+again.read.Load(), int64(len(r.Artifact))+4*verify.MinChunkSize; total > limit {
		t.Errorf("fetched %d+%d bytes for %d, want at most %d", first, again.read.Load(), len(r.Artifact), limit)
	}
}

// killing is a Source whose network dies after `after` bytes (if set),
// counting what was read.
type killing struct {
	update.Source
	after int64
	kill  context.CancelFunc
	read  atomic.Int64
}

func (k *killing) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	rc, err := k.Source.OpenArtifact(ctx, req)
	if err != nil {
		return nil, err
	}
	return &killingBody{ReadCloser: rc, k: k}, nil
}

type killingBody struct {
	io.ReadCloser
	k *killing
}

func (b *killingBody) Read(p []byte) (int, error) {
	if b.k.after > 0 {
		left := b.k.after - b.k.read.Load()
		if left <= 0 {
			b.k.kill()
			return 0, context.Canceled
		}
		p = p[:min(int64(len(p)), left)]
	}
	n, err := b.ReadCloser.Read(p)
	b.k.read.Add(int64(n))
	return n, err
}

// TestResumeAfterInterruption stops the agent dead inside each step that
// changes the terminal and checks that a new agent on the same state
// directory finishes the job.
func TestResumeAfterInterruption(t *testing.T) {
	tests := []struct {
		name    string
		arm     func(f *fixture, cancel func(), c *update.Config)
		outcome transport.Outcome
		state   update.State // where the journal stands after the interruption
	}{
		{
			name: "inside install",
			arm: func(f *fixture, cancel func(), c *update.Config) {
				f.inst.during = func(ctx context.Context) error { cancel(); return ctx.Err() }
			},
			outcome: transport.OutcomeCommitted, state: update.StateInstalling,
		},
		{
			name: "inside health checks",
			arm: func(f *fixture, cancel func(), c *update.Config) {
				var fired atomic.Bool
				c.Checks = []verify.Check{{Name: "sign-in", Run: func(ctx context.Context) error {
					if fired.Swap(true) {
						return nil // after the restart the check passes
					}
					cancel()
					<-ctx.Done()
					return ctx.Err()
				}}}
			},
			outcome: transport.OutcomeCommitted, state: update.StateVerifying,
		},
		{
			name: "inside rollback",
			arm: func(f *fixture, cancel func(), c *update.Config) {
				c.Checks = []verify.Check{{Name: "sign-in", Run: func(ctx context.Context) error { return errors.New("refused") }}}
				c.Backups = append(c.Backups, cancelingHook{cancel})
			},
			outcome: transport.OutcomeRolledBack, state: update.StateRollingBack,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := readFile(t, filepath.Join(f.data, "journal.db"))
			r := f.release("1.1.0", 30_000)
			f.publish(r)
			ctx, cancel := context.WithCancel(context.Background())
			var once sync.Once
			stop := func() { once.Do(cancel) }
			cfg := f.config()
			tt.arm(f, stop, &cfg)
			a, err := update.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Update(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted pass: %v", err)
			}
			if st := a.Status(); st.State != tt.state {
				t.Fatalf("journal at %s after the interruption, want %s", st.State, tt.state)
			}
			f.inst.during = nil
			cfg.Backups = cfg.Backups[:1]
			a2, err := update.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := mustUpdate(t, a2)
			if res.Outcome != tt.outcome {
				t.Fatalf("resumed: %+v, want %s", res, tt.outcome)
			}
			switch tt.outcome {
			case transport.OutcomeCommitted:
				if !bytes.Equal(f.inst.bytes(), r.Artifact) || f.component(a2, "firmware") != "1.1.0" {
					t.Error("not on the new version after resuming")
				}
			case transport.OutcomeRolledBack:
				if got := readFile(t, filepath.Join(f.data, "journal.db")); got != before || !bytes.Equal(f.inst.bytes(), []byte("factory")) {
					t.Errorf("not back on the old version with its data after resuming: %q", got)
				}
			}
			if n := len(f.srv.Reports()); n != 1 {
				t.Errorf("%d reports, want 1", n)
			}
		})
	}
}

// cancelingHook is a backup hook whose restore stops the agent.
type cancelingHook struct{ cancel func() }

func (cancelingHook) Name() string { return "canceler" }
func (cancelingHook) Backup(ctx context.Context, fsys durable.FS, dir string) error {
	return nil
}
func (h cancelingHook) Restore(ctx context.Context, fsys durable.FS, dir string) error {
	h.cancel()
	return ctx.Err()
}

func TestRollbackFailureNeedsAttention(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	f.inst.failRollback = 2
	a := f.agent(func(c *update.Config) {
		c.Checks = []verify.Check{{Name: "echo", Run: func(context.Context) error { return errors.New("no echo") }}}
	})
	for i := 0; i < 2; i++ {
		res, err := a.Update(context.Background())
		if !errors.Is(err, update.ErrNeedsAttention) || res.Outcome != transport.OutcomeNeedsAttention {
			t.Fatalf("pass %d: %+v, %v; want needs attention", i, res, err)
		}
		if st := a.Status(); st.State != update.StateRollingBack {
			t.Fatalf("state %s, want rolling-back (never committed)", st.State)
		}
	}
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRolledBack {
		t.Fatalf("third pass: %+v, want rolled back", res)
	}
	var outcomes []string
	for _, r := range f.srv.Reports() {
		outcomes = append(outcomes, string(r.Outcome))
	}
	if got := strings.Join(outcomes, ","); got != "needs_attention,rolled_back" {
		t.Errorf("reports %s, want needs_attention then rolled_back", got)
	}
}

func TestGates(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	var mu sync.Mutex
	allow := map[update.Stage]bool{}
	a := f.agent(func(c *update.Config) {
		c.Gate = func(ctx context.Context, req update.GateRequest) error {
			mu.Lock()
			defer mu.Unlock()
			if !allow[req.Stage] {
				return update.NotNow(time.Minute, "a sale is in progress")
			}
			return nil
		}
	})
	res := mustUpdate(t, a)
	if res.Waiting == nil || res.Waiting.Stage != update.StageDownload || res.State != update.StateGated {
		t.Fatalf("Update = %+v, want held at the download gate", res)
	}
	if st := a.Status(); st.State != update.StateGated || !strings.Contains(st.Waiting, "a sale is in progress") {
		t.Errorf("Status = %+v, want gated with the reason", st)
	}
	if len(f.artifactCalls()) != 0 {
		t.Error("downloaded while the gate said no")
	}
	hb, _ := a.Heartbeat(context.Background())
	if hb.State != string(update.StateGated) || hb.Waiting == "" || hb.Release != "firmware@1.1.0" {
		t.Errorf("heartbeat status = %+v", hb)
	}

	mu.Lock()
	allow[update.StageDownload] = true
	mu.Unlock()
	res = mustUpdate(t, a)
	if res.Waiting == nil || res.Waiting.Stage != update.StageInstall || res.State != update.StateDownloaded {
		t.Fatalf("Update = %+v, want downloaded and held at the install gate", res)
	}
	if installs, _, _ := f.inst.counts(); installs != 0 {
		t.Error("installed while the gate said no")
	}

	mu.Lock()
	allow[update.StageInstall] = true
	mu.Unlock()
	if res = mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("Update = %+v, want committed", res)
	}
	if st := a.Status(); st.Waiting != "" {
		t.Errorf("still waiting after commit: %q", st.Waiting)
	}
}

func TestExpiresWhileGated(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000, func(m *verify.Manifest) { m.Expires = f.Now().Add(2 * time.Hour) }))
	open := false
	a := f.agent(func(c *update.Config) {
		c.Gate = func(context.Context, update.GateRequest) error {
			if !open {
				return update.NotNow(time.Hour, "outside the maintenance window")
			}
			return nil
		}
	})
	if res := mustUpdate(t, a); res.Waiting == nil {
		t.Fatalf("want held by the gate, got %+v", res)
	}
	f.advance(3 * time.Hour)
	open = true
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRefused || res.Reason != transport.ReasonExpired {
		t.Fatalf("Update = %+v, want refused as expired", res)
	}
	if installs, _, _ := f.inst.counts(); installs != 0 {
		t.Error("an expired release was installed")
	}
}

func TestReportsWaitInTheOutbox(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	f.srv.FailNextCall(transporttest.CallReport, 3, transport.CodeUnavailable)
	a := f.agent()
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("Update = %+v", res)
	}
	if n := len(f.srv.Reports()); n != 0 {
		t.Fatalf("%d reports while the server refused them", n)
	}
	// The report survives a restart and goes out once the server is back.
	a2 := f.agent()
	for i := 0; i < 3 && len(f.srv.Reports()) == 0; i++ {
		mustUpdate(t, a2)
	}
	reports := f.srv.Reports()
	if len(reports) != 1 || reports[0].Outcome != transport.OutcomeCommitted {
		t.Fatalf("reports = %+v, want the commit once", reports)
	}
	mustUpdate(t, a2)
	if n := len(f.srv.Reports()); n != 1 {
		t.Errorf("%d reports, want 1", n)
	}
}

func TestCheckFailureIsAnError(t *testing.T) {
	f := newFixture(t)
	f.srv.FailNextCall(transporttest.CallCheck, 1, transport.CodeUnavailable)
	a := f.agent()
	if _, err := a.Update(context.Background()); !errors.Is(err, transport.ErrUnavailable) {
		t.Fatalf("Update = %v, want ErrUnavailable", err)
	}
}

func TestBusy(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	entered, release := make(chan struct{}), make(chan struct{})
	a := f.agent(func(c *update.Config) {
		c.Gate = func(ctx context.Context, req update.GateRequest) error {
			close(entered)
			<-release
			return update.NotNow(time.Minute, "held")
		}
	})
	done := make(chan error, 1)
	go func() { _, err := a.Update(context.Background()); done <- err }()
	<-entered
	if _, err := a.Update(context.Background()); !errors.Is(err, update.ErrBusy) {
		t.Errorf("concurrent Update = %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesCorruptJournal(t *testing.T) {
	tests := []struct{ name, content string }{
		{"garbage", "{not json"},
		{"wrong schema", `{"schema":99,"components":{}}`},
		{"unknown state", `{"schema":1,"components":{},"update":{"id":"x","state":"dancing","bundle":"{}","release":"a@1.0.0","component":"a","to":"1.0.0","accepted":"2026-01-01T00:00:00Z","policy":{}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeFile(t, filepath.Join(f.state, "journal.json"), tt.content)
			if _, err := update.New(f.config()); !errors.Is(err, update.ErrJournal) {
				t.Errorf("New = %v, want ErrJournal", err)
			}
		})
	}
}

// An older agent (after a firmware rollback) must read what a newer one
// wrote: unknown fields are ignored.
func TestJournalToleratesUnknownFields(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.state, "journal.json"),
		`{"schema":1,"components":{"firmware":{"version":"1.2.0","floor":"1.1.0","new_thing":1}},"surprise":true}`)
	a := f.agent()
	if v := f.component(a, "firmware"); v != "1.2.0" {
		t.Errorf("version %q, want 1.2.0 from the journal", v)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		mod  func(c *update.Config)
	}{
		{"no source", func(c *update.Config) { c.Source = nil }},
		{"no keys", func(c *update.Config) { c.Keys = nil }},
		{"no installer", func(c *update.Config) { c.Installer = nil }},
		{"no state dir", func(c *update.Config) { c.StateDir = "" }},
		{"bad model", func(c *update.Config) { c.Device.Model = "no spaces allowed" }},
		{"negative limit", func(c *update.Config) { c.MaxArtifactSize = -1 }},
		{"duplicate hooks", func(c *update.Config) { c.Backups = append(c.Backups, c.Backups[0]) }},
		{"bad factory version", func(c *update.Config) { c.Installed = map[string]string{"firmware": "1.0"} }},
		{"bad component name", func(c *update.Config) { c.Installed = map[string]string{"firm ware": "1.0.0"} }},
		{"bad hardware revision", func(c *update.Config) { c.Device.HardwareRevision = "rev/B" }},
		{"bad channel", func(c *update.Config) { c.Device.Channel = "beta channel" }},
		{"negative step attempts", func(c *update.Config) { c.StepAttempts = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := update.New(f.config(tt.mod)); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestFactoryVersionsOnlySeedANewJournal(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	if res := mustUpdate(t, f.agent()); res.Outcome != transport.OutcomeCommitted {
		t.Fatal(res)
	}
	// Restarted with the same factory map, the agent keeps the journal's
	// record of what is installed.
	a := f.agent()
	if v := f.component(a, "firmware"); v != "1.1.0" {
		t.Errorf("after restart: %s, want 1.1.0 from the journal", v)
	}
	if _, err := os.Stat(filepath.Join(f.state, "journal.json")); err != nil {
		t.Error(err)
	}
}

// TestLongWaitingReason: many gates' reasons joined are cut to what a
// heartbeat may carry, so the server still hears why the terminal waits.
func TestLongWaitingReason(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 10_000))
	long := strings.Repeat("outside the install window; ", 200)
	a := f.agent(func(c *update.Config) {
		c.Gate = func(context.Context, update.GateRequest) error { return update.NotNow(time.Minute, long) }
	})
	if res := mustUpdate(t, a); res.State != update.StateGated {
		t.Fatalf("Update = %+v", res)
	}
	hb, err := a.Heartbeat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Validate(); err != nil || !strings.HasPrefix(hb.Waiting, "download: outside the install window") {
		t.Fatalf("heartbeat with waiting %d bytes: %v", len(hb.Waiting), err)
	}
}

// TestRequirementUnmetIsSkippedNotRefused: a release that needs a newer
// firmware is skipped, not remembered as refused, so it installs once the
// firmware it needs has.
func TestRequirementUnmetIsSkippedNotRefused(t *testing.T) {
	f := newFixture(t)
	app := func(m *verify.Manifest) {
		m.Component, m.Kind = "payment-app", verify.KindApplication
		m.Requires = []verify.Requirement{{Component: "firmware", Version: ">=1.4"}}
	}
	f.publish(f.release("2.0.0", 20_000, app))
	a := f.agent(func(c *update.Config) { c.Installed = map[string]string{"firmware": "1.0.0", "payment-app": "1.0.0"} })
	res := mustUpdate(t, a)
	if res.Outcome != "" || res.Reason != transport.ReasonRequirementUnmet || len(f.srv.Reports()) != 0 {
		t.Fatalf("Update = %+v with %d reports, want skipped for requirement_unmet without a report", res, len(f.srv.Reports()))
	}
	f.publish(f.release("1.4.0", 20_000))
	for _, want := range []string{"firmware", "payment-app"} {
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeCommitted || !strings.HasPrefix(res.Release, want+"@") {
			t.Fatalf("Update = %+v, want %s committed", res, want)
		}
	}
	if v := f.component(a, "payment-app"); v != "2.0.0" {
		t.Errorf("payment-app %s, want 2.0.0", v)
	}
}
