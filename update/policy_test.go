package update_test

import (
	"bytes"
	"context"
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

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// migration appends a line to the data file: not idempotent on purpose,
// so running it twice on the same data would show.
func migration(f *fixture, runs *atomic.Int32, fail error) update.Migration {
	return update.Migration{Name: "journal-v2", Run: func(ctx context.Context, a *update.Artifact) error {
		runs.Add(1)
		p := filepath.Join(f.data, "journal.db")
		old, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, append(old, "schema=2\n"...), 0o644); err != nil {
			return err
		}
		return fail
	}}
}

func TestMigrations(t *testing.T) {
	t.Run("run after install", func(t *testing.T) {
		f := newFixture(t)
		before := readFile(t, filepath.Join(f.data, "journal.db"))
		f.publish(f.release("1.1.0", 20_000))
		var runs atomic.Int32
		var states []update.State
		a := f.agent(func(c *update.Config) {
			c.Migrations = []update.Migration{migration(f, &runs, nil)}
			c.Observe = func(s update.Status) { states = append(states, s.State) }
		})
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatal(res)
		}
		if got := readFile(t, filepath.Join(f.data, "journal.db")); got != "migrated "+before+"schema=2\n" {
			t.Errorf("data %q", got)
		}
		if !strings.Contains(strings.Join(stateNames(states), " "), "installing migrating verifying") {
			t.Errorf("states %v", states)
		}
	})
	t.Run("a failed migration rolls back and the backup undoes it", func(t *testing.T) {
		f := newFixture(t)
		before := readFile(t, filepath.Join(f.data, "journal.db"))
		f.publish(f.release("1.1.0", 20_000))
		var runs atomic.Int32
		a := f.agent(func(c *update.Config) {
			c.Migrations = []update.Migration{migration(f, &runs, errors.New("column exists"))}
		})
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonMigration {
			t.Fatalf("%+v, want rolled back for migration", res)
		}
		if got := readFile(t, filepath.Join(f.data, "journal.db")); got != before {
			t.Errorf("data %q, want %q restored", got, before)
		}
		if !bytes.Equal(f.inst.bytes(), []byte("factory")) {
			t.Error("old version not back")
		}
	})
	t.Run("interrupted, restored before running again", func(t *testing.T) {
		f := newFixture(t)
		before := readFile(t, filepath.Join(f.data, "journal.db"))
		f.publish(f.release("1.1.0", 20_000))
		var runs atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		cut := update.Migration{Name: "cut", Run: func(ctx context.Context, a *update.Artifact) error {
			if runs.Load() == 1 {
				cancel() // the power goes out after the first migration ran
				return ctx.Err()
			}
			return nil
		}}
		cfg := f.config(func(c *update.Config) { c.Migrations = []update.Migration{migration(f, &runs, nil), cut} })
		a, _ := update.New(cfg)
		if _, err := a.Update(ctx); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		a2, _ := update.New(cfg)
		if res := mustUpdate(t, a2); res.Outcome != transport.OutcomeCommitted {
			t.Fatal(res)
		}
		// The backup was restored before the migrations ran again: the
		// migration ran once on the data, and the fake installer's own
		// change to it (installers must leave data to migrations) is gone.
		if got := readFile(t, filepath.Join(f.data, "journal.db")); got != before+"schema=2\n" {
			t.Errorf("data %q: the migration did not run exactly once on the original data", got)
		}
	})
	t.Run("need backups", func(t *testing.T) {
		f := newFixture(t)
		var runs atomic.Int32
		if _, err := update.New(f.config(func(c *update.Config) {
			c.Backups = nil
			c.Migrations = []update.Migration{migration(f, &runs, nil)}
		})); err == nil {
			t.Error("migrations without backups accepted")
		}
	})
}

type beats struct{ n atomic.Int32 }

func (b *beats) Count() int { return int(b.n.Load()) }

