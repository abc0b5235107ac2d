package release

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

const (
	// maxDepth bounds how deep a plan follows requirements: a release, the
	// releases its requirements need, theirs, and so on.
	maxDepth = 8
	// maxWork bounds the releases one Plan or PlanFor call tries to place,
	// so that no catalog, however tangled, makes planning slow.
	maxWork = 4096
)

// Plan returns the releases d should install from catalog at time now, in
// the order to install them. For each component, firmware first, then
// applications, then parameters, then by name, it takes the newest
// release on d's channel, not expired and [Compatible] with d as it will
// be once the steps before it are installed; when d does not meet that
// release's requirements, the releases that meet them come first: for each
// requirement, the newest release of the required component that
// satisfies it and fits d at that point, itself preceded by what it
// requires. A release whose requirements cannot be met (nothing published
// satisfies one, they form a cycle, or they nest more than eight deep) is
// left out, for an older release of its component or for none. Components
// are visited again while that places more releases, so a step may come
// after one of a later kind. Each component moves only forward within a
// plan: a signed downgrade is planned only for a component no other step
// touches.
//
// A requirement is a precondition of installing a release, as the
// terminal checks it: a later step may move a required component on.
//
// With nothing to install, Plan returns an [*Error] whose reason is the
// most useful one, as [Negotiate] does: why a newer release was refused
// (its requirements unmet by anything published, a downgrade below the
// floor, an incompatibility), the first component's newest first, else up
// to date, else no release for this terminal. Plan is pure and bounded: it tries at most a few
// thousand placements, whatever the catalog.
func Plan(d Device, catalog []Release, now time.Time) ([]Release, error) {
	p := newPlanner(d, catalog, now)
	comps := slices.Collect(maps.Keys(p.byComponent))
	slices.SortFunc(comps, func(a, b string) int {
		ka, kb := kindOrder[p.byComponent[a][0].Kind], kindOrder[p.byComponent[b][0].Kind]
		return cmp.Or(cmp.Compare(ka, kb), strings.Compare(a, b))
	})
	var refusal *Error
	// Each pass gives every component its newest release that can be
	// placed now; a pass that places nothing ends the plan. A later pass
	// catches what an earlier one placed, such as a chain of requirements
	// too deep to follow from its top.
	for progress := true; progress; {
		progress = false
		for _, c := range comps {
			for _, r := range p.byComponent[c] {
				if !newer(r, p.dev) && (!r.Downgrade || p.moved[c]) {
					// Installed, or older: not worth a try, nor a reason.
					// Nor is going back on a step the plan takes.
					continue
				}
				err := p.try(r, 0, nil)
				if err == nil {
					progress = true
					break
				}
				var e *Error
				if refusal == nil && errors.As(err, &e) && e.Reason != transport.ReasonUpToDate {
					refusal = e
				}
			}
		}
	}
	if len(p.plan) > 0 {
		return p.plan, nil
	}
	switch {
	case refusal != nil:
		return nil, refusal
	case p.seen:
		return nil, &Error{Reason: transport.ReasonUpToDate, Detail: "no newer release fits this terminal"}
	}
	return nil, &Error{Reason: transport.ReasonNoRelease,
		Detail: fmt.Sprintf("nothing published for model %q on channel %q", d.Model, cmp.Or(d.Channel, DefaultChannel))}
}

// PlanFor returns the releases that install target on d, in order: what
// d needs from catalog to meet target's requirements (chosen as [Plan]
// chooses them), then target. It returns an [*Error] when target does
// not fit d ([Compatible] but for the requirements) or its requirements
// cannot be met by what catalog publishes for d at now. target need not
// be in catalog.
func PlanFor(d Device, target Release, catalog []Release, now time.Time) ([]Release, error) {
	p := newPlanner(d, catalog, now)
	if err := p.try(target, 0, nil); err != nil {
		return nil, err
	}
	return p.plan, nil
}

// planner places releases on a simulated device, one step after another.
type planner struct {
	dev         Device // Components is state
	state       map[string]Installed
	moved       map[string]bool // components a step changes
	byComponent map[string][]Release
	plan        []Release
	seen        bool // some release is published for the device
	work        int
	matches     map[[2]string]bool // version, constraint: satisfied
}

