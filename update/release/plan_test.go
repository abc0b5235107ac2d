package release_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

// rel is a release of component at v, of kind, for any model.
func rel(component, v string, kind verify.Kind, mods ...func(*release.Release)) release.Release {
	r := release.Release{Component: component, Version: v, Kind: kind}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func par(component, v string, mods ...func(*release.Release)) release.Release {
	return rel(component, v, verify.KindParameters, mods...)
}

func from(cs ...string) func(*release.Release) { return func(r *release.Release) { r.From = cs } }

func ids(rs []release.Release) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID()
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	// chain is n components c00..c(n-1), each at 1.0.0 requiring the next.
	chain := func(n int) []release.Release {
		var out []release.Release
		for i := range n {
			r := rel(fmt.Sprintf("c%02d", i), "1.0.0", verify.KindApplication)
			if i+1 < n {
				requires(fmt.Sprintf("c%02d", i+1), ">=1.0.0")(&r)
			}
			out = append(out, r)
		}
		return out
	}
	chainWant := func(n int) string {
		var out []string
		for i := n - 1; i >= 0; i-- {
			out = append(out, fmt.Sprintf("c%02d@1.0.0", i))
		}
		return strings.Join(out, " ")
	}
	// tangle is components t0..t5 of twelve versions each, every version
	// requiring the next component, the last one something never
	// published: millions of combinations, none of which works.
	tangle := func() []release.Release {
		var out []release.Release
		for c := range 6 {
			for v := range 12 {
				next := fmt.Sprintf("t%d", c+1)
				if c == 5 {
					next = "t0"
				}
				r := rel(fmt.Sprintf("t%d", c), fmt.Sprintf("1.%d.0", v), verify.KindApplication, requires(next, ">=9.0.0"))
				if c < 5 {
					r.Requires[0].Version = ">=1.0.0"
				}
				out = append(out, r)
			}
		}
		return out
	}
	beta := func(r *release.Release) { r.Channel = "beta" }
	expired := func(r *release.Release) { r.Expires = now }
	onlyModel := func(m string) func(*release.Release) { return func(r *release.Release) { r.Models = []string{m} } }
	onlyRev := func(h string) func(*release.Release) {
		return func(r *release.Release) { r.HardwareRevisions = []string{h} }
	}

	tests := []struct {
		name    string
		dev     release.Device
		catalog []release.Release
		want    string           // the plan's IDs, space-separated; "" for none
		reason  transport.Reason // when want is ""
		detail  string           // a part of the refusal's detail
	}{
		{"requirement met by a release first", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=1.4")), fw("1.4.0")},
			"firmware@1.4.0 payment-app@2.0.0", "", ""},
		{"requirement met already", device("firmware", "1.4.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=1.4")), fw("1.4.0")}, "payment-app@2.0.0", "", ""},
		{"no requirements: firmware, applications, parameters", device("firmware", "1.0.0", "payment-app", "1.0.0", "params", "1.0.0"),
			[]release.Release{par("params", "2.0.0"), app("1.1.0"), fw("1.1.0")},
			"firmware@1.1.0 payment-app@1.1.0 params@2.0.0", "", ""},
		{"newest of each component", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0"), fw("1.5.0"), app("2.0.0", requires("firmware", ">=1.4"))},
			"firmware@1.5.0 payment-app@2.0.0", "", ""},
		{"parameters before the application that needs them", device("payment-app", "1.0.0", "params", "2.0.0"),
			[]release.Release{app("2.0.0", requires("params", "^3")), par("params", "3.0.0"), par("params", "3.2.0"),
				par("params", "4.0.0", from("^4"))},
			"params@3.2.0 payment-app@2.0.0", "", ""},
		{"a required component not installed yet", device("payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("params", ">=1.0.0")), par("params", "1.0.0")},
			"params@1.0.0 payment-app@2.0.0", "", ""},
		{"each step fits the device the steps before leave", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0"), fw("1.5.0", from("~1.4")), app("2.0.0", requires("firmware", ">=1.5"))},
			"firmware@1.4.0 firmware@1.5.0 payment-app@2.0.0", "", ""},
		{"a requirement of a requirement", device("payment-app", "1.0.0", "params", "2.0.0", "keys", "1.0.0"),
			[]release.Release{app("2.0.0", requires("params", ">=3")), par("params", "3.0.0", requires("keys", ">=2")), par("keys", "2.0.0")},
			"keys@2.0.0 params@3.0.0 payment-app@2.0.0", "", ""},
		{"multi-component device", device("firmware", "1.0.0", "payment-app", "1.0.0", "params", "1.0.0"),
			[]release.Release{fw("1.4.0"), app("2.0.0", requires("firmware", ">=1.4"), requires("params", ">=3")),
				par("params", "3.0.0"), par("params", "3.1.0", requires("payment-app", ">=2.0.0"))},
			"firmware@1.4.0 params@3.0.0 payment-app@2.0.0 params@3.1.0", "", ""},
		{"unsatisfiable requirement: nothing published for the component", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=1.4"))},
			"", transport.ReasonRequirementUnmet, "needs firmware >=1.4: nothing published for this terminal satisfies it"},
		{"unsatisfiable requirement: nothing new enough", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.3.0"), app("2.0.0", requires("firmware", ">=1.4"))}, "firmware@1.3.0", "", ""},
		{"unsatisfiable requirement: an older release instead", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=9")), app("1.5.0")}, "payment-app@1.5.0", "", ""},
		{"unsatisfiable requirement: the prerequisite does not fit", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0", onlyRev("C")), app("2.0.0", requires("firmware", ">=1.4"))},
			"", transport.ReasonIncompatible, "hardware revision"}, // the firmware's own refusal comes first
		{"prerequisite on another channel", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0", beta), app("2.0.0", requires("firmware", ">=1.4"))},
			"", transport.ReasonRequirementUnmet, "nothing published"},
		{"prerequisite expired", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0", expired), app("2.0.0", requires("firmware", ">=1.4"))},
			"", transport.ReasonRequirementUnmet, "nothing published"},
		{"prerequisite for another model", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0", onlyModel("X1")), app("2.0.0", requires("firmware", ">=1.4"))},
			"", transport.ReasonRequirementUnmet, "nothing published"},
		{"cycle", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=2")), fw("2.0.0", requires("payment-app", ">=2"))},
			"", transport.ReasonRequirementUnmet, "cycle"},
		{"cycle broken by an older release", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=2")), fw("2.0.0", requires("payment-app", ">=1.5")), app("1.5.0")},
			"payment-app@1.5.0 firmware@2.0.0 payment-app@2.0.0", "", ""},
		{"a release requiring what a later prerequisite breaks", device("payment-app", "1.0.0", "keys", "0.5.0", "params", "1.0.0"),
			[]release.Release{app("2.0.0", requires("keys", "<2.0.0"), requires("params", ">=3")),
				par("params", "3.0.0", requires("keys", ">=2")), par("keys", "1.0.0"), par("keys", "2.0.0")},
			"keys@2.0.0 params@3.0.0", "", ""},
		{"a requirement cannot hold a component back", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0"), fw("2.0.0"), app("2.0.0", requires("firmware", ">=1.4, <2.0.0"))}, "firmware@2.0.0", "", ""},
		{"a long chain, planned from its end", device(), chain(12), chainWant(12), "", ""},
		{"a tangle ends", device(), tangle(), "", transport.ReasonRequirementUnmet, ""},
		{"up to date", device("firmware", "1.4.0"), []release.Release{fw("1.4.0"), fw("1.3.0")}, "", transport.ReasonUpToDate, ""},
		{"empty catalog", device("firmware", "1.0.0"), nil, "", transport.ReasonNoRelease, ""},
		{"downgrade below floor is the reason", func() release.Device {
			d := device()
			d.Components["firmware"] = release.Installed{Version: "1.3.0", Floor: "1.3.0"}
			return d
		}(), []release.Release{fw("1.2.0", func(r *release.Release) { r.Downgrade = true })}, "", transport.ReasonDowngrade, ""},
		{"no downgrade of a component a step moved", device("payment-app", "1.0.0", "params", "2.0.0"),
			[]release.Release{app("2.0.0", requires("params", ">=3")), par("params", "3.0.0"),
				par("params", "2.5.0", func(r *release.Release) { r.Downgrade = true })},
			"params@3.0.0 payment-app@2.0.0", "", ""},
		{"a prerequisite's floor holds for the steps after it", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{fw("1.4.0", func(r *release.Release) { r.Floor = "1.4.0" }),
				fw("1.3.0", func(r *release.Release) { r.Downgrade = true }), app("2.0.0", requires("firmware", ">=1.4"))},
			"firmware@1.4.0 payment-app@2.0.0", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := release.Plan(tt.dev, tt.catalog, now)
			if tt.want != "" {
				if err != nil || ids(got) != tt.want {
					t.Fatalf("Plan = [%s], %v; want [%s]", ids(got), err, tt.want)
				}
				return
			}
			var e *release.Error
			if !errors.As(err, &e) || e.Reason != tt.reason || len(got) != 0 {
				t.Fatalf("Plan = [%s], %v; want no plan, reason %s", ids(got), err, tt.reason)
			}
			if !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("detail %q does not say %q", e.Detail, tt.detail)
			}
			if tt.reason == transport.ReasonRequirementUnmet && !errors.Is(err, release.ErrRequirementUnmet) {
				t.Errorf("errors.Is(%v, ErrRequirementUnmet) = false", err)
			}
		})
	}
}

