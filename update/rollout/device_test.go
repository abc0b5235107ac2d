package rollout_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/rollout"
)

func TestObserve(t *testing.T) {
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	at := func(p rollout.Phase, reason transport.Reason, offered, updated time.Time) rollout.DeviceState {
		return rollout.DeviceState{DeviceID: "t-1", Stage: 1, Phase: p, Reason: reason, OfferedAt: offered, UpdatedAt: updated}
	}
	pending := rollout.DeviceState{DeviceID: "t-1", Stage: 1}
	tests := []struct {
		name   string
		from   rollout.DeviceState
		phase  rollout.Phase
		reason transport.Reason
		want   rollout.DeviceState
	}{
		{"offered: the start", pending, rollout.PhaseOffered, "", at(rollout.PhaseOffered, "", t2, t2)},
		{"downloading keeps the start", at(rollout.PhaseOffered, "", t1, t1), rollout.PhaseDownloading, "",
			at(rollout.PhaseDownloading, "", t1, t2)},
		{"no going back", at(rollout.PhaseInstalling, "", t1, t1), rollout.PhaseDownloading, "",
			at(rollout.PhaseInstalling, "", t1, t1)},
		{"offered again is no new start", at(rollout.PhaseOffered, "", t1, t1), rollout.PhaseOffered, "",
			at(rollout.PhaseOffered, "", t1, t1)},
		{"failed keeps its reason", at(rollout.PhaseInstalling, "", t1, t1), rollout.PhaseFailed, transport.ReasonHealth,
			at(rollout.PhaseFailed, transport.ReasonHealth, t1, t2)},
		{"success drops a reason", at(rollout.PhaseInstalling, "", t1, t1), rollout.PhaseSucceeded, transport.ReasonOK,
			at(rollout.PhaseSucceeded, "", t1, t2)},
		{"succeeded is final", at(rollout.PhaseSucceeded, "", t1, t1), rollout.PhaseFailed, transport.ReasonBoot,
			at(rollout.PhaseSucceeded, "", t1, t1)},
		// A later success is a fact: it overrides a failure (review M3).
		{"a success overrides a failure", at(rollout.PhaseFailed, transport.ReasonBoot, t1, t1), rollout.PhaseSucceeded, "",
			at(rollout.PhaseSucceeded, "", t1, t2)},
		{"a failure keeps its first reason", at(rollout.PhaseFailed, transport.ReasonBoot, t1, t1), rollout.PhaseFailed,
			transport.ReasonHealth, at(rollout.PhaseFailed, transport.ReasonBoot, t1, t1)},
		{"a reason replaces lost", at(rollout.PhaseFailed, rollout.ReasonLost, t1, t1), rollout.PhaseFailed,
			transport.ReasonBoot, at(rollout.PhaseFailed, transport.ReasonBoot, t1, t2)},
		{"failed does not go back to work", at(rollout.PhaseFailed, rollout.ReasonLost, t1, t1), rollout.PhaseInstalling, "",
			at(rollout.PhaseFailed, rollout.ReasonLost, t1, t1)},
		{"a report without an offer starts it", pending, rollout.PhaseFailed, transport.ReasonDiskFull,
			at(rollout.PhaseFailed, transport.ReasonDiskFull, t2, t2)},
		{"expired pending device was never started", pending, rollout.PhaseExpired, "",
			at(rollout.PhaseExpired, "", time.Time{}, t2)},
		{"expired device may still report", at(rollout.PhaseExpired, "", t1, t1), rollout.PhaseSucceeded, "",
			at(rollout.PhaseSucceeded, "", t1, t2)},
		{"current: no start", pending, rollout.PhaseCurrent, "", at(rollout.PhaseCurrent, "", time.Time{}, t2)},
		{"current is final", at(rollout.PhaseCurrent, "", time.Time{}, t1), rollout.PhaseFailed, transport.ReasonBoot,
			at(rollout.PhaseCurrent, "", time.Time{}, t1)},
		{"expired device does not go back to work", at(rollout.PhaseExpired, "", t1, t1), rollout.PhaseDownloading, "",
			at(rollout.PhaseExpired, "", t1, t1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.from.Observe(tt.phase, tt.reason, t2); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Observe(%s, %q)\n got %+v\nwant %+v", tt.phase, tt.reason, got, tt.want)
			}
		})
	}
}

