// Package storetest is the conformance suite of package store: every
// implementation of [store.Store] runs it, so the update server behaves
// the same on each.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/update/server/store"
)

// Run runs the suite. open returns a new, empty store for one subtest and
// arranges (with t.Cleanup) to close and remove it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"TerminalRoundTrip", testTerminalRoundTrip},
		{"TerminalCopies", testTerminalCopies},
		{"TerminalExists", testTerminalExists},
		{"TerminalInvalid", testTerminalInvalid},
		{"TerminalNotFound", testTerminalNotFound},
		{"UpdateTerminal", testUpdateTerminal},
		{"ListTerminals", testListTerminals},
		{"Heartbeats", testHeartbeats},
		{"HeartbeatsOutOfOrder", testHeartbeatsOutOfOrder},
		{"HeartbeatsSameTerminal", testHeartbeatsSameTerminal},
		{"HeartbeatsLargeBatch", testHeartbeatsLargeBatch},
		{"Reports", testReports},
		{"ReportsUpdateFails", testReportsUpdateFails},
		{"Releases", testReleases},
		{"Rollouts", testRollouts},
		{"RolloutDevices", testRolloutDevices},
		{"RolloutCounts", testRolloutCounts},
		{"ChangeRolloutDevices", testChangeRolloutDevices},
		{"ClaimRolloutDevice", testClaimRolloutDevice},
		{"ClaimStarts", testClaimStarts},
		{"ConcurrentClaims", testConcurrentClaims},
		{"Audit", testAudit},
		{"Canceled", testCanceled},
		{"ConcurrentHeartbeatsAndRollouts", testConcurrentHeartbeatsAndRollouts},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentReports", testConcurrentReports},
		{"ConcurrentAudit", testConcurrentAudit},
		{"Batcher", testBatcher},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// base is a time with nanoseconds and a zone: stores keep it in UTC to the
// microsecond.
var base = time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CST", 8*3600))

func at(d time.Duration) time.Time { return base.Add(d) }

func tokenHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// newTerminal returns a terminal with every field set.
func newTerminal(i int) store.Terminal {
	return store.Terminal{
		ID: fmt.Sprintf("t-%06d", i), Serial: fmt.Sprintf("SN%06d", i), Model: "P300", HardwareRevision: "rev-b",
		TokenHash: tokenHash(fmt.Sprint("token", i)), Tags: []string{"mall", "north"}, Group: "shanghai",
		Channel: "stable", Components: []store.Component{{Name: "pos-app", Version: "1.0.0", Floor: "0.9.0"}, {Name: "fw", Version: "5"}},
		RegisteredAt: at(0), LastSeen: at(time.Minute), Interval: 5 * time.Minute,
		Status:     store.Status{Seq: 7, State: "idle", Release: "pos-app@1.1.0", Waiting: "window", Battery: &store.Battery{Percent: 80, OnMains: true}, Network: "4g"},
		LastResult: &store.Result{Release: "pos-app@1.0.0", Outcome: "committed", Reason: "ok", At: at(-time.Hour)},
		Directives: []string{"check"},
	}
}

func mustCreate(t *testing.T, s store.Store, terms ...store.Terminal) {
	t.Helper()
	for _, tm := range terms {
		if err := s.CreateTerminal(t.Context(), tm); err != nil {
			t.Fatalf("CreateTerminal(%s): %v", tm.ID, err)
		}
	}
}

func mustTerminal(t *testing.T, s store.Store, id string) store.Terminal {
	t.Helper()
	tm, err := s.Terminal(t.Context(), id)
	if err != nil {
		t.Fatalf("Terminal(%s): %v", id, err)
	}
	return tm
}

// norm brings a record to the form every store returns: times in UTC to
// the microsecond, empty slices nil. It is the suite's own statement of
// the conventions in the store package's doc.
func norm(v any) any {
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	rv.Set(deepCopy(reflect.ValueOf(v)))
	normValue(rv)
	return rv.Interface()
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		if v.Type() == reflect.TypeFor[time.Time]() {
			return c
		}
		for i := range v.NumField() {
			if c.Field(i).CanSet() {
				c.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return c
	}
	return v
}

func normValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normValue(v.Elem())
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := range v.Len() {
			normValue(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			tm := v.Interface().(time.Time)
			if tm.IsZero() {
				v.Set(reflect.ValueOf(time.Time{}))
			} else {
				v.Set(reflect.ValueOf(tm.UTC().Truncate(time.Microsecond)))
			}
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				normValue(v.Field(i))
			}
		}
	}
}

// same reports a difference between got and the normalized want.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if w := norm(want); !reflect.DeepEqual(got, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, w)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func testTerminalRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := newTerminal(1)
	bare := store.Terminal{ID: "t-bare", Serial: "SN-bare"}
	mustCreate(t, s, full, bare)
	same(t, "Terminal(full)", mustTerminal(t, s, full.ID), full)
	same(t, "Terminal(bare)", mustTerminal(t, s, bare.ID), bare)
	got, err := s.TerminalBySerial(ctx, full.Serial)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "TerminalBySerial", got, full)
	id, err := s.TokenOwner(ctx, full.TokenHash)
	if err != nil || id != full.ID {
		t.Errorf("TokenOwner = %q, %v; want %q", id, err, full.ID)
	}
	if got := mustTerminal(t, s, full.ID); got.LastSeen.Location() != time.UTC || got.LastSeen.Nanosecond()%1000 != 0 {
		t.Errorf("LastSeen = %v, want UTC to the microsecond", got.LastSeen)
	}
}

func testTerminalCopies(t *testing.T, s store.Store) {
	tm := newTerminal(1)
	mustCreate(t, s, tm)
	tm.Components[0].Version = "changed"
	tm.Tags[0] = "changed"
	tm.TokenHash[0]++
	tm.Status.Battery.Percent = 1
	tm.LastResult.Reason = "changed"
	got := mustTerminal(t, s, tm.ID)
	same(t, "after changing what was created", got, newTerminal(1))
	got.Components[0].Version = "changed"
	got.Status.Battery.Percent = 1
	got.Directives[0] = "changed"
	same(t, "after changing what was read", mustTerminal(t, s, tm.ID), newTerminal(1))
}

func testTerminalExists(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1))
	tests := []struct {
		name string
		t    store.Terminal
	}{
		{"device ID", store.Terminal{ID: "t-000001", Serial: "other"}},
		{"serial", store.Terminal{ID: "other", Serial: "SN000001"}},
		{"token hash", store.Terminal{ID: "other", Serial: "other", TokenHash: tokenHash("token1")}},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, s.CreateTerminal(ctx, tt.t), store.ErrExists)
	}
	// Terminals without a token do not collide.
	mustCreate(t, s, store.Terminal{ID: "a", Serial: "a"}, store.Terminal{ID: "b", Serial: "b"})
	if _, err := s.TerminalBySerial(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused create left a terminal behind: %v", err)
	}
}

func testTerminalInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		t    store.Terminal
	}{
		{"empty ID", store.Terminal{Serial: "s"}},
		{"empty serial", store.Terminal{ID: "t"}},
		{"NUL in ID", store.Terminal{ID: "t\x00", Serial: "s"}},
		{"NUL in model", store.Terminal{ID: "t", Serial: "s", Model: "a\x00b"}},
		{"bad UTF-8 in serial", store.Terminal{ID: "t", Serial: "s\xff"}},
		{"long ID", store.Terminal{ID: strings.Repeat("x", 600), Serial: "s"}},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, s.CreateTerminal(ctx, tt.t), store.ErrInvalid)
	}
	if ts, err := s.ListTerminals(ctx, "", 0); err != nil || len(ts) != 0 {
		t.Errorf("ListTerminals after refused creates = %d terminals, %v", len(ts), err)
	}
}

func testTerminalNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, store.Terminal{ID: "t", Serial: "s"}) // no token
	_, err := s.Terminal(ctx, "nope")
	wantErr(t, "Terminal", err, store.ErrNotFound)
	_, err = s.TerminalBySerial(ctx, "nope")
	wantErr(t, "TerminalBySerial", err, store.ErrNotFound)
	_, err = s.TokenOwner(ctx, tokenHash("nope"))
	wantErr(t, "TokenOwner", err, store.ErrNotFound)
	_, err = s.TokenOwner(ctx, nil)
	wantErr(t, "TokenOwner(nil)", err, store.ErrNotFound)
	_, err = s.UpdateTerminal(ctx, "nope", func(*store.Terminal) error { t.Error("update called"); return nil })
	wantErr(t, "UpdateTerminal", err, store.ErrNotFound)
	var se *store.Error
	if _, err := s.Terminal(ctx, "nope"); !errors.As(err, &se) || se.Kind != store.KindTerminal || se.Key != "nope" {
		t.Errorf("Terminal(nope) = %#v, want a *store.Error of kind terminal naming it", err)
	}
}

func testUpdateTerminal(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1), newTerminal(2))
	want := newTerminal(1)
	want.TokenHash = tokenHash("new")
	want.Model, want.Tags, want.Directives, want.LastResult = "P400", nil, []string{"check", "sign_in"}, nil
	got, err := s.UpdateTerminal(ctx, want.ID, func(tm *store.Terminal) error {
		same(t, "UpdateTerminal sees", *tm, newTerminal(1))
		tm.TokenHash = tokenHash("new")
		tm.Model, tm.Tags, tm.LastResult = "P400", nil, nil
		tm.Directives = append(tm.Directives, "sign_in")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "UpdateTerminal returns", got, want)
	same(t, "Terminal after UpdateTerminal", mustTerminal(t, s, want.ID), want)
	if _, err := s.TokenOwner(ctx, tokenHash("token1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old token still has an owner: %v", err)
	}
	if id, err := s.TokenOwner(ctx, tokenHash("new")); err != nil || id != want.ID {
		t.Errorf("TokenOwner(new) = %q, %v", id, err)
	}

	boom := errors.New("boom")
	_, err = s.UpdateTerminal(ctx, want.ID, func(tm *store.Terminal) error { tm.Model = "lost"; return boom })
	wantErr(t, "update returning an error", err, boom)
	tests := []struct {
		name   string
		update func(*store.Terminal)
		err    error
	}{
		{"change ID", func(tm *store.Terminal) { tm.ID = "t-9" }, store.ErrInvalid},
		{"change serial", func(tm *store.Terminal) { tm.Serial = "SN9" }, store.ErrInvalid},
		{"take another's token", func(tm *store.Terminal) { tm.TokenHash = tokenHash("token2") }, store.ErrExists},
		{"NUL in group", func(tm *store.Terminal) { tm.Group = "\x00" }, store.ErrInvalid},
	}
	for _, tt := range tests {
		_, err := s.UpdateTerminal(ctx, want.ID, func(tm *store.Terminal) error { tm.Model = "lost"; tt.update(tm); return nil })
		wantErr(t, tt.name, err, tt.err)
	}
	same(t, "Terminal after refused updates", mustTerminal(t, s, want.ID), want)
	if _, err := s.TerminalBySerial(ctx, "SN9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused serial change is indexed: %v", err)
	}

	// Revoking the token: no token works.
	if _, err := s.UpdateTerminal(ctx, want.ID, func(tm *store.Terminal) error { tm.TokenHash = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenOwner(ctx, tokenHash("new")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a revoked token still has an owner: %v", err)
	}
}

func testListTerminals(t *testing.T, s store.Store) {
	ctx := t.Context()
	if ts, err := s.ListTerminals(ctx, "", 0); err != nil || len(ts) != 0 {
		t.Fatalf("empty store: %d terminals, %v", len(ts), err)
	}
	// Bytewise order, whatever the database's collation.
	ids := []string{"b", "B", "a-2", "a_1", "a", "é", "z", "A", "a 1", "10", "9"}
	for _, id := range ids {
		mustCreate(t, s, store.Terminal{ID: id, Serial: "SN" + id})
	}
	slices.Sort(ids)
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, ids},
		{"", -1, ids},
		{"", 3, ids[:3]},
		{ids[2], 4, ids[3:7]},
		{ids[len(ids)-1], 0, nil},
		{"a", 0, ids[slices.Index(ids, "a")+1:]},
		{"a 0", 1, []string{"a 1"}},
	}
	for _, tt := range tests {
		ts, err := s.ListTerminals(ctx, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tm := range ts {
			got = append(got, tm.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListTerminals(%q, %d) = %q, want %q", tt.after, tt.limit, got, tt.want)
		}
	}
	// Paging visits every terminal once.
	var seen []string
	for after := ""; ; {
		ts, err := s.ListTerminals(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 0 {
			break
		}
		for _, tm := range ts {
			seen = append(seen, tm.ID)
		}
		after = ts[len(ts)-1].ID
	}
	if !slices.Equal(seen, ids) {
		t.Errorf("paging saw %q, want %q", seen, ids)
	}
}

func testHeartbeats(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1), newTerminal(2), newTerminal(3))
	if res, err := s.Heartbeats(ctx, nil); err != nil || len(res) != 0 {
		t.Errorf("Heartbeats(nil) = %v, %v", res, err)
	}
	beats := []store.Heartbeat{
		{DeviceID: "t-000001", At: at(time.Hour), Interval: time.Minute,
			Status:     store.Status{Seq: 8, State: "downloading", Release: "pos-app@1.1.0", Battery: &store.Battery{Percent: 40}, Network: "wifi"},
			Components: []store.Component{{Name: "pos-app", Version: "1.0.1"}},
			LastResult: &store.Result{Release: "pos-app@1.0.1", Outcome: "committed", At: at(59 * time.Minute)}},
		{DeviceID: "nope", At: at(time.Hour)},
		{DeviceID: "t-000002", At: at(time.Hour), Status: store.Status{Seq: 1, State: "idle"}},
		{DeviceID: "t-000003"}, // no time
	}
	res, err := s.Heartbeats(ctx, beats)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(beats) {
		t.Fatalf("Heartbeats returned %d results for %d beats", len(res), len(beats))
	}
	for i, want := range []error{nil, store.ErrNotFound, nil, store.ErrInvalid} {
		if !errors.Is(res[i].Err, want) || (want == nil && res[i].Err != nil) {
			t.Errorf("result %d: err = %v, want %v", i, res[i].Err, want)
		}
	}
	if !slices.Equal(res[0].Directives, []string{"check"}) || !slices.Equal(res[2].Directives, []string{"check"}) {
		t.Errorf("directives taken = %q, %q; want [check] each", res[0].Directives, res[2].Directives)
	}

	want1 := newTerminal(1)
	want1.LastSeen, want1.Interval, want1.Status = beats[0].At, time.Minute, beats[0].Status
	want1.Components, want1.LastResult, want1.Directives = beats[0].Components, beats[0].LastResult, nil
	same(t, "t-000001 after a full beat", mustTerminal(t, s, "t-000001"), want1)
	// No components, no result, no interval: those are kept.
	want2 := newTerminal(2)
	want2.LastSeen, want2.Status, want2.Directives = beats[2].At, beats[2].Status, nil
	same(t, "t-000002 after a bare beat", mustTerminal(t, s, "t-000002"), want2)
	same(t, "t-000003 after an invalid beat", mustTerminal(t, s, "t-000003"), newTerminal(3))

	// The directives were taken: the next beat gets none, until a new one.
	res, err = s.Heartbeats(ctx, []store.Heartbeat{{DeviceID: "t-000001", At: at(2 * time.Hour)}})
	if err != nil || res[0].Err != nil || len(res[0].Directives) != 0 {
		t.Errorf("second beat: %+v, %v; want no directives", res, err)
	}
	if _, err := s.UpdateTerminal(ctx, "t-000001", func(tm *store.Terminal) error {
		tm.Directives = []string{"sign_in"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err = s.Heartbeats(ctx, []store.Heartbeat{{DeviceID: "t-000001", At: at(3 * time.Hour)}})
	if err != nil || res[0].Err != nil || !slices.Equal(res[0].Directives, []string{"sign_in"}) {
		t.Errorf("beat after a nudge: %+v, %v; want [sign_in]", res, err)
	}
}

func testHeartbeatsOutOfOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1))
	want := newTerminal(1) // LastSeen at(time.Minute)
	want.Directives = nil
	res, err := s.Heartbeats(ctx, []store.Heartbeat{{DeviceID: want.ID, At: at(0), Interval: time.Hour,
		Status: store.Status{State: "stale"}, Components: []store.Component{{Name: "x", Version: "1"}},
		LastResult: &store.Result{Release: "x", Outcome: "refused"}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Heartbeats: %+v, %v", res, err)
	}
	if !slices.Equal(res[0].Directives, []string{"check"}) {
		t.Errorf("an old beat took %q, want [check]", res[0].Directives)
	}
	same(t, "after a beat older than LastSeen", mustTerminal(t, s, want.ID), want)
	// A beat at LastSeen itself counts.
	res, err = s.Heartbeats(ctx, []store.Heartbeat{{DeviceID: want.ID, At: want.LastSeen, Status: store.Status{State: "same time"}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Heartbeats: %+v, %v", res, err)
	}
	want.Status = store.Status{State: "same time"}
	same(t, "after a beat at LastSeen", mustTerminal(t, s, want.ID), want)
}

func testHeartbeatsSameTerminal(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1))
	beats := []store.Heartbeat{
		{DeviceID: "t-000001", At: at(time.Hour), Status: store.Status{Seq: 1}, Components: []store.Component{{Name: "a", Version: "1"}}},
		{DeviceID: "t-000001", At: at(3 * time.Hour), Status: store.Status{Seq: 3}, Interval: 3 * time.Second},
		{DeviceID: "t-000001", At: at(2 * time.Hour), Status: store.Status{Seq: 2}, Components: []store.Component{{Name: "old", Version: "1"}}},
	}
	res, err := s.Heartbeats(ctx, beats)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("result %d: %v", i, r.Err)
		}
	}
	if !slices.Equal(res[0].Directives, []string{"check"}) || len(res[1].Directives)+len(res[2].Directives) != 0 {
		t.Errorf("directives went to %q %q %q, want the first only", res[0].Directives, res[1].Directives, res[2].Directives)
	}
	want := newTerminal(1)
	want.LastSeen, want.Status, want.Interval, want.Directives = beats[1].At, beats[1].Status, 3*time.Second, nil
	want.Components = beats[0].Components
	same(t, "after three beats applied in order", mustTerminal(t, s, want.ID), want)
}

func testHeartbeatsLargeBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 2000
	for i := range n {
		mustCreate(t, s, store.Terminal{ID: fmt.Sprintf("t-%06d", i), Serial: fmt.Sprintf("SN%06d", i), Directives: []string{fmt.Sprint(i)}})
	}
	beats := make([]store.Heartbeat, n)
	for i := range beats {
		beats[i] = store.Heartbeat{DeviceID: fmt.Sprintf("t-%06d", (i*7919)%n), At: at(time.Duration(i) * time.Second),
			Status: store.Status{Seq: uint64(i), State: "idle"}, Components: []store.Component{{Name: "app", Version: fmt.Sprint(i)}}}
	}
	res, err := s.Heartbeats(ctx, beats)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		id := (i * 7919) % n
		if r.Err != nil || !slices.Equal(r.Directives, []string{fmt.Sprint(id)}) {
			t.Fatalf("result %d: %+v, want directive %d", i, r, id)
		}
	}
	ts, err := s.ListTerminals(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != n {
		t.Fatalf("%d terminals, want %d", len(ts), n)
	}
	for i, b := range beats {
		tm := ts[(i*7919)%n]
		if !tm.LastSeen.Equal(b.At.Truncate(time.Microsecond)) || tm.Status.Seq != uint64(i) || tm.Components[0].Version != fmt.Sprint(i) || len(tm.Directives) != 0 {
			t.Fatalf("%s after beat %d: %+v", tm.ID, i, tm)
		}
	}
}

