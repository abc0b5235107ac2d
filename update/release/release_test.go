package release_test

import (
	"errors"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func device(installed ...string) release.Device {
	d := release.Device{Model: "P300", HardwareRevision: "B", Components: map[string]release.Installed{}}
	for i := 0; i+1 < len(installed); i += 2 {
		d.Components[installed[i]] = release.Installed{Version: installed[i+1]}
	}
	return d
}

func fw(v string, mods ...func(*release.Release)) release.Release {
	r := release.Release{Component: "firmware", Version: v, Kind: verify.KindFirmware, Models: []string{"P300", "P400"}}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func app(v string, mods ...func(*release.Release)) release.Release {
	r := release.Release{Component: "payment-app", Version: v, Kind: verify.KindApplication}
	for _, m := range mods {
		m(&r)
	}
	return r
}

// requires adds a requirement on component at constraint.
func requires(component, constraint string) func(*release.Release) {
	return func(r *release.Release) {
		r.Requires = append(r.Requires, verify.Requirement{Component: component, Version: constraint})
	}
}

func TestCompatible(t *testing.T) {
	withFloor := func(floor string) release.Device {
		d := device("firmware", "1.2.0")
		d.Components["firmware"] = release.Installed{Version: "1.2.0", Floor: floor}
		return d
	}
	tests := []struct {
		name   string
		dev    release.Device
		rel    release.Release
		reason transport.Reason // "" means compatible
		is     error
	}{
		{"upgrade", device("firmware", "1.0.0"), fw("1.1.0"), "", nil},
		{"any model", device("firmware", "1.0.0"), fw("1.1.0", func(r *release.Release) { r.Models = nil }), "", nil},
		{"wrong model", device("firmware", "1.0.0"), fw("1.1.0", func(r *release.Release) { r.Models = []string{"A9"} }),
			transport.ReasonIncompatible, release.ErrIncompatible},
		{"hardware revision listed", device("firmware", "1.0.0"), fw("1.1.0", func(r *release.Release) { r.HardwareRevisions = []string{"A", "B"} }), "", nil},
		{"hardware revision not listed", device("firmware", "1.0.0"), fw("1.1.0", func(r *release.Release) { r.HardwareRevisions = []string{"C"} }),
			transport.ReasonIncompatible, release.ErrIncompatible},
		{"from satisfied", device("firmware", "1.0.3"), fw("1.1.0", func(r *release.Release) { r.From = []string{"~1.0"} }), "", nil},
		{"from, second constraint", device("firmware", "0.9.0"), fw("1.1.0", func(r *release.Release) { r.From = []string{"~1.0", ">=0.9.0, <0.10.0"} }), "", nil},
		{"from not satisfied", device("firmware", "0.8.0"), fw("1.1.0", func(r *release.Release) { r.From = []string{"~1.0"} }),
			transport.ReasonIncompatible, release.ErrIncompatible},
		{"from needs an installed version", device(), fw("1.1.0", func(r *release.Release) { r.From = []string{"~1.0"} }),
			transport.ReasonIncompatible, release.ErrIncompatible},
		{"not installed, no from", device(), fw("1.1.0"), "", nil},
		{"same version", device("firmware", "1.1.0"), fw("1.1.0"), transport.ReasonUpToDate, release.ErrUpToDate},
		{"older version", device("firmware", "1.2.0"), fw("1.1.0"), transport.ReasonDowngrade, verify.ErrDowngrade},
		{"signed downgrade", device("firmware", "1.2.0"), fw("1.1.0", func(r *release.Release) { r.Downgrade = true }), "", nil},
		{"signed downgrade below floor", withFloor("1.2.0"), fw("1.1.0", func(r *release.Release) { r.Downgrade = true }),
			transport.ReasonDowngrade, verify.ErrDowngrade},
		{"upgrade above floor", withFloor("1.2.0"), fw("1.3.0"), "", nil},
		{"bad installed version", device("firmware", "banana"), fw("1.1.0", func(r *release.Release) { r.From = []string{"~1.0"} }),
			transport.ReasonMalformed, verify.ErrMalformed},
		{"requirement met", device("firmware", "1.4.0", "payment-app", "1.0.0"), app("2.0.0", requires("firmware", ">=1.4")), "", nil},
		{"requirements met", device("firmware", "1.4.0", "payment-app", "1.0.0", "params", "3.2.0"),
			app("2.0.0", requires("firmware", ">=1.4"), requires("params", "^3")), "", nil},
		{"required version too old", device("firmware", "1.3.9", "payment-app", "1.0.0"), app("2.0.0", requires("firmware", ">=1.4")),
			transport.ReasonRequirementUnmet, release.ErrRequirementUnmet},
		{"second requirement unmet", device("firmware", "1.4.0", "params", "2.0.0"),
			app("2.0.0", requires("firmware", ">=1.4"), requires("params", "^3")), transport.ReasonRequirementUnmet, release.ErrRequirementUnmet},
		{"required component not installed", device("payment-app", "1.0.0"), app("2.0.0", requires("firmware", ">=1.4")),
			transport.ReasonRequirementUnmet, release.ErrRequirementUnmet},
		{"required version too new", device("firmware", "2.0.0"), app("2.0.0", requires("firmware", ">=1.4, <2.0.0")),
			transport.ReasonRequirementUnmet, release.ErrRequirementUnmet},
		{"wrong model before requirements", device("payment-app", "1.0.0"),
			app("2.0.0", requires("firmware", ">=1.4"), func(r *release.Release) { r.Models = []string{"A9"} }),
			transport.ReasonIncompatible, release.ErrIncompatible},
		{"installed before requirements", device("payment-app", "2.0.0"), app("2.0.0", requires("firmware", ">=1.4")),
			transport.ReasonUpToDate, release.ErrUpToDate},
		{"bad installed version of a required component", device("firmware", "banana"), app("2.0.0", requires("firmware", ">=1.4")),
			transport.ReasonMalformed, verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := release.Compatible(tt.dev, tt.rel)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Compatible = %v, want nil", err)
				}
				return
			}
			var e *release.Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Fatalf("Compatible = %v, want reason %s", err, tt.reason)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if e.Release != tt.rel.ID() {
				t.Errorf("Release = %q, want %q", e.Release, tt.rel.ID())
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	params := release.Release{Component: "params", Version: "2.0.0", Kind: verify.KindParameters}
	tests := []struct {
		name    string
		dev     release.Device
		catalog []release.Release
		want    string           // ID of the offer, or ""
		reason  transport.Reason // when want is ""
	}{
		{"empty catalog", device("firmware", "1.0.0"), nil, "", transport.ReasonNoRelease},
		{"newest of a component", device("firmware", "1.0.0"), []release.Release{fw("1.1.0"), fw("1.3.0"), fw("1.2.0")}, "firmware@1.3.0", ""},
		{"newest compatible, not newest", device("firmware", "1.0.0"),
			[]release.Release{fw("1.1.0"), fw("2.0.0", func(r *release.Release) { r.From = []string{"^1.1"} })}, "firmware@1.1.0", ""},
		{"firmware before application before parameters", device("firmware", "1.0.0", "payment-app", "3.0.0", "params", "1.0.0"),
			[]release.Release{params, app("3.1.0"), fw("1.1.0")}, "firmware@1.1.0", ""},
		{"application before parameters", device("firmware", "1.1.0", "payment-app", "3.0.0", "params", "1.0.0"),
			[]release.Release{params, app("3.1.0"), fw("1.1.0")}, "payment-app@3.1.0", ""},
		{"up to date", device("firmware", "1.1.0"), []release.Release{fw("1.0.0"), fw("1.1.0")}, "", transport.ReasonUpToDate},
		{"other model only", device("firmware", "1.0.0"), []release.Release{fw("1.1.0", func(r *release.Release) { r.Models = []string{"X1"} })}, "", transport.ReasonNoRelease},
		{"other channel", device("firmware", "1.0.0"), []release.Release{fw("1.1.0", func(r *release.Release) { r.Channel = "beta" })}, "", transport.ReasonNoRelease},
		{"beta device, beta release", func() release.Device { d := device("firmware", "1.0.0"); d.Channel = "beta"; return d }(),
			[]release.Release{fw("1.1.0"), fw("1.2.0", func(r *release.Release) { r.Channel = "beta" })}, "firmware@1.2.0", ""},
		{"explicit stable channel matches default", device("firmware", "1.0.0"),
			[]release.Release{fw("1.1.0", func(r *release.Release) { r.Channel = release.DefaultChannel })}, "firmware@1.1.0", ""},
		{"expired release skipped", device("firmware", "1.0.0"),
			[]release.Release{fw("1.1.0"), fw("1.2.0", func(r *release.Release) { r.Expires = now })}, "firmware@1.1.0", ""},
		{"unexpired release kept", device("firmware", "1.0.0"),
			[]release.Release{fw("1.2.0", func(r *release.Release) { r.Expires = now.Add(time.Hour) })}, "firmware@1.2.0", ""},
		{"refused upgrade is the reason", device("firmware", "0.5.0"),
			[]release.Release{fw("1.1.0", func(r *release.Release) { r.From = []string{"~1.0"} })}, "", transport.ReasonIncompatible},
		{"hardware revision refusal is the reason", device("firmware", "1.0.0"),
			[]release.Release{fw("1.1.0", func(r *release.Release) { r.HardwareRevisions = []string{"A"} })}, "", transport.ReasonIncompatible},
		{"downgrade below floor is the reason", func() release.Device {
			d := device()
			d.Components["firmware"] = release.Installed{Version: "1.3.0", Floor: "1.3.0"}
			return d
		}(), []release.Release{fw("1.2.0", func(r *release.Release) { r.Downgrade = true })}, "", transport.ReasonDowngrade},
		{"a new component is offered", device("firmware", "1.0.0"), []release.Release{app("1.0.0")}, "payment-app@1.0.0", ""},
		{"a release whose requirement is unmet is not offered", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=1.4")), app("1.1.0")}, "payment-app@1.1.0", ""},
		{"unmet requirement is the reason", device("firmware", "1.0.0", "payment-app", "1.0.0"),
			[]release.Release{app("2.0.0", requires("firmware", ">=1.4"))}, "", transport.ReasonRequirementUnmet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := release.Negotiate(tt.dev, tt.catalog, now)
			if tt.want != "" {
				if err != nil || got.ID() != tt.want {
					t.Fatalf("Negotiate = %s, %v; want %s", got.ID(), err, tt.want)
				}
				return
			}
			var e *release.Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Fatalf("Negotiate = %s, %v; want no offer with reason %s", got.ID(), err, tt.reason)
			}
		})
	}
}

func TestFromManifest(t *testing.T) {
	m := &verify.Manifest{Component: "firmware", Version: "1.1.0", Kind: verify.KindFirmware, Models: []string{"P300"},
		HardwareRevisions: []string{"B"}, From: []string{"~1.0"}, Floor: "1.0.0", Downgrade: true, Expires: now,
		Category: verify.CategorySecurity, Requires: []verify.Requirement{{Component: "bootloader", Version: ">=2"}}}
	r := release.FromManifest(m, "beta")
	if r.Category != verify.CategorySecurity || len(r.Requires) != 1 || r.Requires[0] != m.Requires[0] {
		t.Errorf("FromManifest: category %q, requires %v", r.Category, r.Requires)
	}
	if r.ID() != "firmware@1.1.0" || r.Channel != "beta" || r.Kind != verify.KindFirmware || r.Floor != "1.0.0" ||
		!r.Downgrade || !r.Expires.Equal(now) || r.Models[0] != "P300" || r.HardwareRevisions[0] != "B" || r.From[0] != "~1.0" {
		t.Errorf("FromManifest = %+v", r)
	}
}
