package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/fileinstall"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/verify"
)

// appRelease makes a release the payment app's.
func appRelease(m *verify.Manifest) {
	m.Component, m.Kind, m.Models = "payment-app", verify.KindApplication, nil
}

func requiring(component, constraint string) func(*verify.Manifest) {
	return func(m *verify.Manifest) {
		m.Requires = append(m.Requires, verify.Requirement{Component: component, Version: constraint})
	}
}

func category(c verify.Category) func(*verify.Manifest) {
	return func(m *verify.Manifest) { m.Category = c }
}

// components parses "name=version" pairs.
func components(pairs ...string) []transport.Component {
	var out []transport.Component
	for _, p := range pairs {
		name, v, _ := strings.Cut(p, "=")
		out = append(out, transport.Component{Name: name, Version: v})
	}
	return out
}

// registerWith enrolls a terminal with the given components.
func (e *env) registerWith(serial, model string, comps []transport.Component) string {
	e.t.Helper()
	resp, err := e.srv.Register(context.Background(), &transport.RegisterRequest{Enrollment: enrollment, Serial: serial,
		Model: model, Components: comps})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.DeviceID
}

// checkIDs checks as terminal id with comps and returns the offers'
// release IDs, space-separated, and the reason when there are none.
func (e *env) checkIDs(id string, comps []transport.Component) (string, transport.Reason) {
	e.t.Helper()
	resp, err := e.srv.Check(context.Background(), id, &transport.CheckRequest{Model: "P300", Components: comps})
	if err != nil {
		e.t.Fatalf("Check: %v", err)
	}
	var ids []string
	for _, o := range resp.Offers {
		m, err := e.ring.Open(o.Bundle, time.Now())
		if err != nil {
			e.t.Fatalf("offer does not verify: %v", err)
		}
		ids = append(ids, m.ID())
	}
	if len(ids) == 0 && resp.RetryAfterSeconds <= 0 {
		e.t.Errorf("no offer and no retry: %+v", resp)
	}
	return strings.Join(ids, " "), resp.Reason
}

