// Package record holds what every store implementation does the same way
// to the records of package store: checking keys, copying records in and
// out, and bringing times and empty slices to one form, so that a record
// reads back the same from every implementation.
package record

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upkeephq/upkeep/update/server/store"
)

// MaxKey bounds a key's length in bytes.
const MaxKey = 512

// Time is t in UTC to the microsecond, without a monotonic reading.
func Time(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Key returns an ErrInvalid error naming a record of kind by errKey if
// value, the record's what ("device ID", "serial"...), is not a valid key.
func Key(kind, errKey, value, what string) error {
	if len(errKey) > 64 {
		errKey = errKey[:61] + "..."
	}
	switch {
	case value == "":
		return store.Errorf(kind, errKey, store.ErrInvalid, "%s is empty", what)
	case len(value) > MaxKey:
		return store.Errorf(kind, errKey, store.ErrInvalid, "%s is longer than %d bytes", what, MaxKey)
	case !utf8.ValidString(value) || strings.ContainsRune(value, 0):
		return store.Errorf(kind, errKey, store.ErrInvalid, "%s is not UTF-8 without NUL", what)
	}
	return nil
}

// JSON returns an ErrInvalid error of kind if b is neither empty nor valid
// JSON.
func JSON(kind, key, what string, b []byte) error {
	if len(b) > 0 && !json.Valid(b) {
		return store.Errorf(kind, key, store.ErrInvalid, "%s is not valid JSON", what)
	}
	return nil
}

// Text returns an ErrInvalid error of kind if s is not UTF-8 without NUL
// bytes (PostgreSQL's text refuses them).
func Text(kind, key string, ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return store.Errorf(kind, key, store.ErrInvalid, "text is not UTF-8 without NUL")
		}
	}
	return nil
}

func bytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

