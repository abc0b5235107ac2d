package rollout_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// base is a valid rollout with the default batches and limits.
func base(mods ...func(*rollout.Rollout)) rollout.Rollout {
	r := rollout.Rollout{ID: "fw-1.2.0-eu", Release: "firmware@1.2.0", Start: t0}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*rollout.Rollout)
		field string // "" means valid
	}{
		{"zero fields take defaults", func(*rollout.Rollout) {}, ""},
		{"everything set", func(r *rollout.Rollout) {
			r.Target = rollout.Target{Models: []string{"P300"}, Channel: "beta", Groups: []string{"eu"}, Tags: []string{"lab"}}
			r.Pilot = []string{"t-1", "t-2"}
			r.Batches = []float64{0.5, 5, 25, 100}
			r.SuccessThreshold, r.FailureRate, r.MinFinished = 95, 5, 20
			r.ReasonRates = map[transport.Reason]float64{transport.ReasonBoot: 1}
			r.MaxStartsPerMinute, r.MaxConcurrent = 100, 1000
			r.Deadline, r.Expires = t0.Add(7*24*time.Hour), t0.Add(30*24*time.Hour)
			r.Soak, r.Retry = time.Hour, time.Minute
		}, ""},
		{"plan ending below 100", func(r *rollout.Rollout) { r.Batches = []float64{1, 5} }, ""},
		{"basis points", func(r *rollout.Rollout) { r.Batches = []float64{0.01, 0.25, 100} }, ""},
		{"no id", func(r *rollout.Rollout) { r.ID = "" }, "id"},
		{"bad id", func(r *rollout.Rollout) { r.ID = "fw 1.2" }, "id"},
		{"no release", func(r *rollout.Rollout) { r.Release = "" }, "release"},
		{"release with a space", func(r *rollout.Rollout) { r.Release = "firmware 1.2" }, "release"},
		{"empty model", func(r *rollout.Rollout) { r.Target.Models = []string{""} }, "target.models"},
		{"empty group", func(r *rollout.Rollout) { r.Target.Groups = []string{""} }, "target.groups"},
		{"empty tag", func(r *rollout.Rollout) { r.Target.Tags = []string{""} }, "target.tags"},
		{"empty pilot ID", func(r *rollout.Rollout) { r.Pilot = []string{""} }, "pilot"},
		{"pilot twice", func(r *rollout.Rollout) { r.Pilot = []string{"t-1", "t-1"} }, "pilot"},
		{"empty plan", func(r *rollout.Rollout) { r.Batches = []float64{} }, "batches"},
		{"zero batch", func(r *rollout.Rollout) { r.Batches = []float64{0, 100} }, "batches"},
		{"over 100", func(r *rollout.Rollout) { r.Batches = []float64{10, 101} }, "batches"},
		{"NaN batch", func(r *rollout.Rollout) { r.Batches = []float64{math.NaN()} }, "batches"},
		{"not rising", func(r *rollout.Rollout) { r.Batches = []float64{10, 10, 100} }, "batches"},
		{"falling", func(r *rollout.Rollout) { r.Batches = []float64{50, 10} }, "batches"},
		{"finer than a basis point", func(r *rollout.Rollout) { r.Batches = []float64{0.005, 100} }, "batches"},
		{"success threshold over 100", func(r *rollout.Rollout) { r.SuccessThreshold = 120 }, "success_threshold"},
		{"negative failure rate", func(r *rollout.Rollout) { r.FailureRate = -1 }, "failure_rate"},
		{"reason rate for ok", func(r *rollout.Rollout) { r.ReasonRates = map[transport.Reason]float64{transport.ReasonOK: 1} }, "reason_rates"},
		{"reason rate out of range", func(r *rollout.Rollout) {
			r.ReasonRates = map[transport.Reason]float64{transport.ReasonBoot: 150}
		}, "reason_rates"},
		{"negative min finished", func(r *rollout.Rollout) { r.MinFinished = -1 }, "min_finished"},
		{"negative rate cap", func(r *rollout.Rollout) { r.MaxStartsPerMinute = -1 }, "max_starts_per_minute"},
		{"negative concurrency cap", func(r *rollout.Rollout) { r.MaxConcurrent = -1 }, "max_concurrent"},
		{"negative soak", func(r *rollout.Rollout) { r.Soak = -time.Second }, "soak"},
		{"negative retry", func(r *rollout.Rollout) { r.Retry = -time.Second }, "retry"},
		{"negative lost after", func(r *rollout.Rollout) { r.LostAfter = -time.Second }, "lost_after"},
		{"expires before start", func(r *rollout.Rollout) { r.Expires = t0.Add(-time.Hour) }, "expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := base(tt.mod).Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			var ie *rollout.InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("Validate() = %v, want an InvalidError on %s", err, tt.field)
			}
			if !strings.HasPrefix(ie.Error(), "rollout: "+tt.field+": ") {
				t.Errorf("message %q does not name the field", ie.Error())
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := rollout.Rollout{Batches: []float64{50, 10}, MaxConcurrent: -1}.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ie *rollout.InvalidError
		if errors.As(e, &ie) {
			fields = append(fields, ie.Field)
		}
	}
	if got, want := strings.Join(fields, ","), "id,release,batches,max_concurrent"; got != want {
		t.Errorf("problems on %s, want %s (%v)", got, want, err)
	}
}

