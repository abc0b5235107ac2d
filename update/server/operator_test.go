package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/verify"
)

const (
	viewerToken = "viewer-token"
	adminToken  = "admin-token"
)

func withOperators(c *server.Config) {
	c.Operators = map[string]server.Operator{
		viewerToken: {Name: "vic", Role: server.RoleViewer},
		adminToken:  {Name: "alice", Role: server.RoleAdmin},
	}
}

// call makes an operator API request and returns the status and body.
func (e *env) call(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestOperatorRoles runs every operator endpoint as no one, as a viewer
// and as an admin, in order (the admin's actions build on each other),
// and checks that the viewer's refused attempts at admin actions are in
// the audit log.
func TestOperatorRoles(t *testing.T) {
	clk := newClock()
	root := t.TempDir()
	e := newEnv(t, withOperators, func(c *server.Config) { c.ReleaseRoot, c.Now = root, clk.Now })
	rel := e.pack(e.keys, "1.1.0", content(10_000, 7), func(m *verify.Manifest) { m.From = []string{"~1.0"} })
	if err := os.CopyFS(filepath.Join(root, "fw-1.1.0"), os.DirFS(rel)); err != nil {
		t.Fatal(err)
	}
	id := e.register("SN1", "P300")

	tests := []struct {
		method, path, body string
		admin              bool // an admin action: viewers are refused
		status             int  // for an admin
	}{
		{"GET", "/v1/operator/whoami", "", false, 200},
		{"GET", "/v1/operator/terminals", "", false, 200},
		{"GET", "/v1/operator/terminals?limit=1&reports=5", "", false, 200},
		{"GET", "/v1/operator/terminals?limit=-1", "", false, 400},
		{"GET", "/v1/operator/terminals/" + id, "", false, 200},
		{"GET", "/v1/operator/terminals/t-nobody", "", false, 404},
		{"POST", "/v1/operator/terminals/" + id + "/nudge", "", true, 200},
		{"POST", "/v1/operator/terminals/t-nobody/nudge", "", true, 404},
		{"PUT", "/v1/operator/terminals/" + id + "/labels", `{"group":"north","tags":["lab"]}`, true, 200},
		{"PUT", "/v1/operator/terminals/" + id + "/labels", `{"group":"no spaces"}`, true, 400},
		{"POST", "/v1/operator/releases", `{"dir":"fw-1.1.0"}`, true, 200},
		{"POST", "/v1/operator/releases", `{"dir":"../etc"}`, true, 400},
		{"POST", "/v1/operator/releases", `{"dir":"missing"}`, true, 400},
		{"POST", "/v1/operator/releases", `{"dri":"typo"}`, true, 400},
		{"GET", "/v1/operator/releases", "", false, 200},
		{"POST", "/v1/operator/rollouts", `{"id":"r1","release":"firmware@1.1.0","pilot":["` + id + `"]}`, true, 200},
		{"POST", "/v1/operator/rollouts", `{"id":"r1","release":"firmware@1.1.0"}`, true, 409},
		{"GET", "/v1/operator/rollouts", "", false, 200},
		{"GET", "/v1/operator/rollouts/r1", "", false, 200},
		{"POST", "/v1/operator/rollouts/r1/pause", `{"note":"night freeze"}`, true, 200},
		{"POST", "/v1/operator/rollouts/r1/pause", "", true, 409},
		{"POST", "/v1/operator/rollouts/r1/resume", "", true, 200},
		{"POST", "/v1/operator/rollouts/r1/abort", `{"note":"wrong build"}`, true, 200},
		{"GET", "/v1/operator/audit?after=0&limit=100", "", false, 200},
		{"GET", "/v1/operator/inventory.csv", "", false, 200},
		{"GET", "/v1/operator/nothing-here", "", false, 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.body, func(t *testing.T) {
			if status, body := e.call(tt.method, tt.path, "", tt.body); status != http.StatusUnauthorized {
				t.Errorf("without a token: %d %s", status, body)
			}
			if status, body := e.call(tt.method, tt.path, "not-a-token", tt.body); status != http.StatusUnauthorized {
				t.Errorf("with an unknown token: %d %s", status, body)
			}
			want := tt.status
			if tt.admin {
				want = http.StatusForbidden
			}
			if status, body := e.call(tt.method, tt.path, viewerToken, tt.body); status != want {
				t.Errorf("as a viewer: %d %s, want %d", status, body, want)
			}
			status, body := e.call(tt.method, tt.path, adminToken, tt.body)
			if status != tt.status {
				t.Errorf("as an admin: %d %s, want %d", status, body, tt.status)
			}
			if status >= 400 && !strings.HasSuffix(tt.path, ".csv") {
				var eb transport.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
					t.Errorf("error body %s", body)
				}
			}
		})
	}

	evs, err := e.srv.Audit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ actor, action, result string }
	got := map[key]int{}
	for _, ev := range evs {
		got[key{ev.Actor, ev.Action, ev.Result}]++
		if ev.At.IsZero() || ev.Seq == 0 {
			t.Errorf("audit event without a time or a number: %+v", ev)
		}
	}
	for _, want := range []struct {
		key
		n int
	}{
		{key{"vic", "terminal.nudge", "denied"}, 2},
		{key{"vic", "release.publish", "denied"}, 4},
		{key{"vic", "rollout.create", "denied"}, 2},
		{key{"vic", "rollout.pause", "denied"}, 2},
		{key{"vic", "rollout.abort", "denied"}, 1},
		{key{"alice", "terminal.nudge", "ok"}, 1},
		{key{"alice", "terminal.nudge", "failed"}, 1},
		{key{"alice", "terminal.labels", "ok"}, 1},
		{key{"alice", "release.publish", "ok"}, 1},
		{key{"alice", "release.publish", "failed"}, 3},
		{key{"alice", "rollout.create", "ok"}, 1},
		{key{"alice", "rollout.create", "failed"}, 1},
		{key{"alice", "rollout.pause", "ok"}, 1},
		{key{"alice", "rollout.pause", "failed"}, 1},
		{key{"alice", "rollout.abort", "ok"}, 1},
		{key{"rollout", "rollout.started", "ok"}, 1},
	} {
		if got[want.key] != want.n {
			t.Errorf("audit log has %d of %+v, want %d", got[want.key], want.key, want.n)
		}
	}
	for k := range got {
		if k.actor == "vic" && k.result != "denied" {
			t.Errorf("a viewer did something: %+v", k)
		}
	}
	// A refused publish names the directory as the admin did, and none of
	// the server's paths, to viewers of the audit log or to the admin
	// (review L4).
	for _, ev := range evs {
		if strings.Contains(ev.Target+ev.Detail, root) {
			t.Errorf("the audit log shows the release root: %+v", ev)
		}
	}
	if _, body := e.call("POST", "/v1/operator/releases", adminToken, `{"dir":"missing"}`); strings.Contains(string(body), root) ||
		!strings.Contains(string(body), "missing") {
		t.Errorf("a refused publish: %s", body)
	}
	// Read endpoints leave no trace.
	for _, ev := range evs {
		if strings.HasSuffix(ev.Action, ".list") || strings.HasSuffix(ev.Action, ".get") {
			t.Errorf("a read was audited: %+v", ev)
		}
	}
}

