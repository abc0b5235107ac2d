// Package pgstore is the fleet store on PostgreSQL, for an update server
// with several replicas behind a load balancer. pgx is inside; none of its
// types is in the API.
//
// [Open] migrates the schema: embedded SQL files, applied in order, each
// recorded in a schema_migrations table, all in one transaction under an
// advisory lock, so replicas starting together apply each once. A
// database migrated by a newer program is refused.
//
// Heartbeats are written a batch per transaction: the terminals' rows are
// locked in device ID order (so concurrent batches never deadlock), then
// one UPDATE sets them all from a JSON array of the batch. Rollouts change
// by compare and swap on a version column. A rollout's counts by phase and
// reason are kept in a table that every write of device states updates in
// the same statement, so counting reads a few rows, not the devices. Every
// write of a rollout's device states takes the rollout's advisory lock
// first, so a conditional change reads the states it compares with, and a
// claim the counts and starts its caps compare with, as no one else is
// changing them.
package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/internal/record"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options configure [Open]. The zero value uses the connection's own
// search_path (usually the public schema) and pgx's pool defaults.
type Options struct {
	// Schema, if set, is the schema the store lives in: created if
	// missing, and the search_path of every connection. Lower-case
	// letters, digits and underscores, starting with a letter or
	// underscore, at most 63 bytes.
	Schema string
	// MaxConns bounds the pool's connections; 0 means the greater of 4
	// and the number of CPUs.
	MaxConns int
	// Logger receives the store's log; nil discards.
	Logger *slog.Logger
}

// Store is a [store.Store] on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database at dsn (a URL or key=value string, as
// libpq takes), migrates its schema and returns the store.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Schema != "" && !schemaName.MatchString(opts.Schema) {
		return nil, fmt.Errorf("pgstore: schema name %q: want lower-case letters, digits and _", opts.Schema)
	}
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("pgstore: negative Options.MaxConns %d", opts.MaxConns)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(min(opts.MaxConns, 1<<20))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool, log: log}
	if err := s.migrate(ctx, opts.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool's connections, waiting for those in use. Calls
// after Close return store.ErrClosed.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("pgstore: migration %s: want a name like 0001_what.sql", base)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if len(ms) > 0 && ms[len(ms)-1].version == v {
			return nil, fmt.Errorf("pgstore: two migrations numbered %d", v)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	return ms, nil // fs.Glob sorts by name, so by number
}

// migrate applies the migrations not yet applied, in one transaction under
// an advisory lock named after the schema.
func (s *Store) migrate(ctx context.Context, schema string) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if schema == "" {
			var cur *string
			if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&cur); err != nil {
				return err
			}
			if cur == nil {
				return errors.New("pgstore: no schema in the connection's search_path to create tables in")
			}
			schema = *cur
		}
		h := fnv.New64a()
		h.Write([]byte("upkeep/pgstore/migrate/" + schema))
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		if len(applied) > 0 && int(slices.Max(applied)) > ms[len(ms)-1].version {
			return fmt.Errorf("pgstore: schema %s is at version %d; this program knows up to %d", schema,
				slices.Max(applied), ms[len(ms)-1].version)
		}
		for _, m := range ms {
			if slices.Contains(applied, int32(m.version)) {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("pgstore: migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
			s.log.Info("pgstore: migrated", "schema", schema, "migration", m.name)
		}
		return nil
	})
}

// tx runs fn in a transaction, committed if fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.fail(pgx.BeginFunc(ctx, s.pool, fn))
}

// fail returns a store's own errors as they are and wraps the driver's.
func (s *Store) fail(err error) error {
	var se *store.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case s.closed.Load():
		return fmt.Errorf("pgstore: %w: %w", store.ErrClosed, err)
	}
	return fmt.Errorf("pgstore: %w", err)
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// uniqueViolation is PostgreSQL's SQLSTATE for a unique constraint.
const uniqueViolation = "23505"

// ts maps the zero time to NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func untime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return record.Time(*t)
}

// limitArg maps limit <= 0 to NULL: LIMIT NULL is no limit.
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return limit
}

func jsonOrNil(v any, empty bool) ([]byte, error) {
	if empty {
		return nil, nil
	}
	return json.Marshal(v)
}

