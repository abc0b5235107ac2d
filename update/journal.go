package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// State is where an update stands.
type State string

const (
	StateIdle        State = "idle"
	StateOffered     State = "offered"
	StateGated       State = "gated"
	StateDownloading State = "downloading"
	StateDownloaded  State = "downloaded"
	StateBackingUp   State = "backing-up"
	StateInstalling  State = "installing"
	StateMigrating   State = "migrating"
	StateVerifying   State = "verifying"
	StateProbation   State = "probation"
	StateCommitting  State = "committing"
	StateCommitted   State = "committed"
	StateRollingBack State = "rolling-back"
	StateRolledBack  State = "rolled-back"
	StateFailed      State = "failed"
)

// installed reports whether the state is at or past the point where the
// terminal may have changed: from here on, the way out is forward to
// committed or back through a rollback, never a plain refusal.
func (s State) installed() bool {
	switch s {
	case StateInstalling, StateMigrating, StateVerifying, StateProbation, StateCommitting, StateCommitted,
		StateRollingBack, StateRolledBack:
		return true
	}
	return false
}

func (s State) known() bool {
	switch s {
	case StateOffered, StateGated, StateDownloading, StateDownloaded, StateBackingUp, StateInstalling,
		StateMigrating, StateVerifying, StateProbation, StateCommitting, StateCommitted, StateRollingBack,
		StateRolledBack, StateFailed:
		return true
	}
	return false
}

const (
	journalFile   = "journal.json"
	journalSchema = 1
	// maxJournal bounds the journal file.
	maxJournal = 1 << 20
	// maxRefused bounds how many failed releases the journal remembers.
	maxRefused = 32
	// maxJunk bounds how many unverifiable bundles it remembers.
	maxJunk = 16
)

// journal is the agent's durable record. Every change is written whole and
// atomically.
type journal struct {
	Schema int `json:"schema"`
	// Components is what is installed, by component name.
	Components map[string]component `json:"components"`
	// Update is the update in progress, nil when idle.
	Update *inflight `json:"update,omitempty"`
	// Last is the outcome of the last update that ended.
	Last *transport.Result `json:"last,omitempty"`
	// Refused lists verified releases that failed here and are not to be
	// tried again ("component@version digest"), oldest first. Only a
	// signed release can enter it, so junk cannot push one out.
	Refused []string `json:"refused,omitempty"`
	// Junk lists hashes of bundles that did not verify, so the same junk
	// is not reported every pass.
	Junk []string `json:"junk,omitempty"`
	// Attempts counts, per release, the installs that were rolled back.
	Attempts []attempts `json:"attempts,omitempty"`
}

type attempts struct {
	Release string `json:"release"` // releaseKey
	N       int    `json:"n"`
}

// attempted returns how many times the release was rolled back.
func (j *journal) attempted(key string) int {
	for _, a := range j.Attempts {
		if a.Release == key {
			return a.N
		}
	}
	return 0
}

// attempt counts one more rollback of the release, keeping the newest
// maxRefused entries.
func (j *journal) attempt(key string) int {
	for i, a := range j.Attempts {
		if a.Release == key {
			j.Attempts[i].N++
			return j.Attempts[i].N
		}
	}
	j.Attempts = append(j.Attempts, attempts{Release: key, N: 1})
	if n := len(j.Attempts); n > maxRefused {
		j.Attempts = j.Attempts[n-maxRefused:]
	}
	return 1
}

type component struct {
	Version string `json:"version"`
	Floor   string `json:"floor,omitempty"`
}