func TestMarkOfferedAndExpire(t *testing.T) {
	d := rollout.Track(base(), "t-000001")
	if d.Phase != rollout.PhasePending || d.Stage != rollout.Batch(base(), "t-000001") {
		t.Fatalf("Track = %+v", d)
	}
	d = d.MarkOffered(t0).MarkOffered(t0.Add(time.Hour))
	if !d.OfferedAt.Equal(t0) || d.Phase != rollout.PhaseOffered {
		t.Errorf("offered twice: %+v, want the first offer kept", d)
	}
	if e := d.Expire(t0.Add(2 * time.Hour)); e.Phase != rollout.PhaseExpired {
		t.Errorf("Expire on an offered device: %s", e.Phase)
	}
	done := d.Observe(rollout.PhaseSucceeded, "", t0.Add(time.Hour))
	if e := done.Expire(t0.Add(2 * time.Hour)); e != done {
		t.Errorf("Expire changed a finished device: %+v", e)
	}
	if (rollout.DeviceState{}).Phase.Finished() {
		t.Error("the zero phase is finished")
	}
}

func TestPhaseOf(t *testing.T) {
	tests := []struct {
		outcome transport.Outcome
		reason  transport.Reason
		want    rollout.Phase
	}{
		{transport.OutcomeCommitted, transport.ReasonOK, rollout.PhaseSucceeded},
		{transport.OutcomeRefused, transport.ReasonUpToDate, rollout.PhaseSucceeded},
		{transport.OutcomeRefused, transport.ReasonSignature, rollout.PhaseFailed},
		{transport.OutcomeRolledBack, transport.ReasonHealth, rollout.PhaseFailed},
		{transport.OutcomeNeedsAttention, transport.ReasonRollbackFailed, rollout.PhaseFailed},
		{"", "", rollout.PhaseFailed},
	}
	for _, tt := range tests {
		if got := rollout.PhaseOf(tt.outcome, tt.reason); got != tt.want {
			t.Errorf("PhaseOf(%q, %q) = %s, want %s", tt.outcome, tt.reason, got, tt.want)
		}
	}
}

func TestPhaseOfState(t *testing.T) {
	// The agent's state names (update.State).
	tests := map[string]rollout.Phase{
		"idle": "", "offered": rollout.PhaseOffered, "gated": rollout.PhaseOffered,
		"downloading": rollout.PhaseDownloading, "downloaded": rollout.PhaseDownloading,
		"backing-up": rollout.PhaseInstalling, "installing": rollout.PhaseInstalling,
		"migrating": rollout.PhaseInstalling, "verifying": rollout.PhaseInstalling,
		"probation": rollout.PhaseInstalling, "committing": rollout.PhaseInstalling,
		"rolling-back": rollout.PhaseInstalling,
		// Endings come with the report and its reason code.
		"committed": "", "rolled-back": "", "failed": "", "": "",
	}
	for state, want := range tests {
		got, ok := rollout.PhaseOfState(state)
		if got != want || ok != (want != "") {
			t.Errorf("PhaseOfState(%q) = %q, %v; want %q", state, got, ok, want)
		}
	}
}

func TestTally(t *testing.T) {
	r := base(func(r *rollout.Rollout) { r.Batches = []float64{50, 100} })
	dev := func(stage int, p rollout.Phase, reason transport.Reason, offline bool) rollout.DeviceState {
		return rollout.DeviceState{Stage: stage, Phase: p, Reason: reason, Offline: offline}
	}
	devices := []rollout.DeviceState{
		dev(0, "", "", false), // the zero phase is pending
		dev(0, rollout.PhaseSucceeded, "", false),
		dev(0, rollout.PhaseSucceeded, "", true), // finished: offline no longer matters
		dev(1, rollout.PhasePending, "", false),
		dev(1, rollout.PhasePending, "", true), // offline is not pending, and never failed
		dev(1, rollout.PhaseOffered, "", false),
		dev(1, rollout.PhaseDownloading, "", false),
		dev(1, rollout.PhaseDownloading, "", true), // silent holding an offer: may be bricked
		dev(1, rollout.PhaseInstalling, "", false),
		dev(1, rollout.PhaseFailed, transport.ReasonHealth, false),
		dev(1, rollout.PhaseFailed, transport.ReasonHealth, true),
		dev(1, rollout.PhaseFailed, transport.ReasonBoot, false),
		dev(2, rollout.PhaseExpired, "", false),
		dev(2, rollout.PhaseExpired, "", true),
		dev(2, rollout.PhaseCurrent, "", false),               // ran the release already
		dev(rollout.NoBatch, rollout.PhasePending, "", false), // in no stage
		dev(3, rollout.PhasePending, "", false),               // beyond the plan
	}
	want := []rollout.Counts{
		{Pending: 1, Succeeded: 2},
		{Pending: 1, Offered: 1, Downloading: 1, Installing: 1, Offline: 1, Silent: 1, Failed: rollout.Failures{
			Total: 3, ByReason: map[transport.Reason]int{transport.ReasonHealth: 2, transport.ReasonBoot: 1}}},
		{Expired: 2, Current: 1},
	}
	got := rollout.Tally(r, devices)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Tally\n got %+v\nwant %+v", got, want)
	}
	c := got[1]
	if c.Total() != 9 || c.InFlight() != 4 || c.Finished() != 3 || c.Unfinished() != 6 {
		t.Errorf("stage 1: total %d, in flight %d, finished %d, unfinished %d; want 9, 4, 3, 6",
			c.Total(), c.InFlight(), c.Finished(), c.Unfinished())
	}
}