const terminalColumns = `id, serial, model, hardware_revision, token_hash, tags, grp, channel, components,
	registered_at, last_seen, interval_ns, status, last_result, directives`

func scanTerminal(row pgx.Row) (store.Terminal, error) {
	var t store.Terminal
	var comps, status, last []byte
	var registered, seen *time.Time
	var interval int64
	err := row.Scan(&t.ID, &t.Serial, &t.Model, &t.HardwareRevision, &t.TokenHash, &t.Tags, &t.Group, &t.Channel, &comps,
		&registered, &seen, &interval, &status, &last, &t.Directives)
	if err != nil {
		return t, err
	}
	t.RegisteredAt, t.LastSeen, t.Interval = untime(registered), untime(seen), time.Duration(interval)
	if len(comps) > 0 {
		if err := json.Unmarshal(comps, &t.Components); err != nil {
			return t, fmt.Errorf("terminal %q: components: %w", t.ID, err)
		}
	}
	if len(status) > 0 {
		if err := json.Unmarshal(status, &t.Status); err != nil {
			return t, fmt.Errorf("terminal %q: status: %w", t.ID, err)
		}
	}
	if len(last) > 0 && string(last) != "null" {
		t.LastResult = new(store.Result)
		if err := json.Unmarshal(last, t.LastResult); err != nil {
			return t, fmt.Errorf("terminal %q: last result: %w", t.ID, err)
		}
	}
	return record.Terminal(t), nil
}

// terminalArgs are t's columns after id and serial, in terminalColumns'
// order.
func terminalArgs(t store.Terminal) ([]any, error) {
	comps, err := jsonOrNil(t.Components, len(t.Components) == 0)
	if err != nil {
		return nil, err
	}
	status, err := jsonOrNil(t.Status, t.Status == (store.Status{}))
	if err != nil {
		return nil, err
	}
	last, err := jsonOrNil(t.LastResult, t.LastResult == nil)
	if err != nil {
		return nil, err
	}
	return []any{t.Model, t.HardwareRevision, t.TokenHash, t.Tags, t.Group, t.Channel, comps,
		ts(t.RegisteredAt), ts(t.LastSeen), int64(t.Interval), status, last, t.Directives}, nil
}

func notFound(kind, key string) error {
	return &store.Error{Kind: kind, Key: key, Err: store.ErrNotFound}
}

