package verify

import (
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/internal/version"
)

// ManifestSchema is the manifest format version this package reads and writes.
const ManifestSchema = 1

// MaxManifestSize bounds a manifest's encoded size.
const MaxManifestSize = 32 << 20

// Kind is what a release carries. Each kind has its own approvals and its
// own rules: firmware, for one, must name the models it is for.
type Kind string

const (
	KindFirmware    Kind = "firmware"
	KindApplication Kind = "application"
	KindParameters  Kind = "parameters"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindFirmware, KindApplication, KindParameters:
		return true
	}
	return false
}

// Category is why a release exists: a security fix, a new feature, or
// maintenance. It is distinct from [Kind], which says what the release
// carries. Operators watch how long a terminal has gone without a
// security release that applies to it.
type Category string

const (
	CategorySecurity    Category = "security"
	CategoryFeature     Category = "feature"
	CategoryMaintenance Category = "maintenance"
)

// Valid reports whether c is one of the known categories. The empty
// category (a manifest that names none) is not one of them.
func (c Category) Valid() bool {
	switch c {
	case CategorySecurity, CategoryFeature, CategoryMaintenance:
		return true
	}
	return false
}

// Requirement is another component a terminal must have, at a version
// satisfying a constraint, before it installs a release: an application
// that needs firmware ">= 1.4", say.
type Requirement struct {
	// Component names the required component.
	Component string `json:"component"`
	// Version is a version constraint (">=1.4", "^3", ">=1.4.0, <2.0.0")
	// the installed version must satisfy.
	Version string `json:"version"`
}

// String returns "component version", e.g. "firmware >=1.4".
func (r Requirement) String() string { return r.Component + " " + r.Version }

// MaxRequires bounds how many requirements a manifest may list.
const MaxRequires = 32

// Manifest is the signed description of a release: what it is, what it is
// for, and the exact bytes it ships.
type Manifest struct {
	Schema int `json:"schema"`
	// Component names what the release updates, e.g. "firmware" or
	// "payment-app": lower-case letters, digits, '.', '_' and '-'.
	Component string `json:"component"`
	// Version is the release's semantic version.
	Version string `json:"version"`
	Kind    Kind   `json:"kind"`
	// Category says why the release exists (security, feature,
	// maintenance); empty names none.
	Category Category `json:"category,omitempty"`
	// Models lists the terminal models the release is for; empty means any
	// model, which firmware may not claim.
	Models []string `json:"models,omitempty"`
	// HardwareRevisions lists the hardware revisions it is for; empty means any.
	HardwareRevisions []string `json:"hardware_revisions,omitempty"`
	// From lists version constraints ("~1.0", ">=1.0.0, <1.2.0"); the
	// installed version must satisfy one of them. Empty means any.
	From []string `json:"from,omitempty"`
	// Requires lists the other components the terminal must already have,
	// at versions satisfying each constraint, before it installs the
	// release; at most MaxRequires, one per component, none naming the
	// release's own component (From says which versions of it the release
	// installs over). Empty requires nothing.
	Requires []Requirement `json:"requires,omitempty"`
	// Floor is the anti-rollback floor the terminal adopts once the release
	// is committed: it will refuse any later release below it.
	Floor string `json:"floor,omitempty"`
	// Downgrade allows installing a version below the installed one (never
	// below the floor): an explicit, signed decision to go back.
	Downgrade bool `json:"downgrade,omitempty"`
	// Issued and Expires bound when a terminal accepts the manifest.
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	// Artifact describes the bytes to install.
	Artifact Artifact `json:"artifact"`
}

// ID names the release: component@version.
func (m *Manifest) ID() string { return m.Component + "@" + m.Version }

