package rollout

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

// Defaults for a [Rollout]'s zero fields.
const (
	// DefaultSuccessThreshold is the share, in percent, of a stage's
	// reachable devices that must have succeeded before the next stage
	// opens.
	DefaultSuccessThreshold = 90.0
	// DefaultFailureRate is the share, in percent, of a stage's finished
	// devices that may fail before the rollout halts.
	DefaultFailureRate = 10.0
	// DefaultMinFinished is how many devices of a stage must have finished
	// before its failure rate can halt the rollout.
	DefaultMinFinished = 10
	// DefaultRetry is how long a device that cannot be offered the release
	// yet is told to wait when its turn is not known: its stage is closed
	// or the rollout is paused or halted.
	DefaultRetry = 10 * time.Minute
	// DefaultLostAfter is how long a device that holds an unfinished offer
	// may stay silent before it is counted failed, with [ReasonLost]: a
	// day, so that a terminal switched off for the night is not a
	// failure, and one that an install bricked is one by the next day.
	DefaultLostAfter = 24 * time.Hour
)

// defaultBatches is the batch plan of a rollout that sets none: 1%, 10%,
// 50%, then everyone.
var defaultBatches = [...]float64{1, 10, 50, 100}

// Points is the size of the cohort space: a device's [Cohort] is in
// [0, Points), so one point is a basis point (0.01%) of the fleet.
const Points = 10000

// NoBatch is what [Batch] returns for a device in no stage: the last batch
// is below 100% and the device's cohort lies beyond it.
const NoBatch = -1

// Rollout is a staged rollout of one release to the devices its Target
// selects: first the Pilot devices (stage 0), then Batches (stages 1 to
// n), each opening when the one before has succeeded well enough, the
// whole halting by itself when failures pass its limits. It is a plain
// value the server stores; the functions of this package read it and never
// change it. Only [Rollout.Validate] checks it; the others assume a valid
// rollout.
//
// Percentages are float64 percent (90 means 90%). Batches resolve to
// basis points (0.01%).
type Rollout struct {
	// ID names the rollout: up to 64 letters, digits, '.', '_' and '-',
	// starting with a letter or digit. Cohorts are drawn from it, so
	// rollouts with different IDs pick different devices for their early
	// batches.
	ID string
	// Release is the release offered, as release.Release.ID names it:
	// component@version.
	Release string
	// Target selects the devices the rollout is for; the zero Target
	// selects every device.
	Target Target
	// Pilot lists device IDs that form stage 0, whatever their cohort; a
	// pilot device must still be targeted ([Eligible]). An empty pilot
	// stage is passed through at once.
	Pilot []string
	// Batches are cumulative percentages of the targeted fleet, rising, at
	// most 100, at basis-point resolution: {1, 10, 50, 100} makes stage 1
	// the first 1% of cohorts, stage 2 the next 9%, and so on. nil means
	// {1, 10, 50, 100}. A plan ending below 100 reaches only that share of
	// the fleet; appending batches later extends it without moving any
	// device that already has a stage.
	Batches []float64
	// Start is when the rollout may begin; zero means as soon as
	// [Decide] first runs.
	Start time.Time
	// Soak is the least time a stage stays the newest open one before the
	// next may open, so slow failures have time to show; zero means none.
	Soak time.Duration
	// SuccessThreshold is the share, in percent, of a stage's devices
	// that must have succeeded before the next stage opens. Devices that
	// went offline before they were offered the release, and expired
	// devices, are left out of the share: they count neither for nor
	// against. A device that went silent holding an offer is not left out:
	// it may be one the release bricked, so it holds the stage back until
	// it reports or is lost (see LostAfter). Zero means
	// [DefaultSuccessThreshold].
	SuccessThreshold float64
	// FailureRate halts the rollout when the share, in percent, of a
	// stage's finished devices that failed passes it (is greater). Zero
	// means [DefaultFailureRate]; 100 never halts.
	FailureRate float64
	// ReasonRates are limits like FailureRate for failures of one kind:
	// {transport.ReasonBoot: 1} halts when more than 1% of a stage's
	// finished devices failed to boot, whatever the overall rate. A limit
	// of 0 halts on any such failure once MinFinished devices have
	// finished. nil means none.
	ReasonRates map[transport.Reason]float64
	// MinFinished is how many devices of a stage must have finished
	// (succeeded or failed) before its failure rates can halt the
	// rollout; a stage with fewer devices is judged once all of them have
	// finished, leaving out those offline since before their offer (a
	// silent device holding an offer is waited for until it is lost).
	// Zero means [DefaultMinFinished].
	MinFinished int
	// MaxStartsPerMinute caps the devices offered the release for the
	// first time in each calendar minute; zero means no cap.
	MaxStartsPerMinute int
	// MaxConcurrent caps the devices holding an unfinished offer
	// (offered, downloading or installing), silent ones included: a
	// device the release bricked keeps its place; zero means no cap.
	MaxConcurrent int
	// LostAfter is how long a device that holds an unfinished offer may
	// stay silent (no heartbeat, no report) before it is counted failed
	// with [ReasonLost]; zero means [DefaultLostAfter]. A lost device that
	// reports later is counted as its report says.
	LostAfter time.Duration
	// Deadline is when the update becomes required: offers made from then
	// on are blocking, and offers before it carry it so the terminal lets
	// the merchant defer only until then. Zero means never required.
	Deadline time.Time
	// Expires ends the rollout's tasks: from then on nothing is offered,
	// and a device that has not finished is expired, not failed. Zero
	// means never.
	Expires time.Time
	// Retry is how long a device is told to wait when its turn is not
	// known (its stage is closed, the rollout paused or halted); zero
	// means [DefaultRetry]. Each device's wait is spread by up to a
	// further Retry, by its ID, so devices do not return together.
	Retry time.Duration
}