// CreateTerminal implements [store.Fleet].
func (s *Store) CreateTerminal(ctx context.Context, t store.Terminal) error {
	if err := record.CheckTerminal(&t); err != nil {
		return err
	}
	t = record.Terminal(t)
	args, err := terminalArgs(t)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO terminals (`+terminalColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		append([]any{t.ID, t.Serial}, args...)...)
	if isCode(err, uniqueViolation) {
		return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "device ID, serial or token hash taken")
	}
	return s.fail(err)
}

func (s *Store) terminalWhere(ctx context.Context, where string, arg any, kind, key string) (store.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return store.Terminal{}, err
	}
	t, err := scanTerminal(s.pool.QueryRow(ctx, "SELECT "+terminalColumns+" FROM terminals WHERE "+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Terminal{}, store.Errorf(kind, key, store.ErrNotFound, "")
	}
	return t, s.fail(err)
}

// Terminal implements [store.Fleet].
func (s *Store) Terminal(ctx context.Context, deviceID string) (store.Terminal, error) {
	return s.terminalWhere(ctx, "id = $1", deviceID, store.KindTerminal, deviceID)
}

// TerminalBySerial implements [store.Fleet].
func (s *Store) TerminalBySerial(ctx context.Context, serial string) (store.Terminal, error) {
	t, err := s.terminalWhere(ctx, "serial = $1", serial, store.KindTerminal, "")
	if errors.Is(err, store.ErrNotFound) {
		return t, store.Errorf(store.KindTerminal, "", store.ErrNotFound, "no serial %q", serial)
	}
	return t, err
}

// TokenOwner implements [store.Fleet].
func (s *Store) TokenOwner(ctx context.Context, tokenHash []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var id string
	err := errors.New("no token")
	if len(tokenHash) > 0 {
		err = s.pool.QueryRow(ctx, "SELECT id FROM terminals WHERE token_hash = $1", tokenHash).Scan(&id)
	}
	if err != nil && (len(tokenHash) == 0 || errors.Is(err, pgx.ErrNoRows)) {
		return "", store.Errorf(store.KindTerminal, "", store.ErrNotFound, "unknown token")
	}
	return id, s.fail(err)
}

// UpdateTerminal implements [store.Fleet].
func (s *Store) UpdateTerminal(ctx context.Context, deviceID string, update func(*store.Terminal) error) (store.Terminal, error) {
	var t store.Terminal
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = updateTerminal(ctx, tx, deviceID, update)
		return err
	})
	if err != nil {
		return store.Terminal{}, err
	}
	return t, nil
}

func updateTerminal(ctx context.Context, tx pgx.Tx, deviceID string, fn func(*store.Terminal) error) (store.Terminal, error) {
	old, err := scanTerminal(tx.QueryRow(ctx, "SELECT "+terminalColumns+" FROM terminals WHERE id = $1 FOR UPDATE", deviceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Terminal{}, notFound(store.KindTerminal, deviceID)
	}
	if err != nil {
		return store.Terminal{}, err
	}
	t, err := record.ApplyTerminal(deviceID, old, fn)
	if err != nil {
		return store.Terminal{}, err
	}
	args, err := terminalArgs(t)
	if err != nil {
		return store.Terminal{}, err
	}
	_, err = tx.Exec(ctx, `UPDATE terminals SET model = $2, hardware_revision = $3, token_hash = $4, tags = $5, grp = $6,
		channel = $7, components = $8, registered_at = $9, last_seen = $10, interval_ns = $11, status = $12,
		last_result = $13, directives = $14 WHERE id = $1`, append([]any{deviceID}, args...)...)
	if isCode(err, uniqueViolation) {
		return store.Terminal{}, store.Errorf(store.KindTerminal, deviceID, store.ErrExists, "token hash taken")
	}
	return t, err
}

// ListTerminals implements [store.Fleet].
func (s *Store) ListTerminals(ctx context.Context, after string, limit int) ([]store.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+terminalColumns+" FROM terminals WHERE id > $1 ORDER BY id LIMIT $2", after, limitArg(limit))
	if err != nil {
		return nil, s.fail(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Terminal, error) { return scanTerminal(row) })
	if len(out) == 0 {
		out = nil
	}
	return out, s.fail(err)
}

// beatRow is one terminal's change from a batch of heartbeats, as the
// UPDATE reads it with jsonb_to_recordset. Absent fields are NULL: keep.
type beatRow struct {
	ID         string            `json:"id"`
	Apply      bool              `json:"apply"`
	At         time.Time         `json:"at,omitzero"`
	IntervalNS int64             `json:"interval_ns,omitempty"`
	Status     *store.Status     `json:"status,omitempty"`
	Components []store.Component `json:"components,omitempty"`
	LastResult *store.Result     `json:"last_result,omitempty"`
	lastSeen   time.Time
	taken      bool
	directives []string
}

// Heartbeats implements [store.HeartbeatWriter]: it locks the batch's
// terminals in device ID order, takes their directives, folds the beats
// into one change per terminal and writes them with one UPDATE.
func (s *Store) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := make([]store.HeartbeatResult, len(beats))
	norm := make([]store.Heartbeat, len(beats))
	var ids []string
	for i, b := range beats {
		if err := record.CheckHeartbeat(&b); err != nil {
			res[i].Err = err
			continue
		}
		norm[i] = record.Heartbeat(b)
		ids = append(ids, b.DeviceID)
	}
	if len(ids) == 0 {
		return res, nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, directives, last_seen FROM terminals WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids)
		if err != nil {
			return err
		}
		changes := make(map[string]*beatRow, len(ids))
		var id string
		var dirs []string
		var seen *time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &dirs, &seen}, func() error {
			changes[id] = &beatRow{ID: id, directives: dirs, lastSeen: untime(seen)}
			dirs = nil
			return nil
		})
		if err != nil {
			return err
		}
		for i, b := range norm {
			if res[i].Err != nil {
				continue
			}
			c, ok := changes[b.DeviceID]
			if !ok {
				res[i].Err = notFound(store.KindTerminal, b.DeviceID)
				continue
			}
			if !c.taken {
				res[i].Directives, c.taken = c.directives, true
			}
			if !c.lastSeen.IsZero() && b.At.Before(c.lastSeen) {
				continue
			}
			c.Apply, c.At, c.lastSeen = true, b.At, b.At
			c.Status = &norm[i].Status
			if b.Interval > 0 {
				c.IntervalNS = int64(b.Interval)
			}
			if len(b.Components) > 0 {
				c.Components = b.Components
			}
			if b.LastResult != nil {
				c.LastResult = b.LastResult
			}
		}
		var update []*beatRow
		for _, id := range ids {
			if c := changes[id]; c != nil && (c.Apply || len(c.directives) > 0) {
				update = append(update, c)
			}
		}
		if len(update) == 0 {
			return nil
		}
		batch, err := json.Marshal(update)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE terminals t SET
			directives  = NULL,
			last_seen   = CASE WHEN v.apply THEN v.at ELSE t.last_seen END,
			interval_ns = COALESCE(v.interval_ns, t.interval_ns),
			status      = CASE WHEN v.apply THEN v.status ELSE t.status END,
			components  = COALESCE(v.components, t.components),
			last_result = COALESCE(v.last_result, t.last_result)
		FROM jsonb_to_recordset($1::jsonb) AS v(id text, apply boolean, at timestamptz, interval_ns bigint,
			status jsonb, components jsonb, last_result jsonb)
		WHERE t.id = v.id`, batch)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

const reportColumns = "device_id, id, seq, release, from_version, to_version, phase, outcome, reason, detail, at, received_at"

func scanReport(row pgx.Row) (store.Report, error) {
	var r store.Report
	var at, received *time.Time
	err := row.Scan(&r.DeviceID, &r.ID, &r.Seq, &r.Release, &r.From, &r.To, &r.Phase, &r.Outcome, &r.Reason, &r.Detail, &at, &received)
	r.At, r.ReceivedAt = untime(at), untime(received)
	return r, err
}

// AddReport implements [store.Fleet]. The terminal's row is locked first,
// so a terminal's reports are recorded one at a time.
func (s *Store) AddReport(ctx context.Context, r store.Report, update func(*store.Terminal) error) (store.Report, error) {
	if err := record.CheckReport(&r); err != nil {
		return store.Report{}, err
	}
	r = record.Report(r)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, "SELECT id FROM terminals WHERE id = $1 FOR UPDATE", r.DeviceID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(store.KindTerminal, r.DeviceID)
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO reports (device_id, id, release, from_version, to_version, phase, outcome, reason, detail, at, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (device_id, id) DO NOTHING RETURNING seq`,
			r.DeviceID, r.ID, r.Release, r.From, r.To, r.Phase, r.Outcome, r.Reason, r.Detail, ts(r.At), ts(r.ReceivedAt)).Scan(&r.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.Errorf(store.KindReport, r.DeviceID+"/"+r.ID, store.ErrExists, "duplicate report")
		}
		if err != nil || update == nil {
			return err
		}
		_, err = updateTerminal(ctx, tx, r.DeviceID, update)
		return err
	})
	if err != nil {
		return store.Report{}, err
	}
	return r, nil
}

// ListReports implements [store.Fleet].
func (s *Store) ListReports(ctx context.Context, deviceID string, limit int) ([]store.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+reportColumns+` FROM (
		SELECT `+reportColumns+` FROM reports WHERE device_id = $1 ORDER BY seq DESC LIMIT $2) r ORDER BY seq`,
		deviceID, limitArg(limit))
	if err != nil {
		return nil, s.fail(err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Report, error) { return scanReport(row) })
	if len(rs) == 0 {
		rs = nil
	}
	return rs, s.fail(err)
}

const releaseColumns = "id, channel, seq, component, version, digest, size, path, bundle, policy, published_at"

func scanRelease(row pgx.Row) (store.Release, error) {
	var r store.Release
	var published *time.Time
	err := row.Scan(&r.ID, &r.Channel, &r.Seq, &r.Component, &r.Version, &r.Digest, &r.Size, &r.Path, &r.Bundle, &r.Policy, &published)
	r.PublishedAt = untime(published)
	return record.Release(r), err
}

// PutRelease implements [store.Catalog].
func (s *Store) PutRelease(ctx context.Context, r store.Release) (store.Release, error) {
	if err := record.CheckRelease(&r); err != nil {
		return store.Release{}, err
	}
	r = record.Release(r)
	if err := ctx.Err(); err != nil {
		return store.Release{}, err
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO releases (`+releaseColumns+`)
		VALUES ($1, $2, nextval('releases_seq'), $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id, channel) DO UPDATE SET seq = excluded.seq, component = excluded.component,
			version = excluded.version, digest = excluded.digest, size = excluded.size, path = excluded.path,
			bundle = excluded.bundle, policy = excluded.policy, published_at = excluded.published_at
		RETURNING seq`,
		r.ID, r.Channel, r.Component, r.Version, r.Digest, r.Size, r.Path, r.Bundle, r.Policy, ts(r.PublishedAt)).Scan(&r.Seq)
	if err != nil {
		return store.Release{}, s.fail(err)
	}
	return record.Release(r), nil
}

// Release implements [store.Catalog].
func (s *Store) Release(ctx context.Context, id, channel string) (store.Release, error) {
	if err := ctx.Err(); err != nil {
		return store.Release{}, err
	}
	r, err := scanRelease(s.pool.QueryRow(ctx, "SELECT "+releaseColumns+" FROM releases WHERE id = $1 AND channel = $2", id, channel))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Release{}, notFound(store.KindRelease, record.ReleaseKey(id, channel))
	}
	return r, s.fail(err)
}

