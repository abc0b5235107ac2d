package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/internal/atomicfile"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/internal/version"
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
	StateVerifying   State = "verifying"
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
	case StateInstalling, StateVerifying, StateCommitted, StateRollingBack, StateRolledBack:
		return true
	}
	return false
}

func (s State) known() bool {
	switch s {
	case StateOffered, StateGated, StateDownloading, StateDownloaded, StateBackingUp, StateInstalling,
		StateVerifying, StateCommitted, StateRollingBack, StateRolledBack, StateFailed:
		return true
	}
	return false
}

const (
	journalFile   = "journal.json"
	journalSchema = 1
	// maxJournal bounds the journal: it holds a signed bundle, whose own
	// limit dominates.
	maxJournal = 64 << 20
	// maxRefused bounds how many refused releases the journal remembers.
	maxRefused = 32
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
	// Refused lists releases not to try again ("component@version digest"),
	// oldest first.
	Refused []string `json:"refused,omitempty"`
}

type component struct {
	Version string `json:"version"`
	Floor   string `json:"floor,omitempty"`
}

// inflight is one update from offer to its end.
type inflight struct {
	ID    string `json:"id"` // random; report IDs derive from it
	State State  `json:"state"`
	// Bundle is the signed bundle as received; it is verified again
	// whenever the agent resumes.
	Bundle      json.RawMessage  `json:"bundle"`
	ArtifactURL string           `json:"artifact_url,omitempty"`
	Policy      transport.Policy `json:"policy"`
	Release     string           `json:"release"`
	Digest      verify.Digest    `json:"digest"` // the artifact's
	Component   string           `json:"component"`
	From        string           `json:"from,omitempty"`
	To          string           `json:"to"`
	Accepted    time.Time        `json:"accepted"`
	// Snapshot is the backup taken before installing.
	Snapshot string `json:"snapshot,omitempty"`
	// DownloadRuns counts passes that failed to download.
	DownloadRuns int `json:"download_runs,omitempty"`
	// RollbackRuns counts rollbacks that failed.
	RollbackRuns int `json:"rollback_runs,omitempty"`
	// Outcome, Reason and Detail are set once the end is known.
	Outcome transport.Outcome `json:"outcome,omitempty"`
	Reason  transport.Reason  `json:"reason,omitempty"`
	Detail  string            `json:"detail,omitempty"`
	// FailedIn is the state the update failed in.
	FailedIn State `json:"failed_in,omitempty"`
}

func loadJournal(dir string, factory map[string]string) (*journal, error) {
	path := filepath.Join(dir, journalFile)
	f, err := os.Open(path)
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
	defer f.Close()
	var j journal
	if err := jsonwire.Decode(f, maxJournal, &j); err != nil {
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

func (j *journal) save(dir string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, journalFile), append(b, '\n'), 0o600); err != nil {
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
		c.Update = &u
	}
	if j.Last != nil {
		l := *j.Last
		c.Last = &l
	}
	c.Refused = append([]string(nil), j.Refused...)
	return &c
}

func (j *journal) refused(key string) bool {
	for _, r := range j.Refused {
		if r == key {
			return true
		}
	}
	return false
}

func (j *journal) refuse(key string) {
	if j.refused(key) {
		return
	}
	j.Refused = append(j.Refused, key)
	if n := len(j.Refused); n > maxRefused {
		j.Refused = j.Refused[n-maxRefused:]
	}
}

func (j *journal) componentList() []transport.Component {
	out := make([]transport.Component, 0, len(j.Components))
	for name, c := range j.Components {
		out = append(out, transport.Component{Name: name, Version: c.Version, Floor: c.Floor})
	}
	sortComponents(out)
	return out
}

func maxVersion(a, b string) (string, error) { return version.Max(a, b) }