// Every plan can be installed step by step: each release is Compatible
// with the device the steps before it leave.
func TestPlanStepsAreCompatible(t *testing.T) {
	d := device("firmware", "1.0.0", "payment-app", "1.0.0", "params", "1.0.0")
	catalog := []release.Release{fw("1.4.0"), fw("1.5.0", from("~1.4")),
		app("2.0.0", requires("firmware", ">=1.5"), requires("params", ">=3")),
		par("params", "3.0.0"), par("params", "3.1.0", requires("payment-app", ">=2.0.0"))}
	plan, err := release.Plan(d, catalog, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range plan {
		if err := release.Compatible(d, r); err != nil {
			t.Fatalf("step %s: %v (plan %s)", r.ID(), err, ids(plan))
		}
		d.Components[r.Component] = release.Installed{Version: r.Version}
	}
	if _, err := release.Plan(d, catalog, now); !errors.Is(err, release.ErrUpToDate) {
		t.Errorf("after the plan, Plan = %v; want up to date", err)
	}
}

func TestPlanFor(t *testing.T) {
	catalog := []release.Release{fw("1.4.0"), fw("1.5.0", func(r *release.Release) { r.HardwareRevisions = []string{"C"} }),
		par("params", "3.0.0")}
	tests := []struct {
		name   string
		dev    release.Device
		target release.Release
		want   string
		is     error
	}{
		{"requirements first", device("firmware", "1.0.0"), app("2.0.0", requires("firmware", ">=1.4"), requires("params", "^3")),
			"firmware@1.4.0 params@3.0.0 payment-app@2.0.0", nil},
		{"nothing required", device("firmware", "1.0.0"), app("2.0.0"), "payment-app@2.0.0", nil},
		{"requirements met", device("firmware", "1.4.0"), app("2.0.0", requires("firmware", ">=1.4")), "payment-app@2.0.0", nil},
		{"unsatisfiable", device("firmware", "1.0.0"), app("2.0.0", requires("firmware", ">=2")), "", release.ErrRequirementUnmet},
		{"target does not fit", device("firmware", "1.0.0"), app("2.0.0", func(r *release.Release) { r.Models = []string{"X1"} }),
			"", release.ErrIncompatible},
		{"target installed", device("payment-app", "2.0.0"), app("2.0.0"), "", release.ErrUpToDate},
		{"prerequisite does not fit", device("firmware", "1.0.0"), app("2.0.0", requires("firmware", ">=1.5")),
			"", release.ErrRequirementUnmet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := release.PlanFor(tt.dev, tt.target, catalog, now)
			if tt.is != nil {
				if !errors.Is(err, tt.is) || got != nil {
					t.Fatalf("PlanFor = [%s], %v; want %v", ids(got), err, tt.is)
				}
				t.Log(err)
				return
			}
			if err != nil || ids(got) != tt.want {
				t.Fatalf("PlanFor = [%s], %v; want [%s]", ids(got), err, tt.want)
			}
		})
	}
}

// A plan never changes the device it was given.
func TestPlanLeavesTheDeviceAlone(t *testing.T) {
	d := device("firmware", "1.0.0", "payment-app", "1.0.0")
	if _, err := release.Plan(d, []release.Release{fw("1.4.0"), app("2.0.0", requires("firmware", ">=1.4"))}, now); err != nil {
		t.Fatal(err)
	}
	if d.Components["firmware"].Version != "1.0.0" || len(d.Components) != 2 {
		t.Errorf("device changed: %v", d.Components)
	}
}