func TestProbation(t *testing.T) {
	t.Run("heartbeats and time", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		b := &beats{}
		a := f.agent(func(c *update.Config) {
			c.Probation = update.Probation{Beats: 2, For: time.Hour}
			c.Beats = b
		})
		res := mustUpdate(t, a)
		if res.Waiting == nil || res.Waiting.Stage != update.StageProbation || res.State != update.StateProbation {
			t.Fatalf("%+v, want waiting on probation", res)
		}
		if st := a.Status(); !strings.Contains(st.Waiting, "0 of 2 heartbeats") {
			t.Errorf("waiting %q", st.Waiting)
		}
		b.n.Add(2)
		if res = mustUpdate(t, a); res.Waiting == nil || !strings.Contains(res.Waiting.Reason, "of 1h0m0s") {
			t.Fatalf("%+v, want still waiting for the hour", res)
		}
		f.advance(time.Hour)
		if res = mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("%+v, want committed", res)
		}
	})
	t.Run("marked good", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		a := f.agent(func(c *update.Config) { c.Probation = update.Probation{UntilMarkedGood: true} })
		if err := a.MarkGood(context.Background()); !errors.Is(err, update.ErrNotOnProbation) {
			t.Errorf("MarkGood with nothing installed: %v", err)
		}
		if res := mustUpdate(t, a); res.Waiting == nil {
			t.Fatal(res)
		}
		if err := a.MarkGood(context.Background()); err != nil {
			t.Fatal(err)
		}
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("%+v, want committed once marked good", res)
		}
	})
	t.Run("marked bad", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		a := f.agent(func(c *update.Config) { c.Probation = update.Probation{UntilMarkedGood: true} })
		mustUpdate(t, a)
		if err := a.MarkBad(context.Background(), "first sale declined: card reader lost"); err != nil {
			t.Fatal(err)
		}
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeRolledBack || !strings.Contains(res.Err.Error(), "card reader") {
			t.Fatalf("%+v, want rolled back with the reason", res)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		a := f.agent(func(c *update.Config) {
			c.Probation = update.Probation{UntilMarkedGood: true, Deadline: 24 * time.Hour}
		})
		mustUpdate(t, a)
		f.advance(25 * time.Hour)
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonHealth {
			t.Fatalf("%+v, want rolled back past the deadline", res)
		}
	})
	t.Run("restarts count, heartbeats carry over", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		b := &beats{}
		cfg := f.config(func(c *update.Config) {
			c.Probation = update.Probation{Beats: 3}
			c.Beats = b
			c.StepAttempts = 2
		})
		a, _ := update.New(cfg)
		mustUpdate(t, a)
		b.n.Add(2)
		mustUpdate(t, a) // two beats counted and journaled
		// The terminal restarts: its counter starts again from zero.
		b.n.Store(0)
		a, _ = update.New(cfg)
		b.n.Add(1)
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("after a restart and a third beat: %+v, want committed", res)
		}
	})
	t.Run("a crash loop rolls back", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		crash := false
		var cancel context.CancelFunc
		cfg := f.config(func(c *update.Config) {
			c.Probation = update.Probation{UntilMarkedGood: true}
			c.StepAttempts = 2
			c.Checks = []verify.Check{{Name: "starts", Run: func(ctx context.Context) error {
				if crash {
					cancel() // the new version takes the terminal down
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}}}
		})
		a, _ := update.New(cfg)
		mustUpdate(t, a) // on probation
		crash = true
		for boot := 0; boot < 2; boot++ {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			a, _ = update.New(cfg)
			_, err := a.Update(ctx)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("boot %d: %v", boot, err)
			}
		}
		a, _ = update.New(cfg)
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonBoot {
			t.Fatalf("%+v, want rolled back for restarting without passing its checks", res)
		}
	})
	t.Run("healthy restarts do not count", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		cfg := f.config(func(c *update.Config) {
			c.Probation = update.Probation{UntilMarkedGood: true}
			c.StepAttempts = 2
		})
		a, _ := update.New(cfg)
		mustUpdate(t, a)
		for night := 0; night < 5; night++ { // switched off every night
			a, _ = update.New(cfg)
			if res := mustUpdate(t, a); res.State != update.StateProbation || res.Outcome != "" {
				t.Fatalf("night %d: %+v, want still on probation", night, res)
			}
		}
		a.MarkGood(context.Background())
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("a rollback keeps what the new version wrote", func(t *testing.T) {
		f := newFixture(t)
		before := readFile(t, filepath.Join(f.data, "journal.db"))
		f.publish(f.release("1.1.0", 20_000))
		a := f.agent(func(c *update.Config) { c.Probation = update.Probation{UntilMarkedGood: true} })
		mustUpdate(t, a)
		// A sale taken on the new version, then the verdict.
		sale := readFile(t, filepath.Join(f.data, "journal.db")) + "sale 0042 12.50\n"
		writeFile(t, filepath.Join(f.data, "journal.db"), sale)
		a.MarkBad(context.Background(), "card reader lost")
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeRolledBack {
			t.Fatal(res)
		}
		if got := readFile(t, filepath.Join(f.data, "journal.db")); got != before {
			t.Errorf("data after rollback %q, want the backup", got)
		}
		reps := f.srv.Reports()
		if len(reps) != 1 || !strings.Contains(reps[0].Detail, "kept in backup snapshot") {
			t.Fatalf("report %+v does not say where the probation data is", reps)
		}
		// A person can get the sale back from the snapshot the report names.
		id := reps[0].Detail[strings.LastIndex(reps[0].Detail, " ")+1:]
		store, err := backup.OpenStore(filepath.Join(f.state, "backups"), backup.StoreConfig{})
		if err != nil {
			t.Fatal(err)
		}
		hook, _ := backup.NewFiles("pos-data", f.data)
		if err := store.Restore(context.Background(), id, []backup.Hook{hook}); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(f.data, "journal.db")); got != sale {
			t.Errorf("rescue snapshot %s holds %q, want the sale", id, got)
		}
	})
	t.Run("MarkBad is never lost", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		var a *update.Agent
		a = f.agent(func(c *update.Config) {
			// The verdict arrives while the agent decides: inside a check.
			c.Checks = []verify.Check{{Name: "sale", Run: func(ctx context.Context) error {
				return a.MarkBad(ctx, "declined")
			}}}
		})
		res := mustUpdate(t, a)
		if res.Outcome != transport.OutcomeRolledBack {
			t.Fatalf("%+v, want rolled back: MarkBad was called before the commit", res)
		}
	})
	t.Run("the clock going back", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		a := f.agent(func(c *update.Config) { c.Probation = update.Probation{For: time.Hour} })
		mustUpdate(t, a)
		f.advance(-365 * 24 * time.Hour) // the RTC lost its battery
		res := mustUpdate(t, a)
		if res.Waiting == nil || strings.Contains(res.Waiting.Reason, "-") {
			t.Fatalf("%+v", res)
		}
		f.advance(time.Hour)
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("%+v, want committed an hour after the clock settled", res)
		}
	})
}