// satisfies is version.Satisfies, remembered: a plan asks the same
// questions many times.
func (p *planner) satisfies(v, c string) (bool, error) {
	key := [2]string{v, c}
	if ok, known := p.matches[key]; known {
		return ok, nil
	}
	ok, err := version.Satisfies(v, c)
	if err == nil {
		p.matches[key] = ok
	}
	return ok, err
}

func newPlanner(d Device, catalog []Release, now time.Time) *planner {
	p := &planner{dev: d, state: maps.Clone(d.Components), moved: map[string]bool{},
		byComponent: map[string][]Release{}, matches: map[[2]string]bool{}}
	if p.state == nil {
		p.state = map[string]Installed{}
	}
	p.dev.Components = p.state
	for _, r := range catalog {
		if targets(d, r, now) {
			p.seen = true
			p.byComponent[r.Component] = append(p.byComponent[r.Component], r)
		}
	}
	for _, rs := range p.byComponent {
		slices.SortStableFunc(rs, func(a, b Release) int { // newest first
			switch {
			case less(a.Version, b.Version):
				return 1
			case less(b.Version, a.Version):
				return -1
			}
			return 0
		})
	}
	return p
}

// try places r with what it requires, or leaves the plan as it was.
func (p *planner) try(r Release, depth int, stack []string) error {
	n, state, moved := len(p.plan), maps.Clone(p.state), maps.Clone(p.moved)
	err := p.place(r, depth, stack)
	if err != nil {
		p.plan, p.state, p.moved = p.plan[:n], state, moved
		p.dev.Components = state
	}
	return err
}

// place appends to the plan what r requires, then r, and moves the
// simulated device on. stack holds the releases whose requirements led to
// r.
func (p *planner) place(r Release, depth int, stack []string) error {
	unmet := func(format string, args ...any) error {
		return &Error{Release: r.ID(), Reason: transport.ReasonRequirementUnmet, Detail: fmt.Sprintf(format, args...)}
	}
	if p.work++; p.work > maxWork {
		return unmet("requirements too tangled to plan in %d tries", maxWork)
	}
	if slices.Contains(stack, r.ID()) {
		return unmet("requirements form a cycle: %s -> %s", strings.Join(stack, " -> "), r.ID())
	}
	if depth > maxDepth {
		return unmet("requirements nest more than %d deep: %s", maxDepth, strings.Join(stack, " -> "))
	}
	if err := compatible(p.dev, r); err != nil {
		return err
	}
	for _, req := range r.Requires {
		ok, _, err := met(p.dev, req, p.satisfies)
		if err != nil {
			return &Error{Release: r.ID(), Reason: transport.ReasonMalformed, Detail: err.Error()}
		}
		if ok {
			continue
		}
		if why := p.resolve(req, depth+1, append(slices.Clip(stack), r.ID())); why != "" {
			return unmet("needs %s: %s", req, why)
		}
	}
	// The steps before r may have moved what r checks: its own component,
	// a requirement met before another was resolved.
	if err := compatible(p.dev, r); err != nil {
		return err
	}
	if err := requirementsMet(p.dev, r, p.satisfies); err != nil {
		return err
	}
	inst := p.state[r.Component]
	floor := inst.Floor
	if f, err := version.Max(inst.Floor, r.Floor); err == nil {
		floor = f
	}
	p.state[r.Component] = Installed{Version: r.Version, Floor: floor}
	p.moved[r.Component] = true
	p.plan = append(p.plan, r)
	return nil
}

// resolve places the newest release that satisfies req and fits the
// device as the plan leaves it, or says why none does.
func (p *planner) resolve(req verify.Requirement, depth int, stack []string) (why string) {
	for _, c := range p.byComponent[req.Component] {
		ok, err := p.satisfies(c.Version, req.Version)
		if err != nil {
			return err.Error()
		}
		if !ok {
			continue
		}
		err = p.try(c, depth, stack)
		if err == nil {
			return ""
		}
		if why == "" { // the newest candidate's reason
			why = err.Error()
			var e *Error
			if errors.As(err, &e) {
				why = fmt.Sprintf("%s: %s: %s", e.Release, e.Reason, e.Detail)
			}
		}
	}
	return cmp.Or(why, "nothing published for this terminal satisfies it")
}