// Validate checks the manifest against the format's rules and limits.
func (m *Manifest) Validate() error {
	if m.Schema != ManifestSchema {
		return malformed("manifest schema %d, want %d", m.Schema, ManifestSchema)
	}
	if err := CheckName("component", m.Component); err != nil {
		return err
	}
	if err := version.Check(m.Version); err != nil {
		return malformed("manifest version: %v", err)
	}
	if !m.Kind.Valid() {
		return malformed("manifest kind %.40q", m.Kind)
	}
	if m.Kind == KindFirmware && len(m.Models) == 0 {
		return malformed("firmware must name the models it is for")
	}
	if err := checkList("model", m.Models); err != nil {
		return err
	}
	if err := checkList("hardware revision", m.HardwareRevisions); err != nil {
		return err
	}
	if len(m.From) > maxListLen {
		return malformed("%d from-version constraints, limit %d", len(m.From), maxListLen)
	}
	for _, c := range m.From {
		if err := version.CheckConstraint(c); err != nil {
			return malformed("from-version: %v", err)
		}
	}
	if m.Category != "" && !m.Category.Valid() {
		return malformed("manifest category %.40q: want security, feature or maintenance", m.Category)
	}
	if err := m.checkRequires(); err != nil {
		return err
	}
	if m.Floor != "" {
		above, err := version.Less(m.Version, m.Floor)
		if err != nil {
			return malformed("floor: %v", err)
		}
		if above {
			return malformed("floor %s is above the release's own version %s", m.Floor, m.Version)
		}
	}
	if m.Issued.IsZero() || m.Expires.IsZero() {
		return malformed("manifest needs issued and expires times")
	}
	if !m.Expires.After(m.Issued) {
		return malformed("manifest expires (%s) before it is issued (%s)", m.Expires, m.Issued)
	}
	if err := m.Artifact.Validate(); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	return nil
}

func (m *Manifest) checkRequires() error {
	if len(m.Requires) > MaxRequires {
		return malformed("%d requirements, limit %d", len(m.Requires), MaxRequires)
	}
	for i, r := range m.Requires {
		if err := CheckName("required component", r.Component); err != nil {
			return err
		}
		if r.Component == m.Component {
			return malformed("the release requires its own component %s: say which versions it installs over with from", r.Component)
		}
		for _, prev := range m.Requires[:i] {
			if prev.Component == r.Component {
				return malformed("component %s is required twice: join the constraints with a comma", r.Component)
			}
		}
		if err := version.CheckConstraint(r.Version); err != nil {
			return malformed("requirement on %s: %v", r.Component, err)
		}
	}
	return nil
}

// ParseManifest decodes and validates a manifest, strictly.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes, limit %d", ErrTooLarge, len(data), MaxManifestSize)
	}
	var m Manifest
	if err := jsonwire.Unmarshal(data, &m); err != nil {
		return nil, malformed("manifest: %v", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

const (
	maxListLen = 256
	maxNameLen = 64
)

// CheckName validates an identifier (component, model, hardware revision):
// 1 to 64 bytes of ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit.
func CheckName(what, s string) error {
	if s == "" || len(s) > maxNameLen {
		return malformed("%s %.80q: want 1 to %d characters", what, s, maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return malformed("%s %.80q: want letters, digits, '.', '_' and '-'", what, s)
		}
	}
	return nil
}

func checkList(what string, list []string) error {
	if len(list) > maxListLen {
		return malformed("%d %ss, limit %d", len(list), what, maxListLen)
	}
	for _, s := range list {
		if err := CheckName(what, s); err != nil {
			return err
		}
	}
	return nil
}

// CheckVersion refuses to move from installed to v when v is below floor,
// or below installed unless allowDowngrade. Empty installed or floor means
// none.
func CheckVersion(v, installed, floor string, allowDowngrade bool) error {
	if floor != "" {
		below, err := version.Less(v, floor)
		if err != nil {
			return malformed("%v", err)
		}
		if below {
			return fmt.Errorf("%w: %s is below the floor %s", ErrDowngrade, v, floor)
		}
	}
	if installed != "" && !allowDowngrade {
		below, err := version.Less(v, installed)
		if err != nil {
			return malformed("%v", err)
		}
		if below {
			return fmt.Errorf("%w: %s is below the installed %s", ErrDowngrade, v, installed)
		}
	}
	return nil
}