// bootInstaller takes effect at a reboot; running says which version the
// terminal booted.
type bootInstaller struct {
	*fakeInstaller
	mu      sync.Mutex
	running string
}

func (b *bootInstaller) Install(ctx context.Context, a *update.Artifact) error {
	if err := b.fakeInstaller.Install(ctx, a); err != nil {
		return err
	}
	return update.ErrRebootRequired
}

func (b *bootInstaller) Running(ctx context.Context, component string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running, nil
}

func TestRebootingInstaller(t *testing.T) {
	for _, tt := range []struct {
		name    string
		booted  string // what the bootloader ran after the reboot
		outcome transport.Outcome
		reason  transport.Reason
	}{
		{"boots the new version", "1.1.0", transport.OutcomeCommitted, transport.ReasonOK},
		{"falls back to the old", "1.0.0", transport.OutcomeRolledBack, transport.ReasonBoot},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.publish(f.release("1.1.0", 20_000))
			inst := &bootInstaller{fakeInstaller: f.inst, running: "1.0.0"}
			cfg := f.config(func(c *update.Config) { c.Installer = inst })
			a, _ := update.New(cfg)
			res := mustUpdate(t, a)
			if !res.RebootRequired || res.State != update.StateVerifying {
				t.Fatalf("%+v, want a reboot asked for, in verifying", res)
			}
			inst.running = tt.booted
			a, _ = update.New(cfg) // after the reboot
			res = mustUpdate(t, a)
			if res.Outcome != tt.outcome || res.Reason != tt.reason {
				t.Fatalf("%+v, want %s/%s", res, tt.outcome, tt.reason)
			}
		})
	}
	t.Run("Reboot is called", func(t *testing.T) {
		f := newFixture(t)
		f.publish(f.release("1.1.0", 20_000))
		rebooted := 0
		a := f.agent(func(c *update.Config) {
			c.Installer = &bootInstaller{fakeInstaller: f.inst, running: "1.0.0"}
			c.Reboot = func(ctx context.Context) error { rebooted++; return nil }
		})
		mustUpdate(t, a)
		if rebooted != 1 {
			t.Errorf("Reboot called %d times", rebooted)
		}
	})
}

// TestRetentionKeepsTheSnapshotInUse: with room for one snapshot, the one
// the install depends on survives pruning and restores the data.
func TestRetentionKeepsTheSnapshotInUse(t *testing.T) {
	f := newFixture(t)
	before := readFile(t, filepath.Join(f.data, "journal.db"))
	for _, v := range []string{"1.1.0", "1.2.0"} {
		f.publish(f.release(v, 20_000))
	}
	fail := false
	a := f.agent(func(c *update.Config) {
		c.KeepBackups = 1
		c.MaxAttempts = 1
		c.Checks = []verify.Check{{Name: "sign-in", Run: func(context.Context) error {
			if fail {
				return errors.New("refused")
			}
			return nil
		}}}
	})
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted || res.To != "1.2.0" {
		t.Fatalf("first update: %+v", res)
	}
	migrated := readFile(t, filepath.Join(f.data, "journal.db"))
	if migrated == before {
		t.Fatal("the first update did not change the data")
	}
	f.publish(f.release("1.3.0", 20_000))
	fail = true
	if res := mustUpdate(t, a); res.Outcome != transport.OutcomeRolledBack {
		t.Fatalf("second update: %+v", res)
	}
	if got := readFile(t, filepath.Join(f.data, "journal.db")); got != migrated {
		t.Errorf("data after the rollback = %q, want what the second update backed up", got)
	}
	entries, _ := os.ReadDir(filepath.Join(f.state, "backups"))
	snaps := 0
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			snaps++
		}
	}
	if snaps > 1 {
		t.Errorf("%d snapshots kept, want at most 1", snaps)
	}
}