func strs(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func components(c []store.Component) []store.Component {
	if len(c) == 0 {
		return nil
	}
	return slices.Clone(c)
}

func result(r *store.Result) *store.Result {
	if r == nil {
		return nil
	}
	c := *r
	c.At = Time(c.At)
	return &c
}

// Status returns a deep copy of s.
func Status(s store.Status) store.Status {
	if s.Battery != nil {
		b := *s.Battery
		s.Battery = &b
	}
	return s
}

// Terminal returns a normalized deep copy of t.
func Terminal(t store.Terminal) store.Terminal {
	t.TokenHash = bytes(t.TokenHash)
	t.Tags = strs(t.Tags)
	t.Components = components(t.Components)
	t.RegisteredAt = Time(t.RegisteredAt)
	t.LastSeen = Time(t.LastSeen)
	t.Status = Status(t.Status)
	t.LastResult = result(t.LastResult)
	t.Directives = strs(t.Directives)
	return t
}

// CheckTerminal validates t.
func CheckTerminal(t *store.Terminal) error {
	if err := Key(store.KindTerminal, t.ID, t.ID, "device ID"); err != nil {
		return err
	}
	if err := Key(store.KindTerminal, t.ID, t.Serial, "serial"); err != nil {
		return err
	}
	if err := Text(store.KindTerminal, t.ID, t.Model, t.HardwareRevision, t.Group, t.Channel,
		t.Status.State, t.Status.Release, t.Status.Waiting, t.Status.Network); err != nil {
		return err
	}
	if err := Text(store.KindTerminal, t.ID, t.Tags...); err != nil {
		return err
	}
	for _, c := range t.Components {
		if err := Text(store.KindTerminal, t.ID, c.Name, c.Version, c.Floor); err != nil {
			return err
		}
	}
	if r := t.LastResult; r != nil {
		if err := Text(store.KindTerminal, t.ID, r.Release, r.Outcome, r.Reason); err != nil {
			return err
		}
	}
	return Text(store.KindTerminal, t.ID, t.Directives...)
}

// ApplyTerminal runs fn on a copy of old, the stored terminal deviceID,
// and returns the result checked and normalised, as every store's
// UpdateTerminal must: fn may not change the device ID or serial.
func ApplyTerminal(deviceID string, old store.Terminal, fn func(*store.Terminal) error) (store.Terminal, error) {
	t := Terminal(old)
	if err := fn(&t); err != nil {
		return store.Terminal{}, err
	}
	if t.ID != old.ID || t.Serial != old.Serial {
		return store.Terminal{}, store.Errorf(store.KindTerminal, deviceID, store.ErrInvalid, "an update cannot change the device ID or serial")
	}
	if err := CheckTerminal(&t); err != nil {
		return store.Terminal{}, err
	}
	return Terminal(t), nil
}

// Heartbeat returns a normalized deep copy of h.
func Heartbeat(h store.Heartbeat) store.Heartbeat {
	h.At = Time(h.At)
	h.Status = Status(h.Status)
	h.Components = components(h.Components)
	h.LastResult = result(h.LastResult)
	return h
}

// CheckHeartbeat validates h.
func CheckHeartbeat(h *store.Heartbeat) error {
	if err := Key(store.KindHeartbeat, h.DeviceID, h.DeviceID, "device ID"); err != nil {
		return err
	}
	if h.At.IsZero() {
		return store.Errorf(store.KindHeartbeat, h.DeviceID, store.ErrInvalid, "time is zero")
	}
	if err := Text(store.KindHeartbeat, h.DeviceID, h.Status.State, h.Status.Release, h.Status.Waiting, h.Status.Network); err != nil {
		return err
	}
	for _, c := range h.Components {
		if err := Text(store.KindHeartbeat, h.DeviceID, c.Name, c.Version, c.Floor); err != nil {
			return err
		}
	}
	if r := h.LastResult; r != nil {
		return Text(store.KindHeartbeat, h.DeviceID, r.Release, r.Outcome, r.Reason)
	}
	return nil
}

// ApplyHeartbeat applies h to t, as [store.HeartbeatWriter] describes, and
// takes t's directives.
func ApplyHeartbeat(t *store.Terminal, h store.Heartbeat) []string {
	d := t.Directives
	t.Directives = nil
	if !t.LastSeen.IsZero() && h.At.Before(t.LastSeen) {
		return d
	}
	t.LastSeen = h.At
	if h.Interval > 0 {
		t.Interval = h.Interval
	}
	t.Status = Status(h.Status)
	if len(h.Components) > 0 {
		t.Components = components(h.Components)
	}
	if h.LastResult != nil {
		t.LastResult = result(h.LastResult)
	}
	return d
}

// Report returns a normalized copy of r.
func Report(r store.Report) store.Report {
	r.At = Time(r.At)
	r.ReceivedAt = Time(r.ReceivedAt)
	return r
}

// CheckReport validates r.
func CheckReport(r *store.Report) error {
	key := r.DeviceID + "/" + r.ID
	if err := Key(store.KindReport, key, r.DeviceID, "device ID"); err != nil {
		return err
	}
	if err := Key(store.KindReport, key, r.ID, "report ID"); err != nil {
		return err
	}
	return Text(store.KindReport, key, r.Release, r.From, r.To, r.Phase, r.Outcome, r.Reason, r.Detail)
}

// Release returns a normalized deep copy of r.
func Release(r store.Release) store.Release {
	r.Bundle = bytes(r.Bundle)
	r.Policy = bytes(r.Policy)
	r.PublishedAt = Time(r.PublishedAt)
	return r
}

// ReleaseKey names a release in errors.
func ReleaseKey(id, channel string) string { return id + "@" + channel }

// CheckRelease validates r.
func CheckRelease(r *store.Release) error {
	key := ReleaseKey(r.ID, r.Channel)
	if err := Key(store.KindRelease, key, r.ID, "release ID"); err != nil {
		return err
	}
	if err := Key(store.KindRelease, key, r.Channel, "channel"); err != nil {
		return err
	}
	if err := Text(store.KindRelease, key, r.Component, r.Version, r.Digest, r.Path); err != nil {
		return err
	}
	return JSON(store.KindRelease, key, "policy", r.Policy)
}

// Rollout returns a normalized deep copy of r.
func Rollout(r store.Rollout) store.Rollout {
	r.Definition = bytes(r.Definition)
	r.Status = bytes(r.Status)
	r.CreatedAt = Time(r.CreatedAt)
	r.UpdatedAt = Time(r.UpdatedAt)
	r.StartsWindow = Time(r.StartsWindow)
	return r
}

// CheckRollout validates r.
func CheckRollout(r *store.Rollout) error {
	if err := Key(store.KindRollout, r.ID, r.ID, "rollout ID"); err != nil {
		return err
	}
	if err := JSON(store.KindRollout, r.ID, "definition", r.Definition); err != nil {
		return err
	}
	return JSON(store.KindRollout, r.ID, "status", r.Status)
}

// RolloutDeviceKey names a device's rollout state in errors.
func RolloutDeviceKey(rolloutID, deviceID string) string { return rolloutID + "/" + deviceID }

// RolloutDevice returns a normalized copy of d.
func RolloutDevice(d store.RolloutDevice) store.RolloutDevice {
	d.UpdatedAt = Time(d.UpdatedAt)
	return d
}

// CheckRolloutDevice validates d.
func CheckRolloutDevice(d *store.RolloutDevice) error {
	key := RolloutDeviceKey(d.RolloutID, d.DeviceID)
	if err := Key(store.KindRolloutDevice, key, d.RolloutID, "rollout ID"); err != nil {
		return err
	}
	if err := Key(store.KindRolloutDevice, key, d.DeviceID, "device ID"); err != nil {
		return err
	}
	if err := Key(store.KindRolloutDevice, key, string(d.Phase), "phase"); err != nil {
		return err
	}
	return Text(store.KindRolloutDevice, key, d.Reason)
}

// CheckDeviceChange validates c.
func CheckDeviceChange(c *store.DeviceChange) error {
	if err := CheckRolloutDevice(&c.State); err != nil {
		return err
	}
	return Text(store.KindRolloutDevice, RolloutDeviceKey(c.State.RolloutID, c.State.DeviceID), string(c.IfPhase), c.IfReason)
}

// CheckClaim validates c.
func CheckClaim(c *store.Claim) error {
	if err := CheckDeviceChange(&c.DeviceChange); err != nil {
		return err
	}
	key := RolloutDeviceKey(c.State.RolloutID, c.State.DeviceID)
	switch {
	case c.MaxInFlight < 0 || c.MaxStarts < 0:
		return store.Errorf(store.KindRolloutDevice, key, store.ErrInvalid, "negative cap")
	case c.MaxStarts > 0 && c.Window.IsZero():
		return store.Errorf(store.KindRolloutDevice, key, store.ErrInvalid, "a start cap without a window")
	}
	for _, p := range c.InFlight {
		if err := Key(store.KindRolloutDevice, key, string(p), "phase"); err != nil {
			return err
		}
	}
	return nil
}

// Holds reports whether c's condition holds for the device's stored state
// old (ok false when it has none).
func Holds(c store.DeviceChange, old store.RolloutDevice, ok bool) bool {
	if c.IfPhase == "" {
		return !ok
	}
	return ok && old.Phase == c.IfPhase && old.Reason == c.IfReason
}

// Conflict is the error of a change whose condition does not hold.
func Conflict(c store.DeviceChange) error {
	return store.Errorf(store.KindRolloutDevice, RolloutDeviceKey(c.State.RolloutID, c.State.DeviceID), store.ErrConflict,
		"the device's state is no longer %s %q", cmp.Or(string(c.IfPhase), "absent"), c.IfReason)
}

// Starts returns the window a claim in window counts in, given the
// rollout's stored window and count, and the claims counted in it so far.
func Starts(stored time.Time, n int, window time.Time) (time.Time, int) {
	window = Time(window)
	if window.After(stored) {
		return window, 0
	}
	return stored, n
}

// InFlightLimit is the error of a claim refused because n devices are in
// flight, at or above max.
func InFlightLimit(rolloutID string, n, max int64) error {
	return store.Errorf(store.KindRollout, rolloutID, store.ErrLimit, "%d devices in flight, cap %d", n, max)
}

// StartsLimit is the error of a claim refused because n claims were
// written in the window from w, at or above max.
func StartsLimit(rolloutID string, w time.Time, n, max int) error {
	return store.Errorf(store.KindRollout, rolloutID, store.ErrLimit, "%d starts since %s, cap %d", n,
		w.Format(time.RFC3339), max)
}

// LastRolloutDevices returns states with only the last entry for each
// (rollout, device), in the order of those last entries.
func LastRolloutDevices(states []store.RolloutDevice) []store.RolloutDevice {
	type key struct{ r, d string }
	last := make(map[key]int, len(states))
	for i, s := range states {
		last[key{s.RolloutID, s.DeviceID}] = i
	}
	out := make([]store.RolloutDevice, 0, len(last))
	for i, s := range states {
		if last[key{s.RolloutID, s.DeviceID}] == i {
			out = append(out, s)
		}
	}
	return out
}

// AuditEvent returns a normalized copy of e.
func AuditEvent(e store.AuditEvent) store.AuditEvent {
	e.At = Time(e.At)
	return e
}

// CheckAuditEvent validates e.
func CheckAuditEvent(e *store.AuditEvent) error {
	if e.Action == "" {
		return store.Errorf(store.KindAuditEvent, e.Actor, store.ErrInvalid, "action is empty")
	}
	if e.At.IsZero() {
		return store.Errorf(store.KindAuditEvent, e.Action, store.ErrInvalid, "time is zero")
	}
	return Text(store.KindAuditEvent, e.Action, e.Actor, e.Role, e.Action, e.Target, e.Result, e.Detail)
}

// Page applies after and limit to items sorted by key.
func Page[T any](items []T, key func(T) string, after string, limit int) []T {
	i, _ := slices.BinarySearchFunc(items, after, func(t T, a string) int { return strings.Compare(key(t), a) })
	for i < len(items) && key(items[i]) <= after {
		i++
	}
	items = items[i:]
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	return items
}
