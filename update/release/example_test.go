package release_test

import (
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

// A terminal on firmware 1.0 is due the payment app 2.0, which needs
// firmware 1.4 or later: the plan installs the firmware first.
func ExamplePlan() {
	terminal := release.Device{Model: "P300", Components: map[string]release.Installed{
		"firmware":    {Version: "1.0.0"},
		"payment-app": {Version: "1.9.0"},
	}}
	catalog := []release.Release{
		{Component: "payment-app", Version: "2.0.0", Kind: verify.KindApplication, Category: verify.CategoryFeature,
			Requires: []verify.Requirement{{Component: "firmware", Version: ">=1.4"}}},
		{Component: "firmware", Version: "1.4.0", Kind: verify.KindFirmware, Category: verify.CategorySecurity,
			Models: []string{"P300"}},
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

	fmt.Println(release.Compatible(terminal, catalog[0]))
	plan, err := release.Plan(terminal, catalog, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, r := range plan {
		fmt.Printf("%d. %s (%s)\n", i+1, r.ID(), r.Category)
	}
	// Output:
	// release: payment-app@2.0.0: requirement_unmet: needs firmware >=1.4; 1.0.0 is installed
	// 1. firmware@1.4.0 (security)
	// 2. payment-app@2.0.0 (feature)
}
