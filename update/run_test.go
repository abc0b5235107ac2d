package update_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// TestRunChecksOnItsIntervalAndWhenNudged runs the loop in a synctest
// bubble: time moves only when every goroutine waits, so the intervals
// are exact and the test takes no real time.
func TestRunChecksOnItsIntervalAndWhenNudged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		a := f.agent(func(c *update.Config) { c.CheckInterval = time.Hour; c.Now = nil })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- a.Run(ctx) }()

		checks := func() int {
			n := 0
			for _, r := range f.srv.Requests() {
				if r.Call == "check" {
					n++
				}
			}
			return n
		}
		synctest.Wait()
		if n := checks(); n != 1 {
			t.Fatalf("%d checks at start, want 1", n)
		}
		// The server said to retry after its heartbeat interval (a minute):
		// that is sooner than the check interval.
		time.Sleep(50 * time.Second)
		synctest.Wait()
		if n := checks(); n != 1 {
			t.Fatalf("%d checks after 50s, want 1", n)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := checks(); n != 2 {
			t.Fatalf("%d checks after 70s, want 2", n)
		}

		// A release appears; a nudge makes the agent take it at once.
		f.publish(f.release("1.1.0", 20_000))
		a.CheckNow()
		synctest.Wait()
		if v := f.component(a, "firmware"); v != "1.1.0" {
			t.Fatalf("after a nudge: on %s, want 1.1.0", v)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

func TestRunBacksOffWhenTheServerIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.srv.FailNextCall("check", 3, transport.CodeUnavailable)
		a := f.agent(func(c *update.Config) { c.Now = nil })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		done := make(chan error)
		go func() { done <- a.Run(ctx) }()
		var times []time.Duration
		for len(times) < 4 {
			time.Sleep(100 * time.Millisecond)
			times = times[:0]
			for _, r := range f.srv.Requests() {
				if r.Call == "check" {
					times = append(times, r.Time.Sub(start))
				}
			}
		}
		// Failures wait about 2s, 4s, 8s (±10%) before trying again.
		for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
			gap := times[i+1] - times[i]
			if gap < want*85/100 || gap > want*115/100+200*time.Millisecond {
				t.Errorf("wait %d = %s, want about %s", i+1, gap, want)
			}
		}
		cancel()
		<-done
	})
}

func FuzzJournal(f *testing.F) {
	f.Add([]byte(`{"schema":1,"components":{"firmware":{"version":"1.0.0"}}}`))
	f.Add([]byte(`{"schema":1,"components":{},"update":{"id":"x","state":"downloading","bundle":{},"release":"a@1.0.0","component":"a","to":"1.0.0","accepted":"2026-01-01T00:00:00Z","policy":{}}}`))
	f.Add([]byte(`{"schema":1,"components":null,"refused":["a"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "journal.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := update.New(update.Config{
			Source: nopSource{}, Keys: mustRing(t), Installer: &fakeInstaller{}, StateDir: dir,
			Device: update.Device{Model: "P300"},
		})
		if err != nil {
			if !errors.Is(err, update.ErrJournal) {
				t.Fatalf("New = %v, want nil or ErrJournal", err)
			}
			return
		}
		// A journal that loads must give a status and survive a pass: a
		// bundle that does not verify is refused, never installed.
		a.Status()
		a.Update(context.Background())
	})
}

type nopSource struct{}

func (nopSource) Check(context.Context, *transport.CheckRequest) (*transport.CheckResponse, error) {
	return &transport.CheckResponse{}, nil
}

func (nopSource) OpenArtifact(context.Context, transport.ArtifactRequest) (io.ReadCloser, error) {
	return nil, transport.ErrNotFound
}

func (nopSource) Report(context.Context, *transport.ReportRequest) (*transport.ReportResponse, error) {
	return &transport.ReportResponse{}, nil
}

func mustRing(t *testing.T) *verify.KeyRing {
	keys, err := transporttest.NewKeys(transporttest.DefaultIssued(), transporttest.DefaultExpires())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
