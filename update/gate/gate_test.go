package gate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// fixed is a gate with a set answer that counts its calls.
type fixed struct {
	err   error
	calls int
}

func (f *fixed) gate(context.Context, update.GateRequest) error { f.calls++; return f.err }

func TestAll(t *testing.T) {
	broken := errors.New("battery driver gone")
	for _, tc := range []struct {
		name   string
		errs   []error
		want   answer
		called []int
	}{
		{name: "none", want: answer{Go: true}},
		{name: "all go", errs: []error{nil, nil}, want: answer{Go: true}, called: []int{1, 1}},
		{
			name: "one waits", errs: []error{nil, update.NotNow(time.Minute, "in a sale"), nil},
			want: answer{After: time.Minute, Reason: "in a sale"}, called: []int{1, 1, 1},
		},
		{
			name: "reasons joined, longest wait",
			errs: []error{update.NotNow(time.Minute, "in a sale"), update.NotNow(time.Hour, "outside the install window"), update.NotNow(5*time.Minute, "battery at 10%")},
			want: answer{After: time.Hour, Reason: "in a sale; outside the install window; battery at 10%"}, called: []int{1, 1, 1},
		},
		{
			name: "a wait without a reason still waits", errs: []error{update.NotNow(time.Second, "")},
			want: answer{After: time.Second, Reason: ""}, called: []int{1},
		},
		{
			name: "broken stops", errs: []error{update.NotNow(time.Minute, "in a sale"), broken, nil},
			want: answer{Err: broken}, called: []int{1, 1, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fs []*fixed
			var gates []update.Gate
			for _, err := range tc.errs {
				f := &fixed{err: err}
				fs = append(fs, f)
				gates = append(gates, f.gate, nil)
			}
			err := All(gates...)(context.Background(), install(nil))
			var got answer
			var wait *update.NotNowError
			switch {
			case err == nil:
				got.Go = true
			case errors.As(err, &wait):
				got.After, got.Reason = wait.After, wait.Reason
				if wait.Stage != update.StageInstall {
					t.Errorf("Stage = %q", wait.Stage)
				}
			default:
				got.Err = err
			}
			if got != tc.want {
				t.Errorf("All = %+v, want %+v", got, tc.want)
			}
			for i, f := range fs {
				if f.calls != tc.called[i] {
					t.Errorf("gate %d called %d times, want %d", i, f.calls, tc.called[i])
				}
			}
		})
	}
}

func TestOnlyAndThen(t *testing.T) {
	wait := &fixed{err: update.NotNow(time.Minute, "in a sale")}
	pass := &fixed{}
	next := &fixed{err: update.NotNow(time.Hour, "asked")}
	only := Only(update.StageInstall, wait.gate)
	if err := only(context.Background(), download(nil)); err != nil || wait.calls != 0 {
		t.Errorf("Only(install) on download = %v after %d calls, want go without asking", err, wait.calls)
	}
	if err := only(context.Background(), install(nil)); err == nil || wait.calls != 1 {
		t.Errorf("Only(install) on install = %v after %d calls, want the gate's wait", err, wait.calls)
	}
	if err := Then(wait.gate, next.gate)(context.Background(), install(nil)); err != wait.err || next.calls != 0 {
		t.Errorf("Then(wait, next) = %v with next called %d times, want wait's answer and next not asked", err, next.calls)
	}
	if err := Then(pass.gate, next.gate)(context.Background(), install(nil)); err != next.err || next.calls != 1 {
		t.Errorf("Then(pass, next) = %v, want next's answer", err)
	}
	if err := Then(nil, nil)(context.Background(), install(nil)); err != nil {
		t.Errorf("Then(nil, nil) = %v, want go", err)
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", time.Nanosecond: "1s", 40 * time.Second: "40s", 59*time.Second + 1: "1m",
		time.Minute: "1m", 150 * time.Second: "2m30s", 59*time.Minute + 59*time.Second: "59m59s", time.Hour: "1h",
		3*time.Hour + 19*time.Minute + 30*time.Second: "3h20m", 47*time.Hour + 59*time.Minute: "47h59m",
		48 * time.Hour: "2d", 50*time.Hour + time.Second: "2d3h",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 20 << 20: "20.0 MiB", 48<<20 + 200<<10: "48.2 MiB", 3 << 30: "3.0 GiB", 5 << 40: "5120.0 GiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