func TestOperatorAPIDisabled(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.OperatorToken = "" })
	if status, _ := e.call("GET", "/v1/operator/terminals", "anything", ""); status != http.StatusForbidden {
		t.Errorf("status %d, want 403", status)
	}
	if _, err := server.New(server.Config{Keys: e.ring, Enrollment: "x",
		Operators: map[string]server.Operator{"t": {Name: "x", Role: "root"}}}); err == nil {
		t.Error("New accepted an operator with an unknown role")
	}
}

func TestOperatorPublishNeedsReleaseRoot(t *testing.T) {
	e := newEnv(t, withOperators)
	status, body := e.call("POST", "/v1/operator/releases", adminToken, `{"dir":"fw"}`)
	if status != http.StatusForbidden {
		t.Errorf("publish without a release root: %d %s", status, body)
	}
}

func TestInventoryCSV(t *testing.T) {
	clk := newClock()
	e := newEnv(t, withOperators, func(c *server.Config) { c.Now = clk.Now })
	ctx := context.Background()
	a := e.register("SN-A", "P300")
	b := e.register("SN-B", "A920")
	if _, err := e.srv.Heartbeat(ctx, a, &transport.HeartbeatRequest{Seq: 1, State: "=HYPERLINK(\"http://x\")",
		Waiting: "merchant, deferring"}); err != nil {
		t.Fatal(err)
	}
	c := e.register("SN-C", "P300")
	if _, err := e.srv.Heartbeat(ctx, c, &transport.HeartbeatRequest{Seq: 1, State: "idle\t+1",
		Waiting: "battery;=cmd|' /C calc'!A0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Report(ctx, b, &transport.ReportRequest{ID: "r1", Release: "firmware@1.1.0",
		Outcome: transport.OutcomeRolledBack, Reason: transport.ReasonBoot, At: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	status, body := e.call("GET", "/v1/operator/inventory.csv", viewerToken, "")
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want a header and 3:\n%s", len(rows), body)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	byID := map[string][]string{}
	for _, r := range rows[1:] {
		byID[r[col["device_id"]]] = r
	}
	tests := []struct {
		id, column, want string
	}{
		{a, "serial", "SN-A"},
		{a, "model", "P300"},
		{a, "components", "firmware=1.0.0"},
		{a, "state", "'=HYPERLINK(\"http://x\")"},
		{a, "waiting", "merchant, deferring"},
		{a, "online", "true"},
		{a, "last_seen", clk.Now().Format(time.RFC3339)},
		{a, "last_outcome", ""},
		{b, "online", "false"},
		{b, "last_release", "firmware@1.1.0"},
		{b, "last_outcome", "rolled_back"},
		{b, "last_reason", "boot_failed"},
		{c, "state", "idle +1"},
		{c, "waiting", "battery;'=cmd|' /C calc'!A0"},
	}
	for _, tt := range tests {
		if got := byID[tt.id][col[tt.column]]; got != tt.want {
			t.Errorf("%s %s = %q, want %q", tt.id, tt.column, got, tt.want)
		}
	}
}

// A manual update lands in the audit log once, as the terminal's: the
// credential is what the terminal says a technician used, quoted, cleaned
// of control characters and cut short (review L4).
func TestManualUpdateIsAudited(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name       string
		credential string
		outcome    transport.Outcome
		result     string
		detail     string // the audit event's detail contains it
	}{
		{"a token", "token:tech-042@k1", transport.OutcomeCommitted, "ok", `credential "token:tech-042@k1"`},
		{"rolled back", "maintenance-password", transport.OutcomeRolledBack, "failed", `credential "maintenance-password"`},
		{"control characters", "alice\nadmin\x1b[2J", transport.OutcomeCommitted, "ok", `credential "alice?admin?[2J"`},
		{"too long", long, transport.OutcomeCommitted, "ok", `credential "` + long[:64] + `…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			id := e.register("SN1", "P300")
			rep := &transport.ReportRequest{ID: "m-1", Release: "firmware@1.1.0", To: "1.1.0", Outcome: tt.outcome,
				Reason: transport.ReasonOK, At: time.Now(), Manual: &transport.Manual{Method: "token", Credential: tt.credential}}
			for range 2 { // once, however often it is sent
				if _, err := e.srv.Report(ctx, id, rep); err != nil {
					t.Fatal(err)
				}
			}
			evs, err := e.srv.Audit(ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(evs, func(ev store.AuditEvent) bool { return ev.Action == "terminal.manual_update" })
			if i < 0 {
				t.Fatalf("no manual update in the audit log: %+v", evs)
			}
			ev := evs[i]
			if ev.Actor != "terminal:"+id || ev.Role != "terminal" || ev.Target != id || ev.Result != tt.result ||
				!strings.Contains(ev.Detail, "firmware@1.1.0") || !strings.Contains(ev.Detail, tt.detail) {
				t.Errorf("audit event %+v; want the detail to contain %s", ev, tt.detail)
			}
			if n := count(auditActions(t, e.srv), "terminal.manual_update"); n != 1 {
				t.Errorf("%d manual update events, want 1", n)
			}
		})
	}
}

func TestTerminalsPage(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.register(fmt.Sprintf("SN%d", i), "P300"))
	}
	slices.Sort(ids)
	ctx := context.Background()
	var got []string
	after := ""
	for {
		page, err := e.srv.ListTerminals(ctx, server.TerminalQuery{After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, term := range page {
			got = append(got, term.DeviceID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].DeviceID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("pages gave %v, want %v", got, ids)
	}
}

// The operator API's lists come in pages: 100 by default, at most 1000,
// each full one naming the next in a Link header (review M5).
func TestOperatorListsArePaged(t *testing.T) {
	e := newEnv(t, withOperators)
	var ids []string
	for i := range server.DefaultPage + 3 {
		ids = append(ids, e.register(fmt.Sprintf("SN%03d", i), "P300"))
	}
	slices.Sort(ids)
	for _, id := range ids[:7] {
		if status, body := e.call("POST", "/v1/operator/terminals/"+id+"/nudge", adminToken, ""); status != http.StatusOK {
			t.Fatalf("nudge: %d %s", status, body)
		}
	}
	// get follows a list's pages from path and returns how long each was.
	get := func(path string, item func(json.RawMessage) string) (pages []int, items []string) {
		t.Helper()
		for path != "" {
			req, _ := http.NewRequest("GET", e.http.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+viewerToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page []json.RawMessage
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
			}
			pages = append(pages, len(page))
			for _, raw := range page {
				items = append(items, item(raw))
			}
			path = ""
			if link := resp.Header.Get("Link"); link != "" {
				next, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
				if !ok || !strings.HasPrefix(next, "/v1/operator/") {
					t.Fatalf("Link %q", link)
				}
				path = next
			}
			if len(pages) > 200 {
				t.Fatal("pages without end")
			}
		}
		return pages, items
	}
	deviceID := func(raw json.RawMessage) string {
		var term server.Terminal
		json.Unmarshal(raw, &term)
		return term.DeviceID
	}
	seq := func(raw json.RawMessage) string {
		var ev struct{ Seq int64 }
		json.Unmarshal(raw, &ev)
		return fmt.Sprint(ev.Seq)
	}
	tests := []struct {
		path  string
		item  func(json.RawMessage) string
		pages []int
		want  []string
	}{
		{"/v1/operator/terminals", deviceID, []int{100, 3}, ids},
		{"/v1/operator/terminals?limit=50&reports=1", deviceID, []int{50, 50, 3}, ids},
		{"/v1/operator/terminals?limit=1000000", deviceID, []int{103}, ids},
		{"/v1/operator/terminals?after=" + ids[100], deviceID, []int{2}, ids[101:]},
		{"/v1/operator/audit?limit=3", seq, []int{3, 3, 1}, []string{"1", "2", "3", "4", "5", "6", "7"}},
	}
	for _, tt := range tests {
		pages, items := get(tt.path, tt.item)
		if !slices.Equal(pages, tt.pages) || !slices.Equal(items, tt.want) {
			t.Errorf("GET %s: pages %v of %v, want %v of %v", tt.path, pages, items, tt.pages, tt.want)
		}
	}
}

// A cell of the inventory a spreadsheet would run as a formula is
// defused wherever a spreadsheet may split it: at its start, and after
// each ';' or ',' (the list separator of many locales), after spaces;
// control characters become spaces (review L3).
func TestCSVCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"idle", "idle"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"battery;=cmd|' /C calc'!A0", "battery;'=cmd|' /C calc'!A0"},
		{"merchant, deferring", "merchant, deferring"},
		{"a, +1;  @SUM(A1)", "a, '+1;  '@SUM(A1)"},
		{"  -2", "  '-2"},
		{"\t=1", " '=1"},
		{"idle\r\n=1", "idle  =1"},
		{"x=1;y=-2", "x=1;y=-2"},
		{"firmware=1.0.0;app=2.1.0", "firmware=1.0.0;app=2.1.0"},
	}
	for _, tt := range tests {
		if got := server.CSVCell(tt.in); got != tt.want {
			t.Errorf("csvCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCSVCell: whatever a terminal says, no part of a cell starts with a
// formula, and no control character is left.
func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"=1", "a;=b", " ,@c", "\t+d", "ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := server.CSVCell(in)
		if strings.ContainsFunc(out, unicode.IsControl) {
			t.Fatalf("csvCell(%q) = %q has a control character", in, out)
		}
		for _, part := range strings.FieldsFunc(out, func(r rune) bool { return r == ';' || r == ',' }) {
			if p := strings.TrimLeft(part, " "); p != "" && strings.ContainsRune("=+-@", []rune(p)[0]) {
				t.Fatalf("csvCell(%q) = %q: part %q starts a formula", in, out, part)
			}
		}
	})
}
