package gate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// All is a gate that asks every gate, in order, and says go only when all
// of them do. When some say not now, it returns one [*update.NotNowError]
// whose Reason joins all their reasons with "; " and whose After is the
// longest of theirs: the update waits for the slowest condition. A gate
// that fails (returns any other error) stops the evaluation and its error
// is returned as is. Nil gates are skipped.
func All(gates ...update.Gate) update.Gate {
	gates = slices.DeleteFunc(slices.Clone(gates), func(g update.Gate) bool { return g == nil })
	return func(ctx context.Context, req update.GateRequest) error {
		var reasons []string
		var after time.Duration
		waiting := false
		for _, g := range gates {
			err := g(ctx, req)
			if err == nil {
				continue
			}
			var wait *update.NotNowError
			if !errors.As(err, &wait) {
				return err
			}
			waiting = true
			if wait.Reason != "" {
				reasons = append(reasons, wait.Reason)
			}
			after = max(after, wait.After)
		}
		if !waiting {
			return nil
		}
		return &update.NotNowError{Stage: req.Stage, After: after, Reason: strings.Join(reasons, "; ")}
	}
}

// Only applies g to stage and lets every other stage go.
func Only(stage update.Stage, g update.Gate) update.Gate {
	return func(ctx context.Context, req update.GateRequest) error {
		if req.Stage != stage || g == nil {
			return nil
		}
		return g(ctx, req)
	}
}

// Then asks next only once first says go, and returns first's answer
// otherwise. It puts a gate that involves a person after the ones that do
// not: the merchant is asked (see [NewPrompt]) only when the terminal is
// out of a sale, settled, inside its window and so on, never hours before.
func Then(first, next update.Gate) update.Gate {
	return func(ctx context.Context, req update.GateRequest) error {
		if first != nil {
			if err := first(ctx, req); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		return next(ctx, req)
	}
}

// notNow is the answer of a gate of this package.
func notNow(req update.GateRequest, after time.Duration, format string, args ...any) error {
	return &update.NotNowError{Stage: req.Stage, After: max(after, 0), Reason: fmt.Sprintf(format, args...)}
}

// stages is the set of stages a gate applies to: the given ones, or def.
type stages []update.Stage

func stagesOr(given []update.Stage, def ...update.Stage) (stages, error) {
	if len(given) == 0 {
		return def, nil
	}
	for _, s := range given {
		if s != update.StageDownload && s != update.StageInstall {
			return nil, invalid("Stages: %q is not a gated stage (download, install)", s)
		}
	}
	return slices.Clone(given), nil
}

func (s stages) has(st update.Stage) bool { return slices.Contains(s, st) }

// checkDurations refuses negative durations.
func checkDurations(gate string, ds map[string]time.Duration) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(ds)) {
		if ds[name] < 0 {
			errs = append(errs, invalid("%s: %s is negative (%s)", gate, name, ds[name]))
		}
	}
	return errors.Join(errs...)
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// callTimeout bounds each call a gate makes to a callback that reads the
// terminal's state (power, network, settlement): gates must not block.
const callTimeout = 10 * time.Second

// formatDuration writes d for a person, rounded up so that "opens in 1m"
// never says 0: "40s", "2m30s", "3h20m", "6d2h".
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	d = ceil(d, time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		m, s := d/time.Minute, (d%time.Minute)/time.Second
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 48*time.Hour:
		d = ceil(d, time.Minute)
		h, m := d/time.Hour, (d%time.Hour)/time.Minute
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		d = ceil(d, time.Hour)
		days, h := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

func ceil(d, unit time.Duration) time.Duration {
	if r := d % unit; r != 0 {
		return d - r + unit
	}
	return d
}

// formatBytes writes n for a person: "512 B", "48.2 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB"} {
		f /= unit
		if f < unit && f > -unit || u == "GiB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return "" // unreachable
}

// plural writes "1 heartbeat", "2 heartbeats".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
