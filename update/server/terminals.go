package server

import (
	"cmp"
	"context"
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/verify"
)

// Terminal is a terminal as operators see it.
type Terminal struct {
	DeviceID         string `json:"device_id"`
	Serial           string `json:"serial"`
	Model            string `json:"model"`
	HardwareRevision string `json:"hardware_revision,omitempty"`
	// Channel is the release channel it last checked on; Group and Tags
	// are the labels rollouts target (see [Server.SetLabels]).
	Channel    string                `json:"channel,omitempty"`
	Group      string                `json:"group,omitempty"`
	Tags       []string              `json:"tags,omitempty"`
	Components []transport.Component `json:"components"`
	// State, Release and Waiting are what its latest heartbeat said: the
	// agent's state, the release in progress and why it waits.
	State   string `json:"state,omitempty"`
	Release string `json:"release,omitempty"`
	Waiting string `json:"waiting,omitempty"`
	// LastResult is how its latest update attempt ended, with the reason
	// code.
	LastResult *transport.Result `json:"last_result,omitempty"`
	// Reports are its latest reports, oldest first, when asked for.
	Reports      []transport.ReportRequest `json:"reports,omitempty"`
	RegisteredAt time.Time                 `json:"registered_at,omitzero"`
	LastSeen     time.Time                 `json:"last_seen,omitzero"`
	Online       bool                      `json:"online"`
	// SecurityPending is the oldest security release published for the
	// terminal that it has not installed: one on its channel, for its
	// model and hardware revision, of a component it has, above the
	// version it runs (whether or not a rollout has reached it yet, or it
	// has expired). Empty when none is. SecurityPendingSince is when that
	// release was published, and SecurityPendingDays how many whole days
	// ago: how long the terminal has gone without a security fix.
	SecurityPending      string    `json:"security_pending,omitempty"`
	SecurityPendingSince time.Time `json:"security_pending_since,omitzero"`
	SecurityPendingDays  int       `json:"security_pending_days"`
}

// TerminalQuery selects a page of terminals.
type TerminalQuery struct {
	// After is the device ID the page starts after; empty starts at the
	// first.
	After string
	// Limit bounds the page; zero or less means every terminal.
	Limit int
	// Reports is how many of each terminal's latest reports to include;
	// zero includes none.
	Reports int
}