func TestCheckOffersRequirementsFirst(t *testing.T) {
	fw14 := func(e *env) {
		e.publish(e.pack(e.keys, "1.4.0", content(5000, 14), category(verify.CategorySecurity)))
	}
	app20 := func(e *env) {
		e.publish(e.pack(e.keys, "2.0.0", content(5000, 20), appRelease, requiring("firmware", ">=1.4")))
	}
	params3 := func(e *env) {
		e.publish(e.pack(e.keys, "3.0.0", content(5000, 3), func(m *verify.Manifest) {
			m.Component, m.Kind, m.Models = "params", verify.KindParameters, nil
		}, requiring("payment-app", ">=2.0.0")))
	}
	tests := []struct {
		name      string
		publish   []func(*env)
		installed []string
		want      string
		reason    transport.Reason
	}{
		{"firmware, then the app that needs it", []func(*env){app20, fw14}, []string{"firmware=1.0.0", "payment-app=1.0.0"},
			"firmware@1.4.0 payment-app@2.0.0", ""},
		{"the firmware is there", []func(*env){app20, fw14}, []string{"firmware=1.4.0", "payment-app=1.0.0"},
			"payment-app@2.0.0", ""},
		{"nothing meets the requirement", []func(*env){app20}, []string{"firmware=1.0.0", "payment-app=1.0.0"},
			"", transport.ReasonRequirementUnmet},
		{"three steps", []func(*env){params3, app20, fw14}, []string{"firmware=1.0.0", "payment-app=1.0.0", "params=2.0.0"},
			"firmware@1.4.0 payment-app@2.0.0 params@3.0.0", ""},
		{"up to date", []func(*env){app20, fw14}, []string{"firmware=1.4.0", "payment-app=2.0.0"}, "", transport.ReasonUpToDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for _, p := range tt.publish {
				p(e)
			}
			comps := components(tt.installed...)
			id := e.registerWith("SN1", "P300", comps)
			got, reason := e.checkIDs(id, comps)
			if got != tt.want || (tt.want == "" && reason != tt.reason) {
				t.Errorf("offers [%s] (%s), want [%s] (%s)", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestCheckPlanStepsGoThroughTheirRollouts(t *testing.T) {
	clk := newClock()
	e := newEnv(t, func(c *server.Config) { c.Now = clk.Now })
	ctx := context.Background()
	e.publish(e.pack(e.keys, "1.4.0", content(5000, 14)))
	e.publish(e.pack(e.keys, "2.0.0", content(5000, 20), appRelease, requiring("firmware", ">=1.4")))
	old := components("firmware=1.0.0", "payment-app=1.0.0")
	pilot := e.registerWith("SN-P", "P300", old)
	other := e.registerWith("SN-O", "P300", old)
	e.registerWith("SN-A", "A920", old) // firmware 1.4 is not for it: it cannot meet the app's requirement

	// The app rolls out to the pilot first; the firmware is offered to all.
	st, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "app-2", Release: "payment-app@2.0.0",
		Pilot: []string{pilot}, Batches: []float64{100}, SoakSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total.Pending != 2 {
		t.Errorf("tracked %d pending terminals, want the two that can get the firmware first", st.Total.Pending)
	}
	if got, _ := e.checkIDs(pilot, old); got != "firmware@1.4.0 payment-app@2.0.0" {
		t.Errorf("pilot offered [%s]", got)
	}
	if got, _ := e.checkIDs(other, old); got != "firmware@1.4.0" {
		t.Errorf("a terminal the rollout has not reached offered [%s]", got)
	}
	// The app waits for the firmware: the rollout counts no start yet.
	if st := rolloutOf(t, e.srv, "app-2"); st.Stages[0].Offered != 0 || st.Stages[0].Pending != 1 {
		t.Errorf("pilot stage %+v, want pending until the app can be installed", st.Stages[0])
	}
	// A terminal that looks at the app before the firmware refuses it for
	// its requirement: no failure of the app.
	if _, err := e.srv.Report(ctx, pilot, &transport.ReportRequest{ID: "early", Release: "payment-app@2.0.0", To: "2.0.0",
		Outcome: transport.OutcomeRefused, Reason: transport.ReasonRequirementUnmet, At: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := rolloutOf(t, e.srv, "app-2"); st.Total.Failed != 0 || st.State != "running" {
		t.Errorf("after a requirement_unmet refusal: %s, %+v", st.State, st.Total)
	}
	// With the firmware installed, the app is the next step, and a start.
	fw := components("firmware=1.4.0", "payment-app=1.0.0")
	if got, _ := e.checkIDs(pilot, fw); got != "payment-app@2.0.0" {
		t.Errorf("pilot on firmware 1.4 offered [%s]", got)
	}
	if st := rolloutOf(t, e.srv, "app-2"); st.Stages[0].Offered != 1 {
		t.Errorf("pilot stage %+v, want offered", st.Stages[0])
	}
	if got, reason := e.checkIDs(other, fw); got != "" || reason != transport.ReasonNoRelease {
		t.Errorf("a terminal the rollout has not reached, on firmware 1.4: [%s] %s", got, reason)
	}
}

// A rollout holding back a prerequisite holds back what needs it.
func TestCheckPrerequisiteHeldByItsRollout(t *testing.T) {
	clk := newClock()
	e := newEnv(t, func(c *server.Config) { c.Now = clk.Now })
	ctx := context.Background()
	e.publish(e.pack(e.keys, "1.4.0", content(5000, 14)))
	e.publish(e.pack(e.keys, "2.0.0", content(5000, 20), appRelease, requiring("firmware", ">=1.4")))
	old := components("firmware=1.0.0", "payment-app=1.0.0")
	pilot := e.registerWith("SN-P", "P300", old)
	other := e.registerWith("SN-O", "P300", old)
	if _, err := e.srv.CreateRollout(ctx, admin, server.RolloutSpec{ID: "fw-1.4", Release: "firmware@1.4.0",
		Pilot: []string{pilot}, Batches: []float64{100}, SoakSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.checkIDs(pilot, old); got != "firmware@1.4.0 payment-app@2.0.0" {
		t.Errorf("pilot offered [%s]", got)
	}
	if got, reason := e.checkIDs(other, old); got != "" || reason != transport.ReasonRequirementUnmet {
		t.Errorf("a terminal the firmware's rollout has not reached: [%s] %s", got, reason)
	}
	if st := rolloutOf(t, e.srv, "fw-1.4"); st.Stages[0].Offered != 1 {
		t.Errorf("firmware pilot stage %+v, want offered", st.Stages[0])
	}
}

func TestSecurityPatchAge(t *testing.T) {
	clk := newClock()
	e := newEnv(t, withOperators, func(c *server.Config) { c.Now = clk.Now })
	ctx := context.Background()
	t0 := clk.Now()
	e.publish(e.pack(e.keys, "1.4.0", content(5000, 14), category(verify.CategorySecurity)))
	clk.Add(2 * time.Hour)
	t1 := clk.Now()
	e.publish(e.pack(e.keys, "2.0.0", content(5000, 20), appRelease, category(verify.CategorySecurity)))
	e.publish(e.pack(e.keys, "1.5.0", content(5000, 15), category(verify.CategoryFeature)))
	e.publish(e.pack(e.keys, "9.0.0", content(5000, 90), category(verify.CategorySecurity),
		func(m *verify.Manifest) { m.HardwareRevisions = []string{"Z"} }))

	behind := e.registerWith("SN-1", "P300", components("firmware=1.0.0", "payment-app=2.0.0"))
	appBehind := e.registerWith("SN-2", "P300", components("firmware=1.4.0", "payment-app=1.2.0"))
	current := e.registerWith("SN-3", "P300", components("firmware=1.5.0", "payment-app=2.0.0"))
	noApp := e.registerWith("SN-4", "P300", components("firmware=1.4.0"))
	otherModel := e.registerWith("SN-5", "A920", components("firmware=1.0.0"))
	clk.Add(5 * 24 * time.Hour)

	tests := []struct {
		id      string
		release string
		since   time.Time
		days    int
	}{
		{behind, "firmware@1.4.0", t0, 5},
		{appBehind, "payment-app@2.0.0", t1, 5},
		{current, "", time.Time{}, 0},
		{noApp, "", time.Time{}, 0},
		{otherModel, "", time.Time{}, 0},
	}
	list, err := e.srv.ListTerminals(ctx, server.TerminalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		for _, got := range []server.Terminal{find(t, list, tt.id), must(e.srv.Terminal(ctx, tt.id))} {
			if got.SecurityPending != tt.release || !got.SecurityPendingSince.Equal(tt.since) || got.SecurityPendingDays != tt.days {
				t.Errorf("%s: pending %q since %v, %d days; want %q since %v, %d days", tt.id, got.SecurityPending,
					got.SecurityPendingSince, got.SecurityPendingDays, tt.release, tt.since, tt.days)
			}
		}
	}

	// The operator API and the inventory show it.
	status, body := e.call("GET", "/v1/operator/terminals", viewerToken, "")
	if status != http.StatusOK {
		t.Fatalf("terminals: %d %s", status, body)
	}
	var listed []map[string]any
	if err := json.Unmarshal(body, &listed); err != nil {
		t.Fatal(err)
	}
	for _, m := range listed {
		if m["device_id"] == behind && (m["security_pending_since"] != t0.Format(time.RFC3339Nano) || m["security_pending_days"] != 5.0) {
			t.Errorf("operator API: %v", m)
		}
		if m["device_id"] == current && (m["security_pending_since"] != nil || m["security_pending_days"] != 0.0) {
			t.Errorf("operator API, a current terminal: %v", m)
		}
	}
	status, body = e.call("GET", "/v1/operator/inventory.csv", viewerToken, "")
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, tt := range tests {
		i := slices.IndexFunc(rows, func(r []string) bool { return r[col["device_id"]] == tt.id })
		if i < 0 {
			t.Fatalf("%s not in the inventory", tt.id)
		}
		row := rows[i]
		wantSince, wantDays := "", ""
		if tt.release != "" {
			wantSince, wantDays = tt.since.UTC().Format(time.RFC3339), strconv.Itoa(tt.days)
		}
		if row[col["security_pending"]] != tt.release || row[col["security_pending_since"]] != wantSince ||
			row[col["security_pending_days"]] != wantDays {
			t.Errorf("inventory %s: %q %q %q", tt.id, row[col["security_pending"]], row[col["security_pending_since"]],
				row[col["security_pending_days"]])
		}
	}

	// Releases list their category and requirements.
	for _, r := range e.srv.Releases() {
		if r.ID == "payment-app@2.0.0" && r.Category != verify.CategorySecurity {
			t.Errorf("release %s: category %q", r.ID, r.Category)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A real agent on firmware 1.0 takes the plan one step a pass: the
// firmware the app needs, then the app.
func TestAgentFollowsThePlan(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.publish(e.pack(e.keys, "2.0.0", content(5000, 20), appRelease, requiring("firmware", ">=1.4")))
	e.publish(e.pack(e.keys, "1.4.0", content(5000, 14)))
	c, id := e.client("SN-PLAN", "P300")
	dir := t.TempDir()
	a, err := update.New(update.Config{
		Source: c, Keys: e.ring, Installer: &fileinstall.Installer{Path: filepath.Join(dir, "installed.bin")},
		StateDir: filepath.Join(dir, "state"), Device: update.Device{Model: "P300"},
		Installed: map[string]string{"firmware": "1.0.0", "payment-app": "1.0.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"firmware@1.4.0", "payment-app@2.0.0"} {
		res, err := a.Update(ctx)
		if err != nil || res.Outcome != transport.OutcomeCommitted || res.Release != want {
			t.Fatalf("Update = %+v, %v; want %s committed", res, err, want)
		}
	}
	res, err := a.Update(ctx)
	if err != nil || res.Outcome != "" || res.Reason != transport.ReasonUpToDate {
		t.Errorf("third pass: %+v, %v; want up to date", res, err)
	}
	term := must(e.srv.Terminal(ctx, id))
	if got := fmt.Sprint(term.Components); got != "[{firmware 1.4.0 } {payment-app 2.0.0 }]" {
		t.Errorf("server lists %s", got)
	}
}