// ListReleases implements [store.Catalog].
func (s *Store) ListReleases(ctx context.Context) ([]store.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+releaseColumns+" FROM releases ORDER BY seq")
	if err != nil {
		return nil, s.fail(err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Release, error) { return scanRelease(row) })
	if len(rs) == 0 {
		rs = nil
	}
	return rs, s.fail(err)
}

// DeleteRelease implements [store.Catalog].
func (s *Store) DeleteRelease(ctx context.Context, id, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM releases WHERE id = $1 AND channel = $2", id, channel)
	if err != nil {
		return s.fail(err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(store.KindRelease, record.ReleaseKey(id, channel))
	}
	return nil
}

const rolloutColumns = "id, definition, status, version, created_at, updated_at, starts_window, starts"

func scanRollout(row pgx.Row) (store.Rollout, error) {
	var r store.Rollout
	var created, updated, window *time.Time
	err := row.Scan(&r.ID, &r.Definition, &r.Status, &r.Version, &created, &updated, &window, &r.Starts)
	r.CreatedAt, r.UpdatedAt, r.StartsWindow = untime(created), untime(updated), untime(window)
	return record.Rollout(r), err
}

// CreateRollout implements [store.Rollouts].
func (s *Store) CreateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	if err := record.CheckRollout(&r); err != nil {
		return store.Rollout{}, err
	}
	r = record.Rollout(r)
	r.Version = 1
	r.StartsWindow, r.Starts = time.Time{}, 0
	if err := ctx.Err(); err != nil {
		return store.Rollout{}, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO rollouts (id, definition, status, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $5)
		ON CONFLICT (id) DO NOTHING`, r.ID, r.Definition, r.Status, ts(r.CreatedAt), ts(r.UpdatedAt))
	if err != nil {
		return store.Rollout{}, s.fail(err)
	}
	if tag.RowsAffected() == 0 {
		return store.Rollout{}, store.Errorf(store.KindRollout, r.ID, store.ErrExists, "")
	}
	return r, nil
}

// Rollout implements [store.Rollouts].
func (s *Store) Rollout(ctx context.Context, id string) (store.Rollout, error) {
	if err := ctx.Err(); err != nil {
		return store.Rollout{}, err
	}
	r, err := scanRollout(s.pool.QueryRow(ctx, "SELECT "+rolloutColumns+" FROM rollouts WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Rollout{}, notFound(store.KindRollout, id)
	}
	return r, s.fail(err)
}

// ListRollouts implements [store.Rollouts].
func (s *Store) ListRollouts(ctx context.Context) ([]store.Rollout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+rolloutColumns+" FROM rollouts ORDER BY id")
	if err != nil {
		return nil, s.fail(err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Rollout, error) { return scanRollout(row) })
	if len(rs) == 0 {
		rs = nil
	}
	return rs, s.fail(err)
}

// UpdateRollout implements [store.Rollouts] with one conditional UPDATE.
func (s *Store) UpdateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	if err := record.CheckRollout(&r); err != nil {
		return store.Rollout{}, err
	}
	r = record.Rollout(r)
	if err := ctx.Err(); err != nil {
		return store.Rollout{}, err
	}
	got, err := scanRollout(s.pool.QueryRow(ctx, `UPDATE rollouts SET definition = $3, status = $4, version = version + 1, updated_at = $5
		WHERE id = $1 AND version = $2 RETURNING `+rolloutColumns, r.ID, r.Version, r.Definition, r.Status, ts(r.UpdatedAt)))
	if errors.Is(err, pgx.ErrNoRows) {
		var v int64
		err = s.pool.QueryRow(ctx, "SELECT version FROM rollouts WHERE id = $1", r.ID).Scan(&v)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return store.Rollout{}, notFound(store.KindRollout, r.ID)
		case err == nil:
			return store.Rollout{}, &store.Error{Kind: store.KindRollout, Key: r.ID, Err: store.ErrConflict, Version: v}
		}
	}
	if err != nil {
		return store.Rollout{}, s.fail(err)
	}
	return got, nil
}

// rolloutLockClass is the first key of the advisory locks that serialize
// writes of one rollout's device states.
const rolloutLockClass = 0x75706b70 // "upkp"

// PutRolloutDevices implements [store.Rollouts]. Writers of one rollout's
// states take turns (an advisory lock per rollout, taken in ID order), so
// the counters' deltas are computed from states no one else is changing.
func (s *Store) PutRolloutDevices(ctx context.Context, states []store.RolloutDevice) error {
	for i := range states {
		if err := record.CheckRolloutDevice(&states[i]); err != nil {
			return err
		}
	}
	if len(states) == 0 {
		return ctx.Err()
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockRollouts(ctx, tx, rolloutIDs(states)); err != nil {
			return err
		}
		return writeDevices(ctx, tx, states)
	})
}

// rolloutIDs returns the rollouts of states, sorted, once each.
func rolloutIDs(states []store.RolloutDevice) []string {
	ids := make([]string, len(states))
	for i, d := range states {
		ids[i] = d.RolloutID
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// lockRollouts takes the advisory locks of rollouts, in the order given
// (sorted, so that writers never wait for each other in a cycle), and
// returns ErrNotFound if one of them does not exist. Every write of a
// rollout's device states happens under its lock.
func lockRollouts(ctx context.Context, tx pgx.Tx, rollouts []string) error {
	for _, id := range rollouts {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", rolloutLockClass, id); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, "SELECT id FROM rollouts WHERE id = ANY($1)", rollouts)
	if err != nil {
		return err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range rollouts {
		if !slices.Contains(found, id) {
			return notFound(store.KindRollout, id)
		}
	}
	return nil
}

// writeDevices writes states, the last of each device's winning, and
// moves the counters by the difference, under the rollouts' locks.
func writeDevices(ctx context.Context, tx pgx.Tx, states []store.RolloutDevice) error {
	states = record.LastRolloutDevices(states)
	for i, d := range states {
		states[i] = record.RolloutDevice(d)
	}
	batch, err := json.Marshal(states)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `WITH v AS (
		SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(rollout_id text, device_id text, phase text, reason text,
			attempts integer, updated_at timestamptz)
	), old AS (
		SELECT d.rollout_id, d.phase, d.reason FROM rollout_devices d
		JOIN v ON d.rollout_id = v.rollout_id AND d.device_id = v.device_id
	), up AS (
		INSERT INTO rollout_devices (rollout_id, device_id, phase, reason, attempts, updated_at)
		SELECT rollout_id, device_id, phase, COALESCE(reason, ''), COALESCE(attempts, 0), updated_at FROM v
		ON CONFLICT (rollout_id, device_id) DO UPDATE SET phase = excluded.phase, reason = excluded.reason,
			attempts = excluded.attempts, updated_at = excluded.updated_at
		RETURNING rollout_id, phase, reason
	), delta AS (
		SELECT rollout_id, phase, reason, sum(n) AS n FROM (
			SELECT rollout_id, phase, reason, -1 AS n FROM old
			UNION ALL
			SELECT rollout_id, phase, reason, 1 AS n FROM up
		) x GROUP BY rollout_id, phase, reason HAVING sum(n) <> 0
	)
	INSERT INTO rollout_counts AS c (rollout_id, phase, reason, n)
	SELECT rollout_id, phase, reason, n FROM delta
	ON CONFLICT (rollout_id, phase, reason) DO UPDATE SET n = c.n + excluded.n`, batch)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "DELETE FROM rollout_counts WHERE rollout_id = ANY($1) AND n <= 0", rolloutIDs(states))
	return err
}

// ChangeRolloutDevices implements [store.Rollouts]: under the rollouts'
// locks it reads the devices' states, keeps the changes whose condition
// holds and writes them in one statement.
func (s *Store) ChangeRolloutDevices(ctx context.Context, changes []store.DeviceChange) ([]bool, error) {
	for i := range changes {
		if err := record.CheckDeviceChange(&changes[i]); err != nil {
			return nil, err
		}
	}
	if len(changes) == 0 {
		return nil, ctx.Err()
	}
	type devKey struct{ rollout, device string }
	states := make([]store.RolloutDevice, len(changes))
	var rolloutCol, deviceCol []string
	for i, c := range changes {
		states[i] = c.State
		rolloutCol = append(rolloutCol, c.State.RolloutID)
		deviceCol = append(deviceCol, c.State.DeviceID)
	}
	var applied []bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockRollouts(ctx, tx, rolloutIDs(states)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT d.rollout_id, d.device_id, d.phase, d.reason FROM rollout_devices d
			JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS v(rollout_id, device_id)) v
			ON d.rollout_id = v.rollout_id AND d.device_id = v.device_id`, rolloutCol, deviceCol)
		if err != nil {
			return err
		}
		cur := map[devKey]store.RolloutDevice{}
		var d store.RolloutDevice
		_, err = pgx.ForEachRow(rows, []any{&d.RolloutID, &d.DeviceID, &d.Phase, &d.Reason}, func() error {
			cur[devKey{d.RolloutID, d.DeviceID}] = d
			return nil
		})
		if err != nil {
			return err
		}
		applied = make([]bool, len(changes))
		var writes []store.RolloutDevice
		for i, c := range changes {
			k := devKey{c.State.RolloutID, c.State.DeviceID}
			old, ok := cur[k]
			if !record.Holds(c, old, ok) {
				continue
			}
			cur[k] = c.State
			writes = append(writes, c.State)
			applied[i] = true
		}
		if len(writes) == 0 {
			return nil
		}
		return writeDevices(ctx, tx, writes)
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// ClaimRolloutDevice implements [store.Rollouts]: under the rollout's lock,
// which every write of its devices' states takes, it reads the device's
// state, the counters of the phases in flight and the starts of the
// window, then writes the state and the count.
func (s *Store) ClaimRolloutDevice(ctx context.Context, c store.Claim) error {
	if err := record.CheckClaim(&c); err != nil {
		return err
	}
	id := c.State.RolloutID
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockRollouts(ctx, tx, []string{id}); err != nil {
			return err
		}
		var old store.RolloutDevice
		err := tx.QueryRow(ctx, "SELECT phase, reason FROM rollout_devices WHERE rollout_id = $1 AND device_id = $2",
			id, c.State.DeviceID).Scan(&old.Phase, &old.Reason)
		ok := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !record.Holds(c.DeviceChange, old, ok) {
			return record.Conflict(c.DeviceChange)
		}
		if c.MaxInFlight > 0 {
			phases := make([]string, len(c.InFlight))
			for i, p := range c.InFlight {
				phases[i] = string(p)
			}
			var n int64
			if err := tx.QueryRow(ctx, "SELECT COALESCE(sum(n), 0)::bigint FROM rollout_counts WHERE rollout_id = $1 AND phase = ANY($2)",
				id, phases).Scan(&n); err != nil {
				return err
			}
			if n >= int64(c.MaxInFlight) {
				return record.InFlightLimit(id, n, int64(c.MaxInFlight))
			}
		}
		if c.MaxStarts > 0 {
			var stored *time.Time
			var n int
			if err := tx.QueryRow(ctx, "SELECT starts_window, starts FROM rollouts WHERE id = $1 FOR NO KEY UPDATE", id).Scan(&stored, &n); err != nil {
				return err
			}
			w, n := record.Starts(untime(stored), n, c.Window)
			if n >= c.MaxStarts {
				return record.StartsLimit(id, w, n, c.MaxStarts)
			}
			if _, err := tx.Exec(ctx, "UPDATE rollouts SET starts_window = $2, starts = $3 WHERE id = $1", id, w, n+1); err != nil {
				return err
			}
		}
		return writeDevices(ctx, tx, []store.RolloutDevice{c.State})
	})
}