func TestLoadOf(t *testing.T) {
	now := t0.Add(10*time.Minute + 30*time.Second)
	devices := []rollout.DeviceState{
		{Phase: rollout.PhaseOffered, OfferedAt: now.Truncate(time.Minute)},                // this minute, in flight
		{Phase: rollout.PhaseDownloading, OfferedAt: now},                                  // this minute, in flight
		{Phase: rollout.PhaseInstalling, OfferedAt: now.Add(-time.Minute)},                 // last minute
		{Phase: rollout.PhaseOffered, OfferedAt: now.Add(-5 * time.Second), Offline: true}, // started, silent: keeps its place
		{Phase: rollout.PhaseSucceeded, OfferedAt: now.Add(-10 * time.Second)},             // started this minute, done
		{Phase: rollout.PhasePending},
	}
	got := rollout.LoadOf(devices, now)
	if want := (rollout.Load{StartedThisMinute: 4, InFlight: 4}); got != want {
		t.Errorf("LoadOf = %+v, want %+v", got, want)
	}
}

// A device that goes silent before its offer waits; one that goes silent
// holding an offer is silent, and lost (failed) after LostAfter (review
// H1).
func TestSilent(t *testing.T) {
	r := base(func(r *rollout.Rollout) { r.LostAfter = 6 * time.Hour })
	changed := t0.Add(time.Hour) // the device's last change
	tests := []struct {
		name    string
		mod     func(*rollout.Rollout)
		phase   rollout.Phase
		since   time.Time // last heard
		now     time.Time
		want    rollout.Phase
		reason  transport.Reason
		offline bool
	}{
		{name: "pending: offline, never lost", phase: rollout.PhasePending, since: t0, now: t0.Add(30 * 24 * time.Hour),
			want: rollout.PhasePending, offline: true},
		{name: "offered, silent a while", phase: rollout.PhaseOffered, since: t0, now: changed.Add(6*time.Hour - time.Second),
			want: rollout.PhaseOffered, offline: true},
		{name: "installing, silent for LostAfter: lost", phase: rollout.PhaseInstalling, since: changed, now: changed.Add(6 * time.Hour),
			want: rollout.PhaseFailed, reason: rollout.ReasonLost},
		{name: "counted from the last change when later", phase: rollout.PhaseDownloading, since: t0, now: t0.Add(6 * time.Hour),
			want: rollout.PhaseDownloading, offline: true},
		{name: "counted from the last beat when later", phase: rollout.PhaseDownloading, since: changed.Add(time.Hour),
			now: changed.Add(6 * time.Hour), want: rollout.PhaseDownloading, offline: true},
		{name: "default: a day", mod: func(r *rollout.Rollout) { r.LostAfter = 0 }, phase: rollout.PhaseOffered, since: changed,
			now: changed.Add(rollout.DefaultLostAfter), want: rollout.PhaseFailed, reason: rollout.ReasonLost},
		{name: "finished: unchanged", phase: rollout.PhaseSucceeded, since: t0, now: t0.Add(30 * 24 * time.Hour),
			want: rollout.PhaseSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := r
			if tt.mod != nil {
				tt.mod(&r)
			}
			d := rollout.DeviceState{DeviceID: "t-1", Stage: 1, Phase: tt.phase, UpdatedAt: changed}
			got := d.Silent(r, tt.since, tt.now)
			if got.Phase != tt.want || got.Reason != tt.reason || got.Offline != tt.offline {
				t.Errorf("Silent = %s %q offline %v; want %s %q offline %v", got.Phase, got.Reason, got.Offline,
					tt.want, tt.reason, tt.offline)
			}
		})
	}
}