// Target selects devices. A device matches when it satisfies every
// criterion that is set; the zero Target matches every device.
type Target struct {
	// Models the device must be one of; empty means any model.
	Models []string
	// Channel the device must be on; a device that names none is on
	// release.DefaultChannel. Empty means any channel.
	Channel string
	// Groups the device must be in at least one of (regions, merchants,
	// acquirers); empty means any group.
	Groups []string
	// Tags the device must carry, all of them; empty means no tag is
	// needed.
	Tags []string
}

// Device is what targeting looks at.
type Device struct {
	ID      string
	Model   string
	Channel string // empty means release.DefaultChannel
	Groups  []string
	Tags    []string
}

// Eligible reports whether r targets d: d satisfies every criterion set in
// r.Target. A device r does not target is never part of its counts.
func Eligible(r Rollout, d Device) bool {
	t := r.Target
	if len(t.Models) > 0 && !slices.Contains(t.Models, d.Model) {
		return false
	}
	if t.Channel != "" && t.Channel != cmp.Or(d.Channel, release.DefaultChannel) {
		return false
	}
	if len(t.Groups) > 0 && !slices.ContainsFunc(t.Groups, func(g string) bool { return slices.Contains(d.Groups, g) }) {
		return false
	}
	for _, tag := range t.Tags {
		if !slices.Contains(d.Tags, tag) {
			return false
		}
	}
	return true
}

// Cohort is a device's stable place in the rollout's cohort space,
// in [0, [Points]): the first 8 bytes of SHA-256(rolloutID, 0x00,
// deviceID), big-endian, modulo Points. It never changes for a pair, and
// is independent between rollouts, so a store can compute and index it.
func Cohort(rolloutID, deviceID string) int {
	h := sha256.New()
	h.Write([]byte(rolloutID))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	var sum [sha256.Size]byte
	return int(binary.BigEndian.Uint64(h.Sum(sum[:0])) % Points)
}

// Batch returns the stage a device is in: 0 for a pilot device, i for a
// device whose [Cohort] falls in Batches[i-1], or [NoBatch]. It does not
// look at targeting: see [Eligible].
func Batch(r Rollout, deviceID string) int {
	if slices.Contains(r.Pilot, deviceID) {
		return 0
	}
	p := Cohort(r.ID, deviceID)
	for i, bound := range r.bounds() {
		if p < bound {
			return i + 1
		}
	}
	return NoBatch
}

// Stages returns how many stages r has: the pilot stage and one per batch.
func (r Rollout) Stages() int { return 1 + len(r.batches()) }

func (r Rollout) batches() []float64 {
	if r.Batches == nil {
		return defaultBatches[:]
	}
	return r.Batches
}

// bounds returns the batches' upper bounds in cohort points.
func (r Rollout) bounds() []int {
	bs := r.batches()
	out := make([]int, len(bs))
	for i, p := range bs {
		out[i] = int(math.Round(p * Points / 100))
	}
	return out
}

