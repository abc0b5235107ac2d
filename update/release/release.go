package release

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// DefaultChannel is the channel of a release or device that names none.
const DefaultChannel = "stable"

// Release is what the compatibility rules look at: the targeting fields of
// a signed manifest, plus the channel it is published on.
type Release struct {
	Component         string
	Version           string
	Kind              verify.Kind
	Category          verify.Category      // empty when the manifest names none
	Requires          []verify.Requirement // what the terminal must have before it installs the release
	Channel           string               // empty means DefaultChannel
	Models            []string             // empty means any model
	HardwareRevisions []string             // empty means any revision
	From              []string             // constraints on the installed version; empty means any
	Floor             string
	Downgrade         bool
	Expires           time.Time // zero means never
}

// FromManifest returns the release a verified manifest describes, on channel.
func FromManifest(m *verify.Manifest, channel string) Release {
	return Release{
		Component:         m.Component,
		Version:           m.Version,
		Kind:              m.Kind,
		Category:          m.Category,
		Requires:          m.Requires,
		Channel:           channel,
		Models:            m.Models,
		HardwareRevisions: m.HardwareRevisions,
		From:              m.From,
		Floor:             m.Floor,
		Downgrade:         m.Downgrade,
		Expires:           m.Expires,
	}
}

// ID names the release: component@version.
func (r Release) ID() string { return r.Component + "@" + r.Version }

func (r Release) channel() string { return cmp.Or(r.Channel, DefaultChannel) }

// Installed is one component on a terminal: its version and the
// anti-rollback floor the terminal holds for it.
type Installed struct {
	Version string
	Floor   string
}

// Device is what a terminal is and has.
type Device struct {
	Model            string
	HardwareRevision string
	Channel          string // empty means DefaultChannel
	// Components maps a component's name to what is installed.
	Components map[string]Installed
}

// Compatible reports whether r may be installed on d: the model and
// hardware revision are among r's, the installed version satisfies one of
// r's From constraints, r's version is neither below d's floor nor, unless
// r allows a downgrade, below the installed version, and d already has
// every component r requires at a version that satisfies it. It returns
// nil or an [*Error]; a release equal to the installed version is
// [ErrUpToDate], one whose requirements d does not meet yet is
// [ErrRequirementUnmet] ([Plan] finds the releases that meet them). Channel
// and expiry are targeting, left to [Negotiate] and [Plan].
func Compatible(d Device, r Release) error {
	if err := compatible(d, r); err != nil {
		return err
	}
	return requirementsMet(d, r, version.Satisfies)
}

