package verify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// recorder notes which checks ran. Checks run on goroutines of their own,
// and an abandoned one may still be running when RunChecks returns.
type recorder struct {
	mu    sync.Mutex
	names []string
}

func (r *recorder) ran(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.names, ",")
}

// Health checks, as a vendor writes them. Each records that it ran.
func pass(rec *recorder, name string) verify.Check {
	return verify.Check{Name: name, Run: func(ctx context.Context) error {
		rec.ran(name)
		return nil
	}}
}

func fail(rec *recorder, name string, err error) verify.Check {
	return verify.Check{Name: name, Run: func(ctx context.Context) error {
		rec.ran(name)
		return err
	}}
}

var errSignIn = errors.New("sign-in refused by host: 96 system malfunction")

func TestRunChecks(t *testing.T) {
	type want struct {
		ran      []string // checks whose Run was called
		results  []string // names in the results
		failed   string   // the failing check, "" if none
		reason   string   // substring of the failure's reason
		err      error    // matched by the failure's Err
		duration time.Duration
	}
	tests := []struct {
		name string
		// checks makes the checks; a check that hangs waits on hung, which
		// is closed when the test ends so that no goroutine outlives it.
		checks  func(rec *recorder, hung <-chan struct{}) []verify.Check
		want    want
		wantErr error // RunChecks's own error
	}{
		{
			name: "all pass",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{pass(ran, "starts"), pass(ran, "sign-in"), pass(ran, "echo-test")}
			},
			want: want{ran: []string{"starts", "sign-in", "echo-test"}, results: []string{"starts", "sign-in", "echo-test"}},
		},
		{
			name:   "no checks",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check { return nil },
			want:   want{},
		},
		{
			name: "fails with a reason and stops",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{pass(ran, "starts"), fail(ran, "sign-in", errSignIn), pass(ran, "echo-test")}
			},
			want: want{ran: []string{"starts", "sign-in"}, results: []string{"starts", "sign-in"},
				failed: "sign-in", reason: errSignIn.Error(), err: errSignIn},
		},
		{
			name: "first check fails",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{fail(ran, "starts", errSignIn), pass(ran, "sign-in")}
			},
			want: want{ran: []string{"starts"}, results: []string{"starts"}, failed: "starts", reason: errSignIn.Error(), err: errSignIn},
		},
		{
			name: "check that ignores its context times out",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{{Name: "hangs", Timeout: 5 * time.Second, Run: func(ctx context.Context) error {
					ran.ran("hangs")
					<-hung // deaf to ctx: RunChecks must abandon it
					return nil
				}}, pass(ran, "after")}
			},
			want: want{ran: []string{"hangs"}, results: []string{"hangs"}, failed: "hangs",
				reason: "timed out after 5s", err: verify.ErrCheckTimeout, duration: 5 * time.Second},
		},
		{
			name: "check that honours its context times out",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{{Name: "waits", Timeout: 2 * time.Second, Run: func(ctx context.Context) error {
					ran.ran("waits")
					<-ctx.Done()
					return ctx.Err()
				}}}
			},
			want: want{ran: []string{"waits"}, results: []string{"waits"}, failed: "waits",
				reason: "timed out after 2s", err: verify.ErrCheckTimeout, duration: 2 * time.Second},
		},
		{
			name: "zero timeout means the default",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{{Name: "slow", Run: func(ctx context.Context) error {
					ran.ran("slow")
					<-ctx.Done()
					return ctx.Err()
				}}}
			},
			want: want{ran: []string{"slow"}, results: []string{"slow"}, failed: "slow",
				reason: "timed out after 30s", err: verify.ErrCheckTimeout, duration: verify.DefaultCheckTimeout},
		},
		{
			name: "slow check within its timeout passes",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{{Name: "boots", Timeout: 10 * time.Second, Run: func(ctx context.Context) error {
					ran.ran("boots")
					time.Sleep(9 * time.Second)
					return nil
				}}, pass(ran, "sign-in")}
			},
			want: want{ran: []string{"boots", "sign-in"}, results: []string{"boots", "sign-in"}},
		},
		{
			name: "panic fails the check",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{{Name: "buggy", Run: func(ctx context.Context) error {
					ran.ran("buggy")
					panic("index out of range")
				}}, pass(ran, "after")}
			},
			want: want{ran: []string{"buggy"}, results: []string{"buggy"}, failed: "buggy", reason: "panicked: index out of range"},
		},
		{
			name: "no Run function fails the check",
			checks: func(ran *recorder, hung <-chan struct{}) []verify.Check {
				return []verify.Check{{Name: "empty"}, pass(ran, "after")}
			},
			want: want{results: []string{"empty"}, failed: "empty", reason: "no Run function"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rec recorder
				hung := make(chan struct{})
				defer close(hung)
				results, err := verify.RunChecks(context.Background(), tt.checks(&rec, hung))
				if err != nil {
					t.Fatalf("RunChecks() error = %v", err)
				}
				if got := rec.String(); got != strings.Join(tt.want.ran, ",") {
					t.Errorf("ran %v, want %v", got, tt.want.ran)
				}
				var names []string
				for _, r := range results {
					names = append(names, r.Name)
				}
				if strings.Join(names, ",") != strings.Join(tt.want.results, ",") {
					t.Errorf("results for %v, want %v", names, tt.want.results)
				}
				if results.OK() != (tt.want.failed == "") {
					t.Errorf("OK() = %v", results.OK())
				}
				rerr := results.Err()
				if tt.want.failed == "" {
					if rerr != nil {
						t.Errorf("Err() = %v, want nil", rerr)
					}
					for _, r := range results {
						if !r.OK || r.Reason != "" || r.Err != nil {
							t.Errorf("passing result %+v", r)
						}
					}
					return
				}
				var ce *verify.CheckError
				if !errors.As(rerr, &ce) || ce.Name != tt.want.failed {
					t.Fatalf("Err() = %v, want a *CheckError for %q", rerr, tt.want.failed)
				}
				if !strings.Contains(ce.Error(), tt.want.failed) || !strings.Contains(ce.Error(), ce.Reason) {
					t.Errorf("Error() = %q", ce.Error())
				}
				last := results[len(results)-1]
				if last.OK || !strings.Contains(last.Reason, tt.want.reason) || last.Err == nil {
					t.Errorf("failed result %+v, want reason containing %q", last, tt.want.reason)
				}
				if tt.want.err != nil && (!errors.Is(last.Err, tt.want.err) || !errors.Is(rerr, tt.want.err)) {
					t.Errorf("Err = %v, want %v", last.Err, tt.want.err)
				}
				// The bubble's clock is exact: a timeout takes exactly its
				// length, whatever the machine's load.
				if tt.want.duration != 0 && last.Duration != tt.want.duration {
					t.Errorf("Duration = %v, want %v", last.Duration, tt.want.duration)
				}
			})
		})
	}
}