func TestEligible(t *testing.T) {
	dev := rollout.Device{ID: "t-1", Model: "P300", Groups: []string{"eu", "acme"}, Tags: []string{"lab", "4g"}}
	tests := []struct {
		name   string
		target rollout.Target
		dev    rollout.Device
		want   bool
	}{
		{"zero target matches all", rollout.Target{}, dev, true},
		{"model listed", rollout.Target{Models: []string{"A9", "P300"}}, dev, true},
		{"model not listed", rollout.Target{Models: []string{"A9"}}, dev, false},
		{"default channel", rollout.Target{Channel: "stable"}, dev, true},
		{"other channel", rollout.Target{Channel: "beta"}, dev, false},
		{"device on the channel", rollout.Target{Channel: "beta"}, rollout.Device{ID: "t-2", Channel: "beta"}, true},
		{"one group is enough", rollout.Target{Groups: []string{"us", "acme"}}, dev, true},
		{"no group in common", rollout.Target{Groups: []string{"us"}}, dev, false},
		{"all tags carried", rollout.Target{Tags: []string{"4g", "lab"}}, dev, true},
		{"a tag missing", rollout.Target{Tags: []string{"lab", "wifi"}}, dev, false},
		{"every criterion met", rollout.Target{Models: []string{"P300"}, Channel: "stable", Groups: []string{"eu"}, Tags: []string{"lab"}}, dev, true},
		{"one criterion failed", rollout.Target{Models: []string{"P300"}, Channel: "stable", Groups: []string{"eu"}, Tags: []string{"wifi"}}, dev, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base(func(r *rollout.Rollout) { r.Target = tt.target })
			if got := rollout.Eligible(r, tt.dev); got != tt.want {
				t.Errorf("Eligible = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCohortIsPinned(t *testing.T) {
	// A store may compute cohorts itself (see Cohort's doc); the formula
	// must not drift. These values were computed apart, with Python's
	// hashlib: int.from_bytes(sha256(rollout + b"\0" + device)[:8], "big") % 10000.
	for _, tt := range []struct {
		rollout, device string
		want            int
	}{
		{"fw-1.2.0-eu", "t-000001", 8250},
		{"fw-1.2.0-eu", "t-000002", 5752},
		{"pay-2.4", "t-000001", 9024},
	} {
		if got := rollout.Cohort(tt.rollout, tt.device); got != tt.want {
			t.Errorf("Cohort(%q, %q) = %d, want %d", tt.rollout, tt.device, got, tt.want)
		}
	}
}

func TestBatch(t *testing.T) {
	r := base(func(r *rollout.Rollout) { r.Pilot = []string{"t-000001", "lab-7"} })
	if got := rollout.Batch(r, "lab-7"); got != 0 {
		t.Errorf("pilot device in stage %d, want 0", got)
	}
	if got := rollout.Batch(r, "t-000001"); got != 0 {
		t.Errorf("pilot device in stage %d, want 0 whatever its cohort", got)
	}
	for i := range 1000 {
		id := fmt.Sprintf("t-%06d", i)
		b := rollout.Batch(r, id)
		if b != rollout.Batch(r, id) {
			t.Fatalf("%s: batch changed between calls", id)
		}
		if b < 0 || b >= r.Stages() {
			t.Fatalf("%s: batch %d outside 0..%d with a plan reaching 100%%", id, b, r.Stages()-1)
		}
		// Appending batches moves no device that already has one.
		short := base(func(r *rollout.Rollout) { r.Pilot = []string{"t-000001", "lab-7"}; r.Batches = []float64{1, 10} })
		if sb := rollout.Batch(short, id); sb != rollout.NoBatch && sb != b {
			t.Fatalf("%s: batch %d in the short plan, %d in the long one", id, sb, b)
		} else if sb == rollout.NoBatch && b <= 2 {
			t.Fatalf("%s: in no batch of {1, 10} but in batch %d of {1, 10, 50, 100}", id, b)
		}
	}
}

func TestBatchDistribution(t *testing.T) {
	const n = 100_000
	r := base(func(r *rollout.Rollout) { r.Batches = []float64{1, 10, 50, 100} })
	other := base(func(r *rollout.Rollout) { r.ID = "fw-1.2.0-us" })
	counts := make([]int, r.Stages())
	first, both := 0, 0
	for i := range n {
		id := fmt.Sprintf("t-%06d", i)
		b := rollout.Batch(r, id)
		counts[b]++
		if b == 1 {
			first++
			if rollout.Batch(other, id) == 1 {
				both++
			}
		}
	}
	cumulative := 0
	for i, want := range r.Batches {
		cumulative += counts[i+1]
		if got := 100 * float64(cumulative) / n; math.Abs(got-want) > 1 {
			t.Errorf("batches 1..%d hold %.2f%% of devices, want %v%% ± 1", i+1, got, want)
		}
	}
	if counts[0] != 0 {
		t.Errorf("%d devices in the pilot stage without a pilot list", counts[0])
	}
	// Two rollouts choose their first 1% independently: about 1% of one's
	// first batch is in the other's.
	if share := float64(both) / float64(first); share > 0.05 {
		t.Errorf("%d of %d first-batch devices are also first in another rollout (%.1f%%)", both, first, 100*share)
	}
}

func TestBatchPartialPlan(t *testing.T) {
	r := base(func(r *rollout.Rollout) { r.Batches = []float64{5} })
	none := 0
	for i := range 10_000 {
		if rollout.Batch(r, fmt.Sprintf("t-%06d", i)) == rollout.NoBatch {
			none++
		}
	}
	if none < 9300 || none > 9700 {
		t.Errorf("%d of 10000 devices in no batch of a 5%% plan, want about 9500", none)
	}
}