// ListTerminals lists terminals by device ID.
func (s *Server) ListTerminals(ctx context.Context, q TerminalQuery) ([]Terminal, error) {
	ts, err := s.store.ListTerminals(ctx, q.After, q.Limit)
	if err != nil {
		return nil, fromStore(err, "list terminals")
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]Terminal, len(ts))
	for i, t := range ts {
		out[i] = s.terminal(t, cat, now)
		if q.Reports > 0 {
			if out[i].Reports, err = s.reports(ctx, t.ID, q.Reports); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Terminal returns one terminal with its latest reports.
func (s *Server) Terminal(ctx context.Context, deviceID string) (Terminal, error) {
	t, err := s.store.Terminal(ctx, deviceID)
	if err != nil {
		return Terminal{}, fromStore(err, "no terminal %q", deviceID)
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return Terminal{}, err
	}
	out := s.terminal(t, cat, s.cfg.Now())
	out.Reports, err = s.reports(ctx, deviceID, maxHistory)
	return out, err
}

// Terminals lists every enrolled terminal, by device ID, each with its
// latest reports. It is [Server.ListTerminals] without a context, for
// callers that have none; a store error is logged and ends the list.
func (s *Server) Terminals() []Terminal {
	out, err := s.ListTerminals(context.Background(), TerminalQuery{Reports: maxHistory})
	if err != nil {
		s.log.Error("server: list terminals", "err", err)
	}
	return out
}

func (s *Server) terminal(t store.Terminal, cat []*published, now time.Time) Terminal {
	out := Terminal{DeviceID: t.ID, Serial: t.Serial, Model: t.Model, HardwareRevision: t.HardwareRevision,
		Channel: t.Channel, Group: t.Group, Tags: t.Tags, Components: fromStoreComponents(t.Components),
		State: t.Status.State, Release: t.Status.Release, Waiting: t.Status.Waiting,
		LastResult: fromStoreResult(t.LastResult), RegisteredAt: t.RegisteredAt, LastSeen: t.LastSeen}
	if !t.LastSeen.IsZero() {
		out.Online = s.online(t, now)
	}
	if p := securityPending(t, cat); p != nil {
		out.SecurityPending, out.SecurityPendingSince = p.rel.ID(), p.at
		out.SecurityPendingDays = max(0, int(now.Sub(p.at)/(24*time.Hour)))
	}
	return out
}

// securityPending returns the oldest publication of a security release
// for t above the version of its component that t runs, or nil.
func securityPending(t store.Terminal, cat []*published) *published {
	var oldest *published
	for _, p := range cat {
		r := p.rel
		if r.Category != verify.CategorySecurity || r.Channel != cmp.Or(t.Channel, release.DefaultChannel) ||
			(len(r.Models) > 0 && !slices.Contains(r.Models, t.Model)) ||
			(len(r.HardwareRevisions) > 0 && !slices.Contains(r.HardwareRevisions, t.HardwareRevision)) {
			continue
		}
		i := slices.IndexFunc(t.Components, func(c store.Component) bool { return c.Name == r.Component })
		if i < 0 {
			continue // a fix for what the terminal does not run
		}
		if behind, err := version.Less(t.Components[i].Version, r.Version); err != nil || !behind {
			continue
		}
		if oldest == nil || p.at.Before(oldest.at) {
			oldest = p
		}
	}
	return oldest
}

func (s *Server) reports(ctx context.Context, deviceID string, n int) ([]transport.ReportRequest, error) {
	rs, err := s.store.ListReports(ctx, deviceID, n)
	if err != nil {
		return nil, fromStore(err, "reports of %s", deviceID)
	}
	var out []transport.ReportRequest
	for _, r := range rs {
		out = append(out, transport.ReportRequest{ID: r.ID, Release: r.Release, From: r.From, To: r.To, Phase: r.Phase,
			Outcome: transport.Outcome(r.Outcome), Reason: transport.Reason(r.Reason), Detail: r.Detail, At: r.At})
	}
	return out, nil
}

// Nudge asks a terminal to check for updates at its next heartbeat. The
// nudge lands in the audit log as the server's.
func (s *Server) Nudge(deviceID string) error {
	return s.nudge(context.Background(), system, deviceID)
}

func (s *Server) nudge(ctx context.Context, by Operator, deviceID string) error {
	if err := s.require(ctx, by, RoleAdmin, "terminal.nudge", deviceID); err != nil {
		return err
	}
	_, err := s.store.UpdateTerminal(ctx, deviceID, func(t *store.Terminal) error {
		if !slices.Contains(t.Directives, string(transport.DirectiveCheck)) {
			t.Directives = append(t.Directives, string(transport.DirectiveCheck))
		}
		return nil
	})
	err = fromStore(err, "no terminal %q", deviceID)
	s.audit(ctx, by, "terminal.nudge", deviceID, err, "")
	return err
}

// SetLabels sets the group and tags a terminal is targeted by (see
// [RolloutSpec]). by must be an admin. A rollout already under way keeps
// the terminals it tracked when they were targeted.
func (s *Server) SetLabels(ctx context.Context, by Operator, deviceID, group string, tags []string) error {
	by = by.orSystem()
	if err := s.require(ctx, by, RoleAdmin, "terminal.labels", deviceID); err != nil {
		return err
	}
	err := checkLabels(group, tags)
	if err == nil {
		_, err = s.store.UpdateTerminal(ctx, deviceID, func(t *store.Terminal) error {
			t.Group, t.Tags = group, slices.Clone(tags)
			return nil
		})
		err = fromStore(err, "no terminal %q", deviceID)
	}
	s.audit(ctx, by, "terminal.labels", deviceID, err, "group "+strconv.Quote(group)+" tags "+strings.Join(tags, ","))
	return err
}

func checkLabels(group string, tags []string) error {
	if group != "" {
		if err := verify.CheckName("group", group); err != nil {
			return transport.Errorf(transport.CodeBadRequest, "%v", err)
		}
	}
	if len(tags) > 32 {
		return transport.Errorf(transport.CodeBadRequest, "%d tags, limit 32", len(tags))
	}
	for _, tag := range tags {
		if err := verify.CheckName("tag", tag); err != nil {
			return transport.Errorf(transport.CodeBadRequest, "%v", err)
		}
	}
	return nil
}

// inventoryHeader are the columns of the inventory export.
var inventoryHeader = []string{"device_id", "serial", "model", "hardware_revision", "channel", "group", "tags",
	"components", "state", "release", "waiting", "online", "last_seen", "last_release", "last_outcome",
	"last_reason", "last_result_at", "registered_at", "security_pending", "security_pending_since",
	"security_pending_days"}

// WriteInventory writes the fleet as CSV, a header then one row per
// terminal by device ID: identity, labels, components as
// "name=version" joined by ';', the latest heartbeat's state, liveness,
// the last result with its reason code, and the oldest security release
// it lacks with when it was published and how many days ago (see
// [Terminal]; empty cells when none). Times are RFC 3339 in UTC. A cell a
// spreadsheet would take for a formula is prefixed with "'".
func (s *Server) WriteInventory(ctx context.Context, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(inventoryHeader); err != nil {
		return err
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	after := ""
	for {
		page, err := s.store.ListTerminals(ctx, after, pageSize)
		if err != nil {
			return fromStore(err, "list terminals")
		}
		for _, st := range page {
			t := s.terminal(st, cat, now)
			comps := make([]string, len(t.Components))
			for i, c := range t.Components {
				comps[i] = c.Name + "=" + c.Version
			}
			row := []string{t.DeviceID, t.Serial, t.Model, t.HardwareRevision, t.Channel, t.Group,
				strings.Join(t.Tags, " "), strings.Join(comps, ";"), t.State, t.Release, t.Waiting,
				strconv.FormatBool(t.Online), csvTime(t.LastSeen), "", "", "", "", csvTime(t.RegisteredAt),
				t.SecurityPending, csvTime(t.SecurityPendingSince), ""}
			if r := t.LastResult; r != nil {
				row[13], row[14], row[15], row[16] = r.Release, string(r.Outcome), string(r.Reason), csvTime(r.At)
			}
			if t.SecurityPending != "" {
				row[len(row)-1] = strconv.Itoa(t.SecurityPendingDays) // security_pending_days
			}
			for i := range row {
				row[i] = csvCell(row[i])
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvCell defuses a cell a spreadsheet would run as a formula: what a
// terminal reports (its state, why it waits) is not trusted. Control
// characters become spaces, and every part of the cell that starts,
// after spaces, with a formula's first character (= + - @) gets a "'"
// before it: the cell's start, and the start of each part after a ';' or
// a ',', since a spreadsheet whose list separator is ';' splits cells
// there whatever the CSV quoting says.
func csvCell(v string) string {
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, v)
	var b strings.Builder
	start := true // at the start of a part
	for _, r := range v {
		switch {
		case start && r == ' ':
		case start && strings.ContainsRune("=+-@", r):
			b.WriteByte('\'')
			start = false
		default:
			start = r == ';' || r == ','
		}
		b.WriteRune(r)
	}
	return b.String()
}
