package verify_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

func TestBuiltinChecks(t *testing.T) {
	hostDown := errors.New("host unreachable")
	tests := []struct {
		name      string
		check     func(fn func(context.Context) error, r verify.Retry) verify.Check
		kind      error
		failures  int // the first calls that fail
		retry     verify.Retry
		wantOK    bool
		wantCalls int
		wantTook  time.Duration
	}{
		{"sign-in at once", verify.SignIn, verify.ErrSignIn, 0, verify.Retry{}, true, 1, 0},
		{"sign-in after the link comes up", verify.SignIn, verify.ErrSignIn, 2, verify.Retry{}, true, 3, 2 * verify.DefaultCheckRetryWait},
		{"sign-in never", verify.SignIn, verify.ErrSignIn, 99, verify.Retry{}, false, 3, 2 * verify.DefaultCheckRetryWait},
		{"echo, one try", verify.Echo, verify.ErrEcho, 99, verify.Retry{Attempts: 1}, false, 1, 0},
		{"echo, custom wait", verify.Echo, verify.ErrEcho, 1, verify.Retry{Attempts: 5, Wait: time.Second}, true, 2, time.Second},
		{"timeout cuts the retries short", verify.SignIn, verify.ErrCheckTimeout, 99, verify.Retry{Attempts: 10, Wait: time.Minute, Timeout: 90 * time.Second}, false, 2, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32 // a timed-out check's goroutine is abandoned, not awaited
				c := tt.check(func(ctx context.Context) error {
					if int(n.Add(1)) <= tt.failures {
						return hostDown
					}
					return nil
				}, tt.retry)
				start := time.Now()
				rs, err := verify.RunChecks(context.Background(), []verify.Check{c})
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				calls := int(n.Load())
				if rs.OK() != tt.wantOK || calls != tt.wantCalls || time.Since(start) != tt.wantTook {
					t.Fatalf("OK %v after %d calls in %s, want %v after %d in %s (%+v)",
						rs.OK(), calls, time.Since(start), tt.wantOK, tt.wantCalls, tt.wantTook, rs)
				}
				if !tt.wantOK {
					err := rs.Err()
					var ce *verify.CheckError
					if !errors.Is(err, tt.kind) || !errors.As(err, &ce) || ce.Name != c.Name {
						t.Fatalf("error %v: want a *CheckError named %q matching %v", err, c.Name, tt.kind)
					}
					if tt.kind != verify.ErrCheckTimeout && !errors.Is(err, hostDown) ||
						tt.kind == verify.ErrCheckTimeout && !strings.Contains(rs[0].Reason, "timed out") {
						t.Errorf("error %v lost the last cause", err)
					}
				}
			})
		})
	}
}

func TestFunctionTest(t *testing.T) {
	c := verify.FunctionTest("printer", time.Second, func(context.Context) error { return errors.New("out of paper") })
	rs, err := verify.RunChecks(context.Background(), []verify.Check{c})
	if err != nil || rs.OK() || rs[0].Name != "printer" || !strings.Contains(rs[0].Reason, "out of paper") {
		t.Fatalf("%+v, %v", rs, err)
	}
	if _, err := verify.RunChecks(context.Background(), []verify.Check{verify.SignIn(nil, verify.Retry{})}); err != nil {
		t.Fatal(err)
	}
	rs, _ = verify.RunChecks(context.Background(), []verify.Check{verify.SignIn(nil, verify.Retry{})})
	if rs.OK() || !errors.Is(rs.Err(), verify.ErrSignIn) {
		t.Fatalf("a sign-in check without a function passed: %+v", rs)
	}
}