func testReports(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1), newTerminal(2))
	var reports []store.Report
	var seq int64
	for i := range 5 {
		r := store.Report{DeviceID: "t-000001", ID: fmt.Sprintf("r%d", i), Release: "pos-app@1.1.0", From: "1.0.0", To: "1.1.0",
			Phase: "verifying", Outcome: "rolled_back", Reason: "health_failed", Detail: "sign-in failed", At: at(time.Duration(i) * time.Minute),
			ReceivedAt: at(time.Duration(i)*time.Minute + time.Second)}
		got, err := s.AddReport(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq <= seq {
			t.Errorf("report %d: Seq %d after %d, want increasing", i, got.Seq, seq)
		}
		seq, r.Seq = got.Seq, got.Seq
		same(t, "AddReport returns", got, r)
		reports = append(reports, r)
	}
	// The same ID again is a duplicate: not recorded, update not called.
	dup := reports[2]
	dup.Detail = "again"
	_, err := s.AddReport(ctx, dup, func(*store.Terminal) error { t.Error("update called for a duplicate"); return nil })
	wantErr(t, "duplicate report", err, store.ErrExists)
	// Another terminal may use the same report ID; its update is applied.
	other := store.Report{DeviceID: "t-000002", ID: "r2", Release: "fw@6", Outcome: "committed", Reason: "ok", At: at(0)}
	got, err := s.AddReport(ctx, other, func(tm *store.Terminal) error {
		tm.LastResult = &store.Result{Release: "fw@6", Outcome: "committed", Reason: "ok", At: at(0)}
		tm.Components = append(tm.Components, store.Component{Name: "fw", Version: "6"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other.Seq = got.Seq
	want2 := newTerminal(2)
	want2.LastResult = &store.Result{Release: "fw@6", Outcome: "committed", Reason: "ok", At: at(0)}
	want2.Components = append(want2.Components, store.Component{Name: "fw", Version: "6"})
	same(t, "terminal after a report's update", mustTerminal(t, s, "t-000002"), want2)

	_, err = s.AddReport(ctx, store.Report{DeviceID: "nope", ID: "r"}, nil)
	wantErr(t, "report of an unknown terminal", err, store.ErrNotFound)
	_, err = s.AddReport(ctx, store.Report{DeviceID: "t-000001"}, nil)
	wantErr(t, "report without an ID", err, store.ErrInvalid)

	tests := []struct {
		device string
		limit  int
		want   []store.Report
	}{
		{"t-000001", 0, reports},
		{"t-000001", 2, reports[3:]},
		{"t-000001", 10, reports},
		{"t-000002", 0, []store.Report{other}},
		{"nope", 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ListReports(ctx, tt.device, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("ListReports(%s, %d)", tt.device, tt.limit), got, tt.want)
	}
}

func testReportsUpdateFails(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newTerminal(1))
	r := store.Report{DeviceID: "t-000001", ID: "r1", Outcome: "committed"}
	boom := errors.New("boom")
	_, err := s.AddReport(ctx, r, func(tm *store.Terminal) error { tm.Model = "lost"; return boom })
	wantErr(t, "update failing", err, boom)
	_, err = s.AddReport(ctx, r, func(tm *store.Terminal) error { tm.Serial = "changed"; return nil })
	wantErr(t, "update changing the serial", err, store.ErrInvalid)
	if got, err := s.ListReports(ctx, r.DeviceID, 0); err != nil || len(got) != 0 {
		t.Errorf("reports after failed updates: %v, %v; want none", got, err)
	}
	same(t, "terminal after failed updates", mustTerminal(t, s, r.DeviceID), newTerminal(1))
	// Not recorded, so not a duplicate: the terminal's retry is recorded.
	if _, err := s.AddReport(ctx, r, func(tm *store.Terminal) error { tm.Model = "kept"; return nil }); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if tm := mustTerminal(t, s, r.DeviceID); tm.Model != "kept" {
		t.Errorf("Model = %q after the retry, want kept", tm.Model)
	}
}

func testReleases(t *testing.T, s store.Store) {
	ctx := t.Context()
	if rs, err := s.ListReleases(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("empty store: %v, %v", rs, err)
	}
	policy := []byte(`{ "blocking" : true,  "deadline":"2025-04-01T00:00:00Z" }`) // kept byte for byte
	rel := func(id, channel string, i int) store.Release {
		return store.Release{ID: id, Channel: channel, Component: "pos-app", Version: "1." + fmt.Sprint(i), Digest: "sha256:" + strings.Repeat("ab", 32),
			Size: 1 << 30, Path: "/srv/releases/" + id, Bundle: []byte(`{"signed":"...","signatures":[]}`), Policy: policy, PublishedAt: at(time.Duration(i) * time.Hour)}
	}
	var seq int64
	put := func(r store.Release) store.Release {
		t.Helper()
		got, err := s.PutRelease(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq <= seq {
			t.Errorf("PutRelease(%s): Seq %d after %d, want increasing", r.ID, got.Seq, seq)
		}
		seq, r.Seq = got.Seq, got.Seq
		same(t, "PutRelease returns", got, r)
		return r
	}
	a := put(rel("pos-app@1.1", "stable", 1))
	b := put(rel("pos-app@1.1", "beta", 2))
	c := put(store.Release{ID: "fw@5", Channel: "stable"})
	got, err := s.Release(ctx, "pos-app@1.1", "beta")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Release", got, b)
	if string(got.Policy) != string(policy) {
		t.Errorf("Policy = %s, want it byte for byte: %s", got.Policy, policy)
	}
	// Publishing again replaces the release and moves it to the end.
	a2 := rel("pos-app@1.1", "stable", 3)
	a2.Path = "/srv/other"
	a2 = put(a2)
	list, err := s.ListReleases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "ListReleases", list, []store.Release{b, c, a2})
	_ = a

	if err := s.DeleteRelease(ctx, "pos-app@1.1", "beta"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Release(ctx, "pos-app@1.1", "beta")
	wantErr(t, "Release after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteRelease twice", s.DeleteRelease(ctx, "pos-app@1.1", "beta"), store.ErrNotFound)
	list, err = s.ListReleases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "ListReleases after delete", list, []store.Release{c, a2})

	for name, r := range map[string]store.Release{
		"bad policy":    {ID: "x", Channel: "stable", Policy: []byte("{")},
		"empty ID":      {Channel: "stable"},
		"empty channel": {ID: "x"},
	} {
		_, err := s.PutRelease(ctx, r)
		wantErr(t, name, err, store.ErrInvalid)
	}
}

func testRollouts(t *testing.T, s store.Store) {
	ctx := t.Context()
	def := []byte(`{"release": "pos-app@1.1",  "stages":[1, 10, 100]}`)
	r, err := s.CreateRollout(ctx, store.Rollout{ID: "r2", Definition: def, Version: 42, CreatedAt: at(0), UpdatedAt: at(0)})
	if err != nil {
		t.Fatal(err)
	}
	want := store.Rollout{ID: "r2", Definition: def, Version: 1, CreatedAt: at(0), UpdatedAt: at(0)}
	same(t, "CreateRollout returns", r, want)
	_, err = s.CreateRollout(ctx, store.Rollout{ID: "r2"})
	wantErr(t, "CreateRollout twice", err, store.ErrExists)
	if _, err := s.CreateRollout(ctx, store.Rollout{ID: "r1"}); err != nil {
		t.Fatal(err)
	}

	// Compare and swap.
	upd := r
	upd.Status = []byte(`{"stage": 1}`)
	upd.UpdatedAt = at(time.Hour)
	got, err := s.UpdateRollout(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	want.Status, want.Version, want.UpdatedAt = upd.Status, 2, upd.UpdatedAt
	same(t, "UpdateRollout returns", got, want)
	stale := r // still at version 1
	stale.Status = []byte(`{"stage": 9}`)
	_, err = s.UpdateRollout(ctx, stale)
	wantErr(t, "stale UpdateRollout", err, store.ErrConflict)
	var se *store.Error
	if !errors.As(err, &se) || se.Version != 2 {
		t.Errorf("conflict error %#v, want a *store.Error with the stored version 2", err)
	}
	r2, err := s.Rollout(ctx, "r2")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "Rollout after a conflict", r2, want)
	if string(r2.Definition) != string(def) {
		t.Errorf("Definition = %s, want it byte for byte: %s", r2.Definition, def)
	}
	_, err = s.UpdateRollout(ctx, store.Rollout{ID: "nope", Version: 1})
	wantErr(t, "UpdateRollout of an unknown rollout", err, store.ErrNotFound)
	_, err = s.Rollout(ctx, "nope")
	wantErr(t, "Rollout(nope)", err, store.ErrNotFound)
	_, err = s.UpdateRollout(ctx, store.Rollout{ID: "r2", Version: 2, Status: []byte("not json")})
	wantErr(t, "UpdateRollout with bad JSON", err, store.ErrInvalid)
	_, err = s.CreateRollout(ctx, store.Rollout{ID: "r3", Definition: []byte("{")})
	wantErr(t, "CreateRollout with bad JSON", err, store.ErrInvalid)

	list, err := s.ListRollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "r1" || list[1].ID != "r2" || list[1].Version != 2 {
		t.Errorf("ListRollouts = %+v, want r1, r2 at version 2", list)
	}
}

func mustRollout(t *testing.T, s store.Store, id string) {
	t.Helper()
	if _, err := s.CreateRollout(t.Context(), store.Rollout{ID: id}); err != nil {
		t.Fatal(err)
	}
}

func testRolloutDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustRollout(t, s, "r1")
	mustRollout(t, s, "r2")
	states := []store.RolloutDevice{
		{RolloutID: "r1", DeviceID: "t-3", Phase: store.PhasePending, UpdatedAt: at(0)},
		{RolloutID: "r1", DeviceID: "t-1", Phase: store.PhaseInProgress, Attempts: 1, UpdatedAt: at(0)},
		{RolloutID: "r1", DeviceID: "t-2", Phase: store.PhaseFailed, Reason: "health_failed", Attempts: 3, UpdatedAt: at(0)},
		{RolloutID: "r2", DeviceID: "t-1", Phase: store.PhaseSucceeded, UpdatedAt: at(0)},
		{RolloutID: "r1", DeviceID: "t-3", Phase: store.PhaseInProgress, UpdatedAt: at(time.Second)}, // wins over the first
	}
	if err := s.PutRolloutDevices(ctx, states); err != nil {
		t.Fatal(err)
	}
	got, err := s.RolloutDevice(ctx, "r1", "t-3")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "RolloutDevice(r1, t-3)", got, states[4])
	_, err = s.RolloutDevice(ctx, "r2", "t-3")
	wantErr(t, "RolloutDevice(r2, t-3)", err, store.ErrNotFound)

	tests := []struct {
		rollout string
		phase   store.Phase
		after   string
		limit   int
		want    []store.RolloutDevice
	}{
		{"r1", "", "", 0, []store.RolloutDevice{states[1], states[2], states[4]}},
		{"r1", store.PhaseInProgress, "", 0, []store.RolloutDevice{states[1], states[4]}},
		{"r1", store.PhaseInProgress, "t-1", 0, []store.RolloutDevice{states[4]}},
		{"r1", "", "", 2, []store.RolloutDevice{states[1], states[2]}},
		{"r1", store.PhaseOffline, "", 0, nil},
		{"r2", "", "", 0, []store.RolloutDevice{states[3]}},
		{"nope", "", "", 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ListRolloutDevices(ctx, tt.rollout, tt.phase, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("ListRolloutDevices(%s, %q, %q, %d)", tt.rollout, tt.phase, tt.after, tt.limit), got, tt.want)
	}

	// A batch naming an unknown rollout writes nothing.
	err = s.PutRolloutDevices(ctx, []store.RolloutDevice{
		{RolloutID: "r1", DeviceID: "t-9", Phase: store.PhasePending},
		{RolloutID: "nope", DeviceID: "t-1", Phase: store.PhasePending},
	})
	wantErr(t, "PutRolloutDevices with an unknown rollout", err, store.ErrNotFound)
	_, err = s.RolloutDevice(ctx, "r1", "t-9")
	wantErr(t, "state from a refused batch", err, store.ErrNotFound)
	err = s.PutRolloutDevices(ctx, []store.RolloutDevice{{RolloutID: "r1", DeviceID: "t-9"}})
	wantErr(t, "PutRolloutDevices without a phase", err, store.ErrInvalid)
	if err := s.PutRolloutDevices(ctx, nil); err != nil {
		t.Errorf("PutRolloutDevices(nil) = %v", err)
	}
}

func testRolloutCounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustRollout(t, s, "r1")
	mustRollout(t, s, "r2")
	var states []store.RolloutDevice
	for i := range 100 {
		d := store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%03d", i), Phase: store.PhasePending}
		switch {
		case i < 10:
			d.Phase, d.Reason = store.PhaseFailed, "health_failed"
		case i < 15:
			d.Phase, d.Reason = store.PhaseFailed, "download_failed"
		case i < 40:
			d.Phase = store.PhaseSucceeded
		case i < 45:
			d.Phase = store.PhaseOffline
		case i < 47:
			d.Phase = store.PhaseExpired
		case i < 60:
			d.Phase = store.PhaseInProgress
		}
		states = append(states, d)
	}
	states = append(states, store.RolloutDevice{RolloutID: "r2", DeviceID: "t-000", Phase: store.PhaseSucceeded})
	if err := s.PutRolloutDevices(ctx, states); err != nil {
		t.Fatal(err)
	}
	count := func(want []store.PhaseCount) {
		t.Helper()
		got, err := s.CountRolloutDevices(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		same(t, "CountRolloutDevices(r1)", got, want)
	}
	count([]store.PhaseCount{
		{Phase: store.PhaseExpired, Count: 2},
		{Phase: store.PhaseFailed, Reason: "download_failed", Count: 5},
		{Phase: store.PhaseFailed, Reason: "health_failed", Count: 10},
		{Phase: store.PhaseInProgress, Count: 13},
		{Phase: store.PhaseOffline, Count: 5},
		{Phase: store.PhasePending, Count: 40},
		{Phase: store.PhaseSucceeded, Count: 25},
	})
	// Moving devices moves the counts; an emptied group disappears.
	var moves []store.RolloutDevice
	for i := range 5 {
		moves = append(moves, store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%03d", 10+i), Phase: store.PhaseSucceeded})
	}
	moves = append(moves, store.RolloutDevice{RolloutID: "r1", DeviceID: "t-099", Phase: store.PhaseFailed, Reason: "health_failed"})
	if err := s.PutRolloutDevices(ctx, moves); err != nil {
		t.Fatal(err)
	}
	count([]store.PhaseCount{
		{Phase: store.PhaseExpired, Count: 2},
		{Phase: store.PhaseFailed, Reason: "health_failed", Count: 11},
		{Phase: store.PhaseInProgress, Count: 13},
		{Phase: store.PhaseOffline, Count: 5},
		{Phase: store.PhasePending, Count: 39},
		{Phase: store.PhaseSucceeded, Count: 30},
	})
	if got, err := s.CountRolloutDevices(ctx, "nope"); err != nil || len(got) != 0 {
		t.Errorf("CountRolloutDevices(nope) = %v, %v; want none", got, err)
	}
}

func testChangeRolloutDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustRollout(t, s, "r1")
	mustRollout(t, s, "r2")
	dev := func(rollout, id string, p store.Phase, reason string) store.RolloutDevice {
		return store.RolloutDevice{RolloutID: rollout, DeviceID: id, Phase: p, Reason: reason, UpdatedAt: at(time.Minute)}
	}
	change := func(d store.RolloutDevice, ifPhase store.Phase, ifReason string) store.DeviceChange {
		return store.DeviceChange{State: d, IfPhase: ifPhase, IfReason: ifReason}
	}
	if err := s.PutRolloutDevices(ctx, []store.RolloutDevice{
		dev("r1", "t-1", store.PhasePending, "1"),
		dev("r1", "t-2", store.PhaseInProgress, "1"),
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		changes []store.DeviceChange
		applied []bool
	}{
		{"a first write needs no state", []store.DeviceChange{change(dev("r1", "t-3", store.PhasePending, "2"), "", "")}, []bool{true}},
		{"a first write of a known device", []store.DeviceChange{change(dev("r1", "t-1", store.PhasePending, "2"), "", "")}, []bool{false}},
		{"as read", []store.DeviceChange{change(dev("r1", "t-2", store.PhaseFailed, "1:boot"), store.PhaseInProgress, "1")}, []bool{true}},
		{"a stale phase", []store.DeviceChange{change(dev("r1", "t-2", store.PhaseInProgress, "1:x"), store.PhaseInProgress, "1")}, []bool{false}},
		{"a stale reason", []store.DeviceChange{change(dev("r1", "t-1", store.PhaseInProgress, "1"), store.PhasePending, "2")}, []bool{false}},
		{"in turn, and per device", []store.DeviceChange{
			change(dev("r1", "t-1", store.PhaseInProgress, "1"), store.PhasePending, "1"),
			change(dev("r1", "t-1", store.PhaseSucceeded, "1"), store.PhaseInProgress, "1"),
			change(dev("r1", "t-1", store.PhaseFailed, "1"), store.PhaseInProgress, "1"), // read before the one above
			change(dev("r2", "t-1", store.PhasePending, "0"), "", ""),
		}, []bool{true, true, false, true}},
	}
	for _, tt := range tests {
		applied, err := s.ChangeRolloutDevices(ctx, tt.changes)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		same(t, tt.name+": applied", applied, tt.applied)
	}
	list, err := s.ListRolloutDevices(ctx, "r1", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "r1 after the changes", list, []store.RolloutDevice{
		dev("r1", "t-1", store.PhaseSucceeded, "1"),
		dev("r1", "t-2", store.PhaseFailed, "1:boot"),
		dev("r1", "t-3", store.PhasePending, "2"),
	})
	counts, err := s.CountRolloutDevices(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "r1 counts after the changes", counts, []store.PhaseCount{
		{Phase: store.PhaseFailed, Reason: "1:boot", Count: 1},
		{Phase: store.PhasePending, Reason: "2", Count: 1},
		{Phase: store.PhaseSucceeded, Reason: "1", Count: 1},
	})

	// A batch naming an unknown rollout writes nothing.
	_, err = s.ChangeRolloutDevices(ctx, []store.DeviceChange{
		change(dev("r1", "t-9", store.PhasePending, ""), "", ""),
		change(dev("nope", "t-1", store.PhasePending, ""), "", ""),
	})
	wantErr(t, "ChangeRolloutDevices with an unknown rollout", err, store.ErrNotFound)
	_, err = s.RolloutDevice(ctx, "r1", "t-9")
	wantErr(t, "state from a refused batch", err, store.ErrNotFound)
	_, err = s.ChangeRolloutDevices(ctx, []store.DeviceChange{change(dev("r1", "t-9", "", ""), "", "")})
	wantErr(t, "ChangeRolloutDevices without a phase", err, store.ErrInvalid)
	if applied, err := s.ChangeRolloutDevices(ctx, nil); err != nil || len(applied) != 0 {
		t.Errorf("ChangeRolloutDevices(nil) = %v, %v", applied, err)
	}
}

func testClaimRolloutDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustRollout(t, s, "r1")
	const offered, installing = store.Phase("offered"), store.Phase("installing")
	inFlight := []store.Phase{offered, installing}
	var states []store.RolloutDevice
	for i, p := range []store.Phase{offered, installing, store.PhaseSucceeded, store.PhasePending, store.PhasePending, store.PhasePending} {
		states = append(states, store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%d", i), Phase: p, Reason: "1"})
	}
	if err := s.PutRolloutDevices(ctx, states); err != nil {
		t.Fatal(err)
	}
	claim := func(id string, ifPhase store.Phase, max int) store.Claim {
		return store.Claim{DeviceChange: store.DeviceChange{
			State:   store.RolloutDevice{RolloutID: "r1", DeviceID: id, Phase: offered, Reason: "1", UpdatedAt: at(0)},
			IfPhase: ifPhase, IfReason: "1"}, InFlight: inFlight, MaxInFlight: max}
	}
	tests := []struct {
		name  string
		claim store.Claim
		want  error
	}{
		{"two in flight, cap 2", claim("t-3", store.PhasePending, 2), store.ErrLimit},
		{"two in flight, cap 3", claim("t-3", store.PhasePending, 3), nil},
		{"three in flight, cap 3", claim("t-4", store.PhasePending, 3), store.ErrLimit},
		{"no cap", claim("t-4", store.PhasePending, 0), nil},
		{"stale state", claim("t-3", store.PhasePending, 0), store.ErrConflict},
		{"a first write of a known device", claim("t-5", "", 0), store.ErrConflict},
		{"a first write", claim("t-6", "", 5), nil},
	}
	for _, tt := range tests {
		err := s.ClaimRolloutDevice(ctx, tt.claim)
		wantErr(t, tt.name, err, tt.want)
		if tt.want != nil {
			var se *store.Error
			if !errors.As(err, &se) {
				t.Errorf("%s: %#v, want a *store.Error", tt.name, err)
			}
		}
	}
	counts, err := s.CountRolloutDevices(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "counts after the claims", counts, []store.PhaseCount{
		{Phase: installing, Reason: "1", Count: 1},
		{Phase: offered, Reason: "1", Count: 4},
		{Phase: store.PhasePending, Reason: "1", Count: 1},
		{Phase: store.PhaseSucceeded, Reason: "1", Count: 1},
	})
	c := claim("t-5", store.PhasePending, 0)
	c.State.RolloutID = "nope"
	wantErr(t, "a claim in an unknown rollout", s.ClaimRolloutDevice(ctx, c), store.ErrNotFound)
	c = claim("t-5", store.PhasePending, 0)
	c.MaxStarts = 1
	wantErr(t, "a start cap without a window", s.ClaimRolloutDevice(ctx, c), store.ErrInvalid)
}

func testClaimStarts(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, err := s.CreateRollout(ctx, store.Rollout{ID: "r1", Starts: 9, StartsWindow: at(0)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Starts != 0 || !r.StartsWindow.IsZero() {
		t.Errorf("CreateRollout kept the caller's starts: %+v", r)
	}
	minute := func(m int) time.Time { return base.Truncate(time.Minute).Add(time.Duration(m) * time.Minute) }
	claim := func(i int, window time.Time) error {
		return s.ClaimRolloutDevice(ctx, store.Claim{DeviceChange: store.DeviceChange{
			State: store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%02d", i), Phase: "offered"}},
			Window: window, MaxStarts: 2})
	}
	tests := []struct {
		window     time.Time
		want       error
		wantWindow time.Time
		wantStarts int
	}{
		{minute(1), nil, minute(1), 1},
		{minute(1), nil, minute(1), 2},
		{minute(1), store.ErrLimit, minute(1), 2},
		{minute(0), store.ErrLimit, minute(1), 2}, // a lagging clock counts in the later window
		{minute(2), nil, minute(2), 1},
		{minute(1), nil, minute(2), 2},
		{minute(2), store.ErrLimit, minute(2), 2},
	}
	for i, tt := range tests {
		wantErr(t, fmt.Sprintf("claim %d in minute %s", i, tt.window.Format("15:04")), claim(i, tt.window), tt.want)
		r, err := s.Rollout(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if !r.StartsWindow.Equal(tt.wantWindow) || r.Starts != tt.wantStarts || r.Version != 1 {
			t.Errorf("after claim %d: window %s, %d starts, version %d; want %s, %d, 1", i, r.StartsWindow, r.Starts, r.Version,
				tt.wantWindow, tt.wantStarts)
		}
	}
	// The status's compare and swap leaves the starts alone.
	r, err = s.Rollout(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	upd := r
	upd.Status, upd.Starts, upd.StartsWindow = []byte(`{}`), 0, time.Time{}
	got, err := s.UpdateRollout(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if got.Starts != 2 || !got.StartsWindow.Equal(minute(2)) {
		t.Errorf("UpdateRollout changed the starts: %+v", got)
	}
	if got, _ := s.Rollout(ctx, "r1"); got.Starts != 2 || !got.StartsWindow.Equal(minute(2)) {
		t.Errorf("after UpdateRollout: %+v", got)
	}
}

// Claims of many writers at once: the caps are exact, and of writers that
// read one state, one changes it.
func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustRollout(t, s, "r1")
	const n = 24
	var states []store.RolloutDevice
	for i := range n {
		states = append(states, store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%02d", i), Phase: store.PhasePending})
	}
	states = append(states, store.RolloutDevice{RolloutID: "r1", DeviceID: "t-race", Phase: store.PhasePending})
	if err := s.PutRolloutDevices(ctx, states); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	results := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := s.ClaimRolloutDevice(ctx, store.Claim{DeviceChange: store.DeviceChange{
				State:   store.RolloutDevice{RolloutID: "r1", DeviceID: fmt.Sprintf("t-%02d", i), Phase: store.PhaseInProgress},
				IfPhase: store.PhasePending}, InFlight: []store.Phase{store.PhaseInProgress}, MaxInFlight: 5,
				Window: base, MaxStarts: 7})
			key := "ok"
			switch {
			case errors.Is(err, store.ErrLimit):
				key = "limit"
			case err != nil:
				key = err.Error()
			}
			mu.Lock()
			results[key]++
			mu.Unlock()
		})
	}
	// Writers that all read t-race pending: one wins.
	for i := range 8 {
		wg.Go(func() {
			applied, err := s.ChangeRolloutDevices(ctx, []store.DeviceChange{{
				State:   store.RolloutDevice{RolloutID: "r1", DeviceID: "t-race", Phase: store.PhaseFailed, Reason: fmt.Sprint(i)},
				IfPhase: store.PhasePending}})
			key := "change " + fmt.Sprint(applied)
			if err != nil {
				key = err.Error()
			}
			mu.Lock()
			results[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	want := map[string]int{"ok": 5, "limit": n - 5, "change [true]": 1, "change [false]": 7}
	if !reflect.DeepEqual(results, want) {
		t.Errorf("results %v, want %v: 5 claims under the cap, one change of those that read one state", results, want)
	}
	counts, err := s.CountRolloutDevices(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var inFlight int64
	for _, c := range counts {
		if c.Phase == store.PhaseInProgress {
			inFlight += c.Count
		}
	}
	if inFlight != 5 {
		t.Errorf("%d devices in flight, cap 5: %v", inFlight, counts)
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	if evs, err := s.ListAudit(ctx, 0, 0); err != nil || len(evs) != 0 {
		t.Fatalf("empty store: %v, %v", evs, err)
	}
	var want []store.AuditEvent
	var seq int64
	for i := range 6 {
		e := store.AuditEvent{At: at(time.Duration(i) * time.Second), Actor: "alice", Role: "operator", Action: "release.publish",
			Target: fmt.Sprintf("pos-app@1.%d", i), Result: "ok", Detail: "channel stable"}
		got, err := s.AppendAudit(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq <= seq {
			t.Errorf("event %d: Seq %d after %d, want increasing", i, got.Seq, seq)
		}
		seq, e.Seq = got.Seq, got.Seq
		same(t, "AppendAudit returns", got, e)
		want = append(want, e)
	}
	tests := []struct {
		after int64
		limit int
		want  []store.AuditEvent
	}{
		{0, 0, want},
		{-5, 0, want},
		{0, 2, want[:2]},
		{want[1].Seq, 3, want[2:5]},
		{want[5].Seq, 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ListAudit(ctx, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("ListAudit(%d, %d)", tt.after, tt.limit), got, tt.want)
	}
	for name, e := range map[string]store.AuditEvent{
		"no action": {At: at(0), Actor: "alice"},
		"no time":   {Actor: "alice", Action: "x"},
		"NUL":       {At: at(0), Actor: "alice", Action: "x", Detail: "\x00"},
	} {
		_, err := s.AppendAudit(ctx, e)
		wantErr(t, name, err, store.ErrInvalid)
	}
	// Append-only: the store offers no way to change or remove an event.
	typ := reflect.TypeOf(s)
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if strings.Contains(name, "Audit") && name != "AppendAudit" && name != "ListAudit" {
			t.Errorf("the store has a method %s: the audit log is append-only", name)
		}
	}
}

func testCanceled(t *testing.T, s store.Store) {
	mustCreate(t, s, newTerminal(1))
	mustRollout(t, s, "r1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Terminal(ctx, "t-000001")
	wantErr(t, "Terminal", err, context.Canceled)
	_, err = s.UpdateTerminal(ctx, "t-000001", func(tm *store.Terminal) error { tm.Model = "lost"; return nil })
	wantErr(t, "UpdateTerminal", err, context.Canceled)
	_, err = s.Heartbeats(ctx, []store.Heartbeat{{DeviceID: "t-000001", At: at(time.Hour)}})
	wantErr(t, "Heartbeats", err, context.Canceled)
	_, err = s.AppendAudit(ctx, store.AuditEvent{At: at(0), Action: "x"})
	wantErr(t, "AppendAudit", err, context.Canceled)
	_, err = s.UpdateRollout(ctx, store.Rollout{ID: "r1", Version: 1})
	wantErr(t, "UpdateRollout", err, context.Canceled)
	same(t, "terminal after canceled writes", mustTerminal(t, s, "t-000001"), newTerminal(1))
	if evs, _ := s.ListAudit(t.Context(), 0, 0); len(evs) != 0 {
		t.Errorf("a canceled AppendAudit wrote %v", evs)
	}
}

// testConcurrentHeartbeatsAndRollouts writes heartbeats from many
// goroutines while others compare-and-swap one rollout: every successful
// swap must count exactly once.
func testConcurrentHeartbeatsAndRollouts(t *testing.T, s store.Store) {
	ctx := t.Context()
	const terminals, beaters, beats, swappers, swaps = 50, 4, 20, 4, 15
	for i := range terminals {
		mustCreate(t, s, store.Terminal{ID: fmt.Sprintf("t-%03d", i), Serial: fmt.Sprint(i)})
	}
	mustRollout(t, s, "r1")
	var wg sync.WaitGroup
	errs := make(chan error, beaters+swappers)
	for g := range beaters {
		wg.Go(func() {
			for b := range beats {
				batch := make([]store.Heartbeat, 0, 10)
				for k := range 10 {
					batch = append(batch, store.Heartbeat{DeviceID: fmt.Sprintf("t-%03d", (g*beats*10+b*10+k)%terminals),
						At: at(time.Duration(b) * time.Second), Status: store.Status{Seq: uint64(b), State: fmt.Sprint("g", g)}})
				}
				res, err := s.Heartbeats(ctx, batch)
				if err == nil {
					for _, r := range res {
						err = cmpErr(err, r.Err)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("heartbeats: %w", err)
					return
				}
			}
		})
	}
	var conflicts sync.Map
	for g := range swappers {
		wg.Go(func() {
			for range swaps {
				for try := 0; ; try++ {
					r, err := s.Rollout(ctx, "r1")
					if err != nil {
						errs <- err
						return
					}
					var n int
					fmt.Sscanf(string(r.Status), "%d", &n)
					r.Status = []byte(fmt.Sprint(n + 1))
					if _, err = s.UpdateRollout(ctx, r); err == nil {
						break
					}
					if !errors.Is(err, store.ErrConflict) || try > 1000 {
						errs <- fmt.Errorf("swapper %d: %w", g, err)
						return
					}
					conflicts.Store(g, true)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r, err := s.Rollout(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(swappers * swaps); string(r.Status) != want || r.Version != swappers*swaps+1 {
		t.Errorf("rollout status %s at version %d, want %s at %d: a swap was lost", r.Status, r.Version, want, swappers*swaps+1)
	}
	ts, err := s.ListTerminals(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range ts {
		if tm.LastSeen.IsZero() || !strings.HasPrefix(tm.Status.State, "g") {
			t.Errorf("%s was never beaten: %+v", tm.ID, tm)
		}
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func testConcurrentCreates(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateTerminal(ctx, store.Terminal{ID: fmt.Sprint("t-", i), Serial: "same"})
		})
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrExists):
			t.Errorf("CreateTerminal: %v, want nil or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates of one serial succeeded, want 1", ok)
	}
	if ts, _ := s.ListTerminals(ctx, "", 0); len(ts) != 1 {
		t.Errorf("%d terminals, want 1", len(ts))
	}
}

func testConcurrentReports(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, store.Terminal{ID: "t-1", Serial: "1"})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.AddReport(ctx, store.Report{DeviceID: "t-1", ID: "same", Outcome: "committed"}, func(tm *store.Terminal) error {
				tm.Directives = append(tm.Directives, fmt.Sprint(i))
				return nil
			})
		})
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrExists):
			t.Errorf("AddReport: %v, want nil or ErrExists", err)
		}
	}
	if tm := mustTerminal(t, s, "t-1"); ok != 1 || len(tm.Directives) != 1 {
		t.Errorf("%d of %d copies of one report recorded, %d updates applied; want 1 and 1", ok, n, len(tm.Directives))
	}
	if rs, _ := s.ListReports(ctx, "t-1", 0); len(rs) != 1 {
		t.Errorf("%d reports, want 1", len(rs))
	}
}

func testConcurrentAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.AppendAudit(ctx, store.AuditEvent{At: at(0), Actor: fmt.Sprint(g), Action: "x", Target: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
	// A reader paging by Seq while the writers append must see every event
	// once, in order: none committed behind its cursor.
	var seen []store.AuditEvent
	var after int64
	for done := false; !done; {
		select {
		case <-writing:
			done = true // one more read after the last append
		default:
		}
		evs, err := s.ListAudit(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			seen = append(seen, evs...)
			after = evs[len(evs)-1].Seq
			done = false
		}
	}
	all, err := s.ListAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Fatalf("%d events, want %d", len(all), writers*each)
	}
	same(t, "events a pager saw", seen, all)
	last := map[string]int{}
	for i, e := range all {
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Fatalf("event %d: Seq %d after %d", i, e.Seq, all[i-1].Seq)
		}
		// Each writer's events are in the order it appended them.
		var n int
		fmt.Sscan(e.Target, &n)
		if p, ok := last[e.Actor]; ok && n != p+1 {
			t.Errorf("writer %s: event %d after %d", e.Actor, n, p)
		}
		last[e.Actor] = n
	}
}

func testBatcher(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	const n = 40
	for i := range n {
		mustCreate(t, s, store.Terminal{ID: fmt.Sprintf("t-%03d", i), Serial: fmt.Sprint(i), Directives: []string{"check"}})
	}
	b, err := store.NewBatcher(store.BatcherConfig{Writer: s, MaxBatch: 8, MaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dirs, err := b.Add(ctx, store.Heartbeat{DeviceID: fmt.Sprintf("t-%03d", i), At: at(time.Hour), Status: store.Status{State: "idle"}})
			if err != nil || !slices.Equal(dirs, []string{"check"}) {
				t.Errorf("Add(t-%03d) = %q, %v; want [check]", i, dirs, err)
			}
		})
	}
	wg.Go(func() {
		_, err := b.Add(ctx, store.Heartbeat{DeviceID: "nope", At: at(time.Hour)})
		wantErr(t, "Add(nope)", err, store.ErrNotFound)
	})
	wg.Wait()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	for i := range n {
		if tm := mustTerminal(t, s, fmt.Sprintf("t-%03d", i)); tm.Status.State != "idle" || len(tm.Directives) != 0 {
			t.Errorf("%s after its beat: %+v", tm.ID, tm)
		}
	}
}