// TestBooterAskedAfterEveryRestart: a bootloader that falls back to the old
// slot while the new version is on probation is noticed at the next start,
// before anything is committed.
func TestBooterAskedAfterEveryRestart(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	inst := &bootInstaller{fakeInstaller: f.inst, running: "1.0.0"}
	cfg := f.config(func(c *update.Config) {
		c.Installer = inst
		c.Probation = update.Probation{UntilMarkedGood: true}
	})
	a, _ := update.New(cfg)
	mustUpdate(t, a) // installed, reboot asked for
	inst.running = "1.1.0"
	a, _ = update.New(cfg)
	if res := mustUpdate(t, a); res.State != update.StateProbation {
		t.Fatalf("%+v, want on probation", res)
	}
	inst.running = "1.0.0" // a reboot on probation fell back
	a, _ = update.New(cfg)
	a.MarkGood(context.Background())
	res := mustUpdate(t, a)
	if res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonBoot {
		t.Fatalf("%+v, want rolled back: the terminal runs the old version", res)
	}
}

func TestRunStopsForAReboot(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	a := f.agent(func(c *update.Config) { c.Installer = &bootInstaller{fakeInstaller: f.inst, running: "1.0.0"} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Run(ctx); !errors.Is(err, update.ErrRebootRequired) {
		t.Fatalf("Run = %v, want ErrRebootRequired", err)
	}
	if st := a.Status(); st.State != update.StateVerifying {
		t.Errorf("state %s, want verifying, resumed after the reboot", st.State)
	}
}

// TestObserveMayActOnTheAgent: Observe runs with no lock held, so a screen
// that vouches for the new version from it does not deadlock.
func TestObserveMayActOnTheAgent(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	var a *update.Agent
	a = f.agent(func(c *update.Config) {
		c.Probation = update.Probation{UntilMarkedGood: true}
		c.Observe = func(s update.Status) {
			if s.State == update.StateProbation {
				a.MarkGood(context.Background())
			}
		}
	})
	done := make(chan update.Result, 1)
	go func() {
		res, _ := a.Update(context.Background())
		if res.Outcome == "" {
			res, _ = a.Update(context.Background())
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("%+v", res)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("deadlocked")
	}
}

// TestGatePausesADownload: a download gate that closes mid-download (the
// terminal left Wi-Fi) pauses it; it is a wait, not a failure, and the
// download goes on from where it stopped.
func TestGatePausesADownload(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 200_000)
	f.publish(r)
	var asked atomic.Int32
	onWiFi := atomic.Bool{}
	onWiFi.Store(true)
	a := f.agent(func(c *update.Config) {
		c.Gate = func(ctx context.Context, req update.GateRequest) error {
			if req.Stage == update.StageDownload && asked.Add(1) > 10 && !onWiFi.Load() {
				return update.NotNow(time.Minute, "on cellular: waiting for Wi-Fi")
			}
			return nil
		}
	})
	onWiFi.Store(false)
	res := mustUpdate(t, a)
	if res.Waiting == nil || !strings.Contains(res.Waiting.Reason, "Wi-Fi") || res.State != update.StateDownloading {
		t.Fatalf("%+v, want paused in downloading", res)
	}
	if len(f.srv.Reports()) != 0 {
		t.Error("a pause was reported as an outcome")
	}
	onWiFi.Store(true)
	if res = mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("%+v", res)
	}
	if !bytes.Equal(f.inst.bytes(), r.Artifact) {
		t.Error("installed bytes differ")
	}
}

// TestMirrorDownFallsBackToTheServer: an offer names a CDN that is down;
// the artifact comes from the update server instead.
func TestMirrorDownFallsBackToTheServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		r := f.release("1.1.0", 50_000)
		f.publish(r)
		src := &offering{Source: &cdnDown{Source: f.client}, offers: []transport.Offer{{
			Bundle: r.Bundle, ArtifactURL: "https://cdn.example.com/app.bin", Mirrors: []string{"https://cdn2.example.com/app.bin"},
		}}}
		a := f.agent(func(c *update.Config) { c.Source = src; c.Now = nil })
		if res := mustUpdate(t, a); res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("%+v", res)
		}
	})
}

// cdnDown fails every request to a URL other than the update server's.
type cdnDown struct{ update.Source }

func (c *cdnDown) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	if req.URL != "" {
		return nil, errors.New("dial tcp: connection refused")
	}
	return c.Source.OpenArtifact(ctx, req)
}