// compatible is Compatible without the requirements.
func compatible(d Device, r Release) error {
	refuse := func(reason transport.Reason, format string, args ...any) error {
		return &Error{Release: r.ID(), Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if len(r.Models) > 0 && !slices.Contains(r.Models, d.Model) {
		return refuse(transport.ReasonIncompatible, "model %q is not one of %s", d.Model, strings.Join(r.Models, ", "))
	}
	if len(r.HardwareRevisions) > 0 && !slices.Contains(r.HardwareRevisions, d.HardwareRevision) {
		return refuse(transport.ReasonIncompatible, "hardware revision %q is not one of %s",
			d.HardwareRevision, strings.Join(r.HardwareRevisions, ", "))
	}
	inst := d.Components[r.Component]
	if inst.Version == r.Version {
		return refuse(transport.ReasonUpToDate, "%s is installed", r.Version)
	}
	if len(r.From) > 0 {
		if inst.Version == "" {
			return refuse(transport.ReasonIncompatible, "%s is not installed; the release upgrades from %s",
				r.Component, strings.Join(r.From, " or "))
		}
		ok, err := satisfiesAny(inst.Version, r.From)
		if err != nil {
			return refuse(transport.ReasonMalformed, "%v", err)
		}
		if !ok {
			return refuse(transport.ReasonIncompatible, "installed %s is not in %s", inst.Version, strings.Join(r.From, " or "))
		}
	}
	if err := verify.CheckVersion(r.Version, inst.Version, inst.Floor, r.Downgrade); err != nil {
		reason := transport.ReasonDowngrade
		if errors.Is(err, verify.ErrMalformed) {
			reason = transport.ReasonMalformed
		}
		return refuse(reason, "%v", err)
	}
	return nil
}

// requirementsMet checks r's requirements against what d has installed,
// with satisfies to match a version against a constraint.
func requirementsMet(d Device, r Release, satisfies func(v, c string) (bool, error)) error {
	for _, req := range r.Requires {
		ok, inst, err := met(d, req, satisfies)
		switch {
		case err != nil:
			return &Error{Release: r.ID(), Reason: transport.ReasonMalformed, Detail: err.Error()}
		case ok:
			continue
		case inst == "":
			return &Error{Release: r.ID(), Reason: transport.ReasonRequirementUnmet,
				Detail: fmt.Sprintf("needs %s %s, which is not installed", req.Component, req.Version)}
		}
		return &Error{Release: r.ID(), Reason: transport.ReasonRequirementUnmet,
			Detail: fmt.Sprintf("needs %s %s; %s is installed", req.Component, req.Version, inst)}
	}
	return nil
}

// met reports whether d's installed version of req's component satisfies
// it, and what that version is ("" when the component is not installed).
func met(d Device, req verify.Requirement, satisfies func(v, c string) (bool, error)) (bool, string, error) {
	inst := d.Components[req.Component].Version
	if inst == "" {
		return false, "", nil
	}
	ok, err := satisfies(inst, req.Version)
	return ok, inst, err
}

func satisfiesAny(v string, constraints []string) (bool, error) {
	for _, c := range constraints {
		ok, err := version.Satisfies(v, c)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// kindOrder installs firmware before the applications that run on it, and
// applications before their parameters.
var kindOrder = map[verify.Kind]int{verify.KindFirmware: 0, verify.KindApplication: 1, verify.KindParameters: 2}

// Negotiate picks the release to offer d from catalog at time now: among
// releases on d's channel, not expired and [Compatible], the newest of each
// component; of those, firmware first, then applications, then parameters,
// then by component name. A release whose requirements d does not meet yet
// is not among them: [Plan] orders the releases that meet them first. With nothing to offer it returns an [*Error] whose
// reason is the most useful one: why a newer release was refused (a
// downgrade below the floor, an incompatibility), else up to date, else no
// release for this terminal.
func Negotiate(d Device, catalog []Release, now time.Time) (Release, error) {
	best := map[string]Release{}
	var refusal *Error
	var seen bool
	for _, r := range catalog {
		if !targets(d, r, now) {
			continue // another channel's, or another model's, release says nothing about this terminal
		}
		seen = true
		if err := Compatible(d, r); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Reason != transport.ReasonUpToDate && (newer(r, d) || r.Downgrade) {
				refusal = e
			}
			continue
		}
		if cur, ok := best[r.Component]; !ok || less(cur.Version, r.Version) {
			best[r.Component] = r
		}
	}
	if len(best) == 0 {
		switch {
		case refusal != nil:
			return Release{}, refusal
		case seen:
			return Release{}, &Error{Reason: transport.ReasonUpToDate, Detail: "no newer release fits this terminal"}
		}
		return Release{}, &Error{Reason: transport.ReasonNoRelease,
			Detail: fmt.Sprintf("nothing published for model %q on channel %q", d.Model, cmp.Or(d.Channel, DefaultChannel))}
	}
	offers := make([]Release, 0, len(best))
	for _, r := range best {
		offers = append(offers, r)
	}
	slices.SortFunc(offers, func(a, b Release) int {
		return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]), strings.Compare(a.Component, b.Component))
	})
	return offers[0], nil
}

// targets reports whether r is published for d at now: on d's channel,
// not expired, and for d's model.
func targets(d Device, r Release, now time.Time) bool {
	return r.channel() == cmp.Or(d.Channel, DefaultChannel) && (r.Expires.IsZero() || now.Before(r.Expires)) &&
		(len(r.Models) == 0 || slices.Contains(r.Models, d.Model))
}

// newer reports whether r is above what d has installed: only a refused
// upgrade is worth reporting as the reason nothing is offered.
func newer(r Release, d Device) bool {
	inst := d.Components[r.Component].Version
	return inst == "" || less(inst, r.Version)
}

// less compares versions, treating unparsable ones as lowest so that a bad
// catalog entry never wins.
func less(a, b string) bool {
	c, err := version.Compare(a, b)
	if err != nil {
		return version.Check(a) != nil && version.Check(b) == nil
	}
	return c < 0
}