const rolloutDeviceColumns = "rollout_id, device_id, phase, reason, attempts, updated_at"

func scanRolloutDevice(row pgx.Row) (store.RolloutDevice, error) {
	var d store.RolloutDevice
	var updated *time.Time
	err := row.Scan(&d.RolloutID, &d.DeviceID, &d.Phase, &d.Reason, &d.Attempts, &updated)
	d.UpdatedAt = untime(updated)
	return d, err
}

// RolloutDevice implements [store.Rollouts].
func (s *Store) RolloutDevice(ctx context.Context, rolloutID, deviceID string) (store.RolloutDevice, error) {
	if err := ctx.Err(); err != nil {
		return store.RolloutDevice{}, err
	}
	d, err := scanRolloutDevice(s.pool.QueryRow(ctx, "SELECT "+rolloutDeviceColumns+" FROM rollout_devices WHERE rollout_id = $1 AND device_id = $2",
		rolloutID, deviceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.RolloutDevice{}, notFound(store.KindRolloutDevice, record.RolloutDeviceKey(rolloutID, deviceID))
	}
	return d, s.fail(err)
}

// ListRolloutDevices implements [store.Rollouts].
func (s *Store) ListRolloutDevices(ctx context.Context, rolloutID string, phase store.Phase, after string, limit int) ([]store.RolloutDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+rolloutDeviceColumns+` FROM rollout_devices
		WHERE rollout_id = $1 AND ($2 = '' OR phase = $2) AND device_id > $3 ORDER BY device_id LIMIT $4`,
		rolloutID, string(phase), after, limitArg(limit))
	if err != nil {
		return nil, s.fail(err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.RolloutDevice, error) { return scanRolloutDevice(row) })
	if len(ds) == 0 {
		ds = nil
	}
	return ds, s.fail(err)
}