func (r Rollout) successThreshold() float64 {
	return cmp.Or(r.SuccessThreshold, DefaultSuccessThreshold)
}
func (r Rollout) failureRate() float64 { return cmp.Or(r.FailureRate, DefaultFailureRate) }
func (r Rollout) minFinished() int     { return cmp.Or(r.MinFinished, DefaultMinFinished) }
func (r Rollout) retry() time.Duration { return cmp.Or(r.Retry, DefaultRetry) }
func (r Rollout) lostAfter() time.Duration {
	return cmp.Or(r.LostAfter, DefaultLostAfter)
}

// Validate reports every problem with r's definition, joined; each is an
// [*InvalidError] and matches [ErrInvalid]. nil means r is valid.
func (r Rollout) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, invalid(field, format, args...)) }

	if verify.CheckName("id", r.ID) != nil {
		add("id", "%.80q: want 1 to 64 letters, digits, '.', '_' and '-', starting with a letter or digit", r.ID)
	}
	if r.Release == "" || len(r.Release) > 256 || strings.ContainsFunc(r.Release, unicode.IsSpace) {
		add("release", "%.80q: want a release ID such as firmware@1.2.0", r.Release)
	}
	for _, m := range r.Target.Models {
		if m == "" {
			add("target.models", "empty model name")
		}
	}
	for _, g := range r.Target.Groups {
		if g == "" {
			add("target.groups", "empty group name")
		}
	}
	for _, tag := range r.Target.Tags {
		if tag == "" {
			add("target.tags", "empty tag")
		}
	}
	seen := make(map[string]bool, len(r.Pilot))
	for _, id := range r.Pilot {
		switch {
		case id == "":
			add("pilot", "empty device ID")
		case seen[id]:
			add("pilot", "device %q listed twice", id)
		}
		seen[id] = true
	}
	if r.Batches != nil && len(r.Batches) == 0 {
		add("batches", "empty plan: want nil for the default or at least one batch")
	}
	prev := 0
	for i, p := range r.Batches {
		if math.IsNaN(p) || p <= 0 || p > 100 {
			add("batches", "batch %d is %v%%: want more than 0 and at most 100", i+1, p)
			continue
		}
		b := int(math.Round(p * Points / 100))
		if math.Abs(p*Points/100-float64(b)) > 1e-6 {
			add("batches", "batch %d is %v%%: want a whole number of basis points (0.01%%)", i+1, p)
		}
		if b <= prev {
			add("batches", "batch %d is %v%%: want cumulative percentages, each above the one before", i+1, p)
		}
		prev = b
	}
	percent := func(field string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 100 {
			add(field, "%v%%: want 0 (the default) to 100", v)
		}
	}
	percent("success_threshold", r.SuccessThreshold)
	percent("failure_rate", r.FailureRate)
	for _, reason := range slices.Sorted(maps.Keys(r.ReasonRates)) {
		v := r.ReasonRates[reason]
		if reason == "" || reason == transport.ReasonOK {
			add("reason_rates", "%q is not a failure reason", reason)
		}
		if math.IsNaN(v) || v < 0 || v > 100 {
			add("reason_rates", "%s: %v%%: want 0 to 100", reason, v)
		}
	}
	if r.MinFinished < 0 {
		add("min_finished", "%d: want 0 (the default) or more", r.MinFinished)
	}
	if r.MaxStartsPerMinute < 0 {
		add("max_starts_per_minute", "%d: want 0 (no cap) or more", r.MaxStartsPerMinute)
	}
	if r.MaxConcurrent < 0 {
		add("max_concurrent", "%d: want 0 (no cap) or more", r.MaxConcurrent)
	}
	if r.Soak < 0 {
		add("soak", "%v: want 0 (none) or more", r.Soak)
	}
	if r.Retry < 0 {
		add("retry", "%v: want 0 (the default) or more", r.Retry)
	}
	if r.LostAfter < 0 {
		add("lost_after", "%v: want 0 (the default) or more", r.LostAfter)
	}
	if !r.Expires.IsZero() && !r.Start.IsZero() && !r.Expires.After(r.Start) {
		add("expires", "%v is not after the start, %v", r.Expires, r.Start)
	}
	return errors.Join(errs...)
}

// spread returns a stable share of window for a device, so devices told
// to come back do not all come back at once. It is a hash, not a cohort:
// FNV-1a is enough, and cheaper than SHA-256 on every refused check.
func spread(r Rollout, deviceID string, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, s := range [...]string{r.ID, "\x01", deviceID} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
	}
	return time.Duration(h % uint64(window))
}