// inflight is one update from offer to its end. It holds enough to finish
// or undo the update without the bundle; the bundle itself is kept in its
// own file (see bundlePath), named and checked by its hash.
type inflight struct {
	ID    string `json:"id"` // random; report IDs derive from it
	State State  `json:"state"`
	// BundleHash names and checks the stored bundle, which is verified
	// again at every resume until the install starts.
	BundleHash  string           `json:"bundle_hash"`
	ArtifactURL string           `json:"artifact_url,omitempty"`
	Mirrors     []string         `json:"mirrors,omitempty"`
	Policy      transport.Policy `json:"policy"`
	Release     string           `json:"release"`
	Kind        verify.Kind      `json:"kind"`
	Digest      verify.Digest    `json:"digest"` // the artifact's
	Component   string           `json:"component"`
	From        string           `json:"from,omitempty"`
	To          string           `json:"to"`
	Floor       string           `json:"floor,omitempty"` // the release's, adopted on commit
	Accepted    time.Time        `json:"accepted"`
	// Snapshot is the backup taken before installing; Rescue, the one
	// taken of the new version's data before a rollback from probation.
	Snapshot string `json:"snapshot,omitempty"`
	Rescue   string `json:"rescue,omitempty"`
	// StepRuns counts the starts of the current state's step (backup,
	// install, checks); it is journaled before each start so that a step
	// that keeps killing the terminal is given up, not retried forever.
	StepRuns int `json:"step_runs,omitempty"`
	// DiskFullRuns counts passes whose download failed for lack of space.
	DiskFullRuns int `json:"disk_full_runs,omitempty"`
	// Failures counts failed attempts to commit or roll back; the first
	// is reported as needing attention.
	Failures int `json:"failures,omitempty"`
	// Attempt numbers this install of the release, from 1.
	Attempt int `json:"attempt,omitempty"`
	// Probation: when it began, the heartbeats counted in earlier boots,
	// and the vendor's verdict.
	ProbationStart time.Time `json:"probation_start,omitzero"`
	ProbationBeats int       `json:"probation_beats,omitempty"`
	MarkedGood     bool      `json:"marked_good,omitempty"`
	MarkedBad      string    `json:"marked_bad,omitempty"`
	// Package is the local release directory of a manual update, and
	// Manual the credential that authorised it; both empty for updates
	// the server offered.
	Package string            `json:"package,omitempty"`
	Manual  *transport.Manual `json:"manual,omitempty"`
	// Outcome, Reason and Detail are set once the end is known.
	Outcome transport.Outcome `json:"outcome,omitempty"`
	Reason  transport.Reason  `json:"reason,omitempty"`
	Detail  string            `json:"detail,omitempty"`
	// FailedIn is the state the update failed in.
	FailedIn State `json:"failed_in,omitempty"`
}

func loadJournal(fsys durable.FS, dir string, factory map[string]string) (*journal, error) {
	path := filepath.Join(dir, journalFile)
	b, err := durable.ReadFile(fsys, path, maxJournal, ErrJournal)
	if errors.Is(err, fs.ErrNotExist) {
		j := &journal{Schema: journalSchema, Components: map[string]component{}}
		for name, v := range factory {
			j.Components[name] = component{Version: v}
		}
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	// Unknown fields are ignored, not refused: after a firmware rollback an
	// older agent must still read what a newer one wrote. Incompatible
	// changes bump the schema instead.
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrJournal, path, err)
	}
	if j.Schema != journalSchema {
		return nil, fmt.Errorf("%w: %s: schema %d, want %d", ErrJournal, path, j.Schema, journalSchema)
	}
	if j.Components == nil {
		j.Components = map[string]component{}
	}
	if j.Update != nil && !j.Update.State.known() {
		return nil, fmt.Errorf("%w: %s: unknown state %q", ErrJournal, path, j.Update.State)
	}
	return &j, nil
}

func (j *journal) save(fsys durable.FS, dir string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	if err := durable.WriteFile(fsys, filepath.Join(dir, journalFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	return nil
}

// clone returns a deep copy, so a failed save leaves the in-memory journal
// as it was on disk.
func (j *journal) clone() *journal {
	c := *j
	c.Components = make(map[string]component, len(j.Components))
	for k, v := range j.Components {
		c.Components[k] = v
	}
	if j.Update != nil {
		u := *j.Update
		u.Mirrors = slices.Clone(u.Mirrors)
		c.Update = &u
	}
	if j.Last != nil {
		l := *j.Last
		c.Last = &l
	}
	c.Refused = append([]string(nil), j.Refused...)
	c.Junk = append([]string(nil), j.Junk...)
	c.Attempts = append([]attempts(nil), j.Attempts...)
	return &c
}

// remember appends key to list unless it is there, keeping the newest max.
func remember(list []string, key string, max int) []string {
	if slices.Contains(list, key) {
		return list
	}
	list = append(list, key)
	if n := len(list); n > max {
		list = list[n-max:]
	}
	return list
}

func (j *journal) componentList() []transport.Component {
	out := make([]transport.Component, 0, len(j.Components))
	for name, c := range j.Components {
		out = append(out, transport.Component{Name: name, Version: c.Version, Floor: c.Floor})
	}
	sortComponents(out)
	return out
}