// CountRolloutDevices implements [store.Rollouts]: it reads the counters.
func (s *Store) CountRolloutDevices(ctx context.Context, rolloutID string) ([]store.PhaseCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT phase, reason, n FROM rollout_counts WHERE rollout_id = $1 AND n > 0 ORDER BY phase, reason", rolloutID)
	if err != nil {
		return nil, s.fail(err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PhaseCount, error) {
		var c store.PhaseCount
		err := row.Scan(&c.Phase, &c.Reason, &c.Count)
		return c, err
	})
	if len(cs) == 0 {
		cs = nil
	}
	return cs, s.fail(err)
}

const auditColumns = "seq, at, actor, role, action, target, result, detail"

// AppendAudit implements [store.AuditLog]. The statement takes the audit
// counter's row until it commits, so Seq follows commit order.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if err := record.CheckAuditEvent(&e); err != nil {
		return store.AuditEvent{}, err
	}
	e = record.AuditEvent(e)
	if err := ctx.Err(); err != nil {
		return store.AuditEvent{}, err
	}
	err := s.pool.QueryRow(ctx, `WITH n AS (UPDATE audit_seq SET last = last + 1 RETURNING last)
		INSERT INTO audit (`+auditColumns+`) SELECT n.last, $1, $2, $3, $4, $5, $6, $7 FROM n RETURNING seq`,
		e.At, e.Actor, e.Role, e.Action, e.Target, e.Result, e.Detail).Scan(&e.Seq)
	if err != nil {
		return store.AuditEvent{}, s.fail(err)
	}
	return e, nil
}

// ListAudit implements [store.AuditLog].
func (s *Store) ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+auditColumns+" FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", after, limitArg(limit))
	if err != nil {
		return nil, s.fail(err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AuditEvent, error) {
		var e store.AuditEvent
		err := row.Scan(&e.Seq, &e.At, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Result, &e.Detail)
		e.At = record.Time(e.At)
		return e, err
	})
	if len(evs) == 0 {
		evs = nil
	}
	return evs, s.fail(err)
}