func TestRunChecksParentCancelled(t *testing.T) {
	t.Run("before the first check", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var rec recorder
			results, err := verify.RunChecks(ctx, []verify.Check{pass(&rec, "a")})
			if !errors.Is(err, context.Canceled) || len(results) != 0 || rec.String() != "" {
				t.Errorf("RunChecks = %v, %v (ran %v), want no results and context.Canceled", results, err, rec.String())
			}
		})
	})
	blocking := []struct {
		name string
		run  func(hung <-chan struct{}) func(ctx context.Context) error
	}{
		{"during a check that honours its context", func(<-chan struct{}) func(ctx context.Context) error {
			return func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		}},
		{"during a check that ignores its context", func(hung <-chan struct{}) func(ctx context.Context) error {
			return func(ctx context.Context) error { <-hung; return nil }
		}},
	}
	for _, tt := range blocking {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				hung := make(chan struct{})
				defer close(hung)
				var rec recorder
				checks := []verify.Check{
					pass(&rec, "starts"),
					{Name: "sign-in", Timeout: time.Minute, Run: tt.run(hung)},
					pass(&rec, "never"),
				}
				start := time.Now()
				results, err := verify.RunChecks(ctx, checks)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("RunChecks error = %v, want the parent's DeadlineExceeded", err)
				}
				// The interrupted check is not reported as a failure: the
				// terminal is not unhealthy, the caller gave up.
				if len(results) != 1 || results[0].Name != "starts" || !results[0].OK {
					t.Errorf("results = %+v, want only the passed first check", results)
				}
				if got := rec.String(); got != "starts" {
					t.Errorf("ran %v", got)
				}
				if elapsed := time.Since(start); elapsed != 10*time.Second {
					t.Errorf("RunChecks returned after %v, want at the parent's deadline", elapsed)
				}
			})
		})
	}
	t.Run("cancelled by the check that passes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var rec recorder
			checks := []verify.Check{
				{Name: "last-ok", Run: func(context.Context) error { cancel(); return nil }},
				pass(&rec, "never"),
			}
			results, err := verify.RunChecks(ctx, checks)
			// Whether the cancelling check's pass is kept depends on which
			// RunChecks saw first; either way nothing runs after it.
			if !errors.Is(err, context.Canceled) || rec.String() != "" {
				t.Errorf("RunChecks = %+v, %v (ran %v)", results, err, rec.String())
			}
			if len(results) > 1 || len(results) == 1 && !results[0].OK {
				t.Errorf("results = %+v, want at most the passed check", results)
			}
		})
	})
}

func TestCheckResultsEmpty(t *testing.T) {
	var rs verify.CheckResults
	if !rs.OK() || rs.Err() != nil {
		t.Errorf("empty results: OK %v, Err %v", rs.OK(), rs.Err())
	}
}
