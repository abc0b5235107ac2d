// Package boltstore is the embedded fleet store, the update server's
// default: one file in a data directory, written through go.etcd.io/bbolt,
// so one binary runs with nothing else beside it.
//
// Writes are serialized and each transaction is made durable (fsync)
// before it returns, which is why heartbeats come in batches
// ([store.HeartbeatWriter]): one commit per batch, not per beat. The file
// is locked while open: one process at a time, so a server with replicas
// needs pgstore.
//
// Layout (version 1): buckets of JSON records keyed by ID, index buckets
// (serial → device ID, token hash → device ID, device+report ID → Seq),
// reports under device ID + big-endian Seq, and a counter per (rollout,
// phase, reason) kept in step with every device state written, so counting
// a rollout's devices reads a handful of keys.
package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/internal/record"
)

// FileName is the store's file in its data directory.
const FileName = "fleet.db"

// DefaultTimeout is how long Open waits for another process to let go of
// the file.
const DefaultTimeout = 5 * time.Second

// schemaVersion is the layout this package writes.
const schemaVersion = 1

// Options configure [Open]. The zero value is the durable default.
type Options struct {
	// Timeout is how long Open waits for the file's lock, held by another
	// process that has it open; 0 means [DefaultTimeout].
	Timeout time.Duration
	// NoSync skips the fsync of each commit: much faster, and a power cut
	// can lose or corrupt what was written. For tests and benchmarks only.
	NoSync bool
	// Logger receives the store's log; nil discards.
	Logger *slog.Logger
}

// Store is a [store.Store] in a bbolt file. It is safe for concurrent use.
type Store struct {
	db  *bolt.DB
	log *slog.Logger
}

var _ store.Store = (*Store)(nil)

var (
	bTerminals = []byte("terminals")
	bSerials   = []byte("serials")
	bTokens    = []byte("tokens")
	bReports   = []byte("reports")
	bReportIDs = []byte("report_ids")
	bReleases  = []byte("releases")
	bRollouts  = []byte("rollouts")
	bRDevices  = []byte("rollout_devices")
	bRCounts   = []byte("rollout_counts")
	bAudit     = []byte("audit")
	bMeta      = []byte("meta")
	kVersion   = []byte("version")
)

var buckets = [][]byte{bTerminals, bSerials, bTokens, bReports, bReportIDs, bReleases, bRollouts, bRDevices, bRCounts, bAudit, bMeta}

// Open opens, or creates, the store in directory dir (created 0700 if
// need be).
func Open(dir string, opts Options) (*Store, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("boltstore: negative Options.Timeout %v", opts.Timeout)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cmp.Or(opts.Timeout, DefaultTimeout), NoSync: opts.NoSync,
		FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s is in use by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		v := meta.Get(kVersion)
		switch {
		case v == nil:
			return meta.Put(kVersion, u64(schemaVersion))
		case len(v) != 8:
			return fmt.Errorf("boltstore: %s has a malformed version", path)
		case binary.BigEndian.Uint64(v) > schemaVersion:
			return fmt.Errorf("boltstore: %s has layout version %d; this program knows up to %d", path, binary.BigEndian.Uint64(v), schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	log.Info("boltstore: opened", "path", path)
	return &Store{db: db, log: log}, nil
}

// Close closes the file. Calls after Close return store.ErrClosed.
func (s *Store) Close() error { return s.db.Close() }

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// key joins parts with NUL bytes, which keys never contain.
func key(parts ...string) []byte {
	return []byte(strings.Join(parts, "\x00"))
}

// view and update run fn in a transaction after checking ctx, and map
// bbolt's errors to the store's.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapErr(s.db.View(fn))
}

func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapErr(s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return ctx.Err() // canceled meanwhile: roll back
	}))
}

func mapErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	}
	return err
}

func get[T any](b *bolt.Bucket, k []byte, kind, errKey string) (T, error) {
	var v T
	data := b.Get(k)
	if data == nil {
		return v, &store.Error{Kind: kind, Key: errKey, Err: store.ErrNotFound}
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("boltstore: %s %q is corrupt: %w", kind, errKey, err)
	}
	return v, nil
}

func put(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// CreateTerminal implements [store.Fleet].
func (s *Store) CreateTerminal(ctx context.Context, t store.Terminal) error {
	if err := record.CheckTerminal(&t); err != nil {
		return err
	}
	t = record.Terminal(t)
	return s.update(ctx, func(tx *bolt.Tx) error {
		switch {
		case tx.Bucket(bTerminals).Get([]byte(t.ID)) != nil:
			return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "device ID taken")
		case tx.Bucket(bSerials).Get([]byte(t.Serial)) != nil:
			return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "serial %q taken", t.Serial)
		case len(t.TokenHash) > 0 && tx.Bucket(bTokens).Get(t.TokenHash) != nil:
			return store.Errorf(store.KindTerminal, t.ID, store.ErrExists, "token hash taken")
		}
		if err := tx.Bucket(bSerials).Put([]byte(t.Serial), []byte(t.ID)); err != nil {
			return err
		}
		if len(t.TokenHash) > 0 {
			if err := tx.Bucket(bTokens).Put(t.TokenHash, []byte(t.ID)); err != nil {
				return err
			}
		}
		return put(tx.Bucket(bTerminals), []byte(t.ID), t)
	})
}

// Terminal implements [store.Fleet].
func (s *Store) Terminal(ctx context.Context, deviceID string) (store.Terminal, error) {
	var t store.Terminal
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		t, err = get[store.Terminal](tx.Bucket(bTerminals), []byte(deviceID), store.KindTerminal, deviceID)
		return err
	})
	return record.Terminal(t), err
}

// TerminalBySerial implements [store.Fleet].
func (s *Store) TerminalBySerial(ctx context.Context, serial string) (store.Terminal, error) {
	var t store.Terminal
	err := s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bSerials).Get([]byte(serial))
		if id == nil {
			return store.Errorf(store.KindTerminal, "", store.ErrNotFound, "no serial %q", serial)
		}
		var err error
		t, err = get[store.Terminal](tx.Bucket(bTerminals), id, store.KindTerminal, string(id))
		return err
	})
	return record.Terminal(t), err
}

// TokenOwner implements [store.Fleet].
func (s *Store) TokenOwner(ctx context.Context, tokenHash []byte) (string, error) {
	var id string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bTokens).Get(tokenHash)
		if v == nil || len(tokenHash) == 0 {
			return store.Errorf(store.KindTerminal, "", store.ErrNotFound, "unknown token")
		}
		id = string(v)
		return nil
	})
	return id, err
}

// UpdateTerminal implements [store.Fleet].
func (s *Store) UpdateTerminal(ctx context.Context, deviceID string, update func(*store.Terminal) error) (store.Terminal, error) {
	var t store.Terminal
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		t, err = updateTerminal(tx, deviceID, update)
		return err
	})
	if err != nil {
		return store.Terminal{}, err
	}
	return t, nil
}

func updateTerminal(tx *bolt.Tx, deviceID string, fn func(*store.Terminal) error) (store.Terminal, error) {
	old, err := get[store.Terminal](tx.Bucket(bTerminals), []byte(deviceID), store.KindTerminal, deviceID)
	if err != nil {
		return store.Terminal{}, err
	}
	t, err := record.ApplyTerminal(deviceID, old, fn)
	if err != nil {
		return store.Terminal{}, err
	}
	if !bytes.Equal(t.TokenHash, old.TokenHash) {
		tokens := tx.Bucket(bTokens)
		if len(t.TokenHash) > 0 {
			if owner := tokens.Get(t.TokenHash); owner != nil && string(owner) != deviceID {
				return store.Terminal{}, store.Errorf(store.KindTerminal, deviceID, store.ErrExists, "token hash taken")
			}
			if err := tokens.Put(t.TokenHash, []byte(deviceID)); err != nil {
				return store.Terminal{}, err
			}
		}
		if len(old.TokenHash) > 0 {
			if err := tokens.Delete(old.TokenHash); err != nil {
				return store.Terminal{}, err
			}
		}
	}
	return t, put(tx.Bucket(bTerminals), []byte(deviceID), t)
}

// ListTerminals implements [store.Fleet].
func (s *Store) ListTerminals(ctx context.Context, after string, limit int) ([]store.Terminal, error) {
	var out []store.Terminal
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bTerminals).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var t store.Terminal
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("boltstore: terminal %q is corrupt: %w", k, err)
			}
			out = append(out, record.Terminal(t))
		}
		return nil
	})
	return out, err
}

// Heartbeats implements [store.HeartbeatWriter]: the batch is one
// transaction, so one fsync.
func (s *Store) Heartbeats(ctx context.Context, beats []store.Heartbeat) ([]store.HeartbeatResult, error) {
	res := make([]store.HeartbeatResult, len(beats))
	err := s.update(ctx, func(tx *bolt.Tx) error {
		terms := tx.Bucket(bTerminals)
		for i, b := range beats {
			res[i] = store.HeartbeatResult{}
			if i%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := record.CheckHeartbeat(&b); err != nil {
				res[i].Err = err
				continue
			}
			t, err := get[store.Terminal](terms, []byte(b.DeviceID), store.KindTerminal, b.DeviceID)
			if errors.Is(err, store.ErrNotFound) {
				res[i].Err = err
				continue
			}
			if err != nil {
				return err
			}
			res[i].Directives = record.ApplyHeartbeat(&t, record.Heartbeat(b))
			if err := put(terms, []byte(b.DeviceID), t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AddReport implements [store.Fleet].
func (s *Store) AddReport(ctx context.Context, r store.Report, update func(*store.Terminal) error) (store.Report, error) {
	if err := record.CheckReport(&r); err != nil {
		return store.Report{}, err
	}
	r = record.Report(r)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bTerminals).Get([]byte(r.DeviceID)) == nil {
			return &store.Error{Kind: store.KindTerminal, Key: r.DeviceID, Err: store.ErrNotFound}
		}
		ids := tx.Bucket(bReportIDs)
		idKey := key(r.DeviceID, r.ID)
		if ids.Get(idKey) != nil {
			return store.Errorf(store.KindReport, r.DeviceID+"/"+r.ID, store.ErrExists, "duplicate report")
		}
		if update != nil {
			if _, err := updateTerminal(tx, r.DeviceID, update); err != nil {
				return err
			}
		}
		reports := tx.Bucket(bReports)
		seq, err := reports.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = int64(seq)
		if err := ids.Put(idKey, u64(seq)); err != nil {
			return err
		}
		return put(reports, append(key(r.DeviceID, ""), u64(seq)...), r)
	})
	if err != nil {
		return store.Report{}, err
	}
	return r, nil
}

// ListReports implements [store.Fleet].
func (s *Store) ListReports(ctx context.Context, deviceID string, limit int) ([]store.Report, error) {
	var out []store.Report
	err := s.view(ctx, func(tx *bolt.Tx) error {
		prefix := key(deviceID, "")
		c := tx.Bucket(bReports).Cursor()
		// Walk back from the end of the device's range.
		end := append(slices.Clone(prefix[:len(prefix)-1]), 1)
		k, v := c.Seek(end)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var r store.Report
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("boltstore: report %q is corrupt: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	slices.Reverse(out)
	return out, err
}

// PutRelease implements [store.Catalog].
func (s *Store) PutRelease(ctx context.Context, r store.Release) (store.Release, error) {
	if err := record.CheckRelease(&r); err != nil {
		return store.Release{}, err
	}
	r = record.Release(r)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bReleases)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = int64(seq)
		return put(b, key(r.ID, r.Channel), r)
	})
	if err != nil {
		return store.Release{}, err
	}
	return record.Release(r), nil
}

// Release implements [store.Catalog].
func (s *Store) Release(ctx context.Context, id, channel string) (store.Release, error) {
	var r store.Release
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = get[store.Release](tx.Bucket(bReleases), key(id, channel), store.KindRelease, record.ReleaseKey(id, channel))
		return err
	})
	return record.Release(r), err
}

// ListReleases implements [store.Catalog].
func (s *Store) ListReleases(ctx context.Context) ([]store.Release, error) {
	var out []store.Release
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bReleases).ForEach(func(k, v []byte) error {
			var r store.Release
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("boltstore: release %q is corrupt: %w", k, err)
			}
			out = append(out, record.Release(r))
			return nil
		})
	})
	slices.SortFunc(out, func(a, b store.Release) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, err
}

// DeleteRelease implements [store.Catalog].
func (s *Store) DeleteRelease(ctx context.Context, id, channel string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bReleases)
		k := key(id, channel)
		if b.Get(k) == nil {
			return &store.Error{Kind: store.KindRelease, Key: record.ReleaseKey(id, channel), Err: store.ErrNotFound}
		}
		return b.Delete(k)
	})
}

// CreateRollout implements [store.Rollouts].
func (s *Store) CreateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	if err := record.CheckRollout(&r); err != nil {
		return store.Rollout{}, err
	}
	r = record.Rollout(r)
	r.Version = 1
	r.StartsWindow, r.Starts = time.Time{}, 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bRollouts)
		if b.Get([]byte(r.ID)) != nil {
			return store.Errorf(store.KindRollout, r.ID, store.ErrExists, "")
		}
		return put(b, []byte(r.ID), r)
	})
	if err != nil {
		return store.Rollout{}, err
	}
	return record.Rollout(r), nil
}

// Rollout implements [store.Rollouts].
func (s *Store) Rollout(ctx context.Context, id string) (store.Rollout, error) {
	var r store.Rollout
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = get[store.Rollout](tx.Bucket(bRollouts), []byte(id), store.KindRollout, id)
		return err
	})
	return record.Rollout(r), err
}

// ListRollouts implements [store.Rollouts].
func (s *Store) ListRollouts(ctx context.Context) ([]store.Rollout, error) {
	var out []store.Rollout
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bRollouts).ForEach(func(k, v []byte) error {
			var r store.Rollout
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("boltstore: rollout %q is corrupt: %w", k, err)
			}
			out = append(out, record.Rollout(r))
			return nil
		})
	})
	return out, err
}

// UpdateRollout implements [store.Rollouts].
func (s *Store) UpdateRollout(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	if err := record.CheckRollout(&r); err != nil {
		return store.Rollout{}, err
	}
	r = record.Rollout(r)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bRollouts)
		old, err := get[store.Rollout](b, []byte(r.ID), store.KindRollout, r.ID)
		if err != nil {
			return err
		}
		if old.Version != r.Version {
			return &store.Error{Kind: store.KindRollout, Key: r.ID, Err: store.ErrConflict, Version: old.Version}
		}
		r.Version++
		r.CreatedAt = old.CreatedAt
		r.StartsWindow, r.Starts = old.StartsWindow, old.Starts
		return put(b, []byte(r.ID), r)
	})
	if err != nil {
		return store.Rollout{}, err
	}
	return record.Rollout(r), nil
}

// PutRolloutDevices implements [store.Rollouts]. It keeps the counters of
// each (rollout, phase, reason) in step.
func (s *Store) PutRolloutDevices(ctx context.Context, states []store.RolloutDevice) error {
	for i := range states {
		if err := record.CheckRolloutDevice(&states[i]); err != nil {
			return err
		}
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		rollouts, devs, counts := tx.Bucket(bRollouts), tx.Bucket(bRDevices), tx.Bucket(bRCounts)
		for _, d := range states {
			if rollouts.Get([]byte(d.RolloutID)) == nil {
				return &store.Error{Kind: store.KindRollout, Key: d.RolloutID, Err: store.ErrNotFound}
			}
		}
		for _, d := range states {
			if err := putDevice(devs, counts, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// getDevice reads a device's state, and reports whether it has one.
func getDevice(devs *bolt.Bucket, rolloutID, deviceID string) (store.RolloutDevice, bool, error) {
	k := key(rolloutID, deviceID)
	v := devs.Get(k)
	if v == nil {
		return store.RolloutDevice{}, false, nil
	}
	var d store.RolloutDevice
	if err := json.Unmarshal(v, &d); err != nil {
		return d, false, fmt.Errorf("boltstore: rollout device %q is corrupt: %w", k, err)
	}
	return d, true, nil
}

// putDevice writes a device's state and keeps the counters in step.
func putDevice(devs, counts *bolt.Bucket, d store.RolloutDevice) error {
	d = record.RolloutDevice(d)
	old, ok, err := getDevice(devs, d.RolloutID, d.DeviceID)
	if err != nil {
		return err
	}
	if ok {
		if err := addCount(counts, key(old.RolloutID, string(old.Phase), old.Reason), -1); err != nil {
			return err
		}
	}
	if err := addCount(counts, key(d.RolloutID, string(d.Phase), d.Reason), 1); err != nil {
		return err
	}
	return put(devs, key(d.RolloutID, d.DeviceID), d)
}

// ChangeRolloutDevices implements [store.Rollouts].
func (s *Store) ChangeRolloutDevices(ctx context.Context, changes []store.DeviceChange) ([]bool, error) {
	for i := range changes {
		if err := record.CheckDeviceChange(&changes[i]); err != nil {
			return nil, err
		}
	}
	var applied []bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		rollouts, devs, counts := tx.Bucket(bRollouts), tx.Bucket(bRDevices), tx.Bucket(bRCounts)
		for _, c := range changes {
			if rollouts.Get([]byte(c.State.RolloutID)) == nil {
				return &store.Error{Kind: store.KindRollout, Key: c.State.RolloutID, Err: store.ErrNotFound}
			}
		}
		applied = make([]bool, len(changes))
		for i, c := range changes {
			old, ok, err := getDevice(devs, c.State.RolloutID, c.State.DeviceID)
			if err != nil {
				return err
			}
			if !record.Holds(c, old, ok) {
				continue
			}
			if err := putDevice(devs, counts, c.State); err != nil {
				return err
			}
			applied[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// ClaimRolloutDevice implements [store.Rollouts]: bbolt has one writer at
// a time, so the caps are read and the claim written in one transaction.
func (s *Store) ClaimRolloutDevice(ctx context.Context, c store.Claim) error {
	if err := record.CheckClaim(&c); err != nil {
		return err
	}
	id := c.State.RolloutID
	return s.update(ctx, func(tx *bolt.Tx) error {
		rollouts, devs, counts := tx.Bucket(bRollouts), tx.Bucket(bRDevices), tx.Bucket(bRCounts)
		r, err := get[store.Rollout](rollouts, []byte(id), store.KindRollout, id)
		if err != nil {
			return err
		}
		old, ok, err := getDevice(devs, id, c.State.DeviceID)
		if err != nil {
			return err
		}
		if !record.Holds(c.DeviceChange, old, ok) {
			return record.Conflict(c.DeviceChange)
		}
		if c.MaxInFlight > 0 {
			var n int64
			for _, p := range c.InFlight {
				prefix := key(id, string(p), "")
				cur := counts.Cursor()
				for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
					if len(v) == 8 {
						n += int64(binary.BigEndian.Uint64(v))
					}
				}
			}
			if n >= int64(c.MaxInFlight) {
				return record.InFlightLimit(id, n, int64(c.MaxInFlight))
			}
		}
		if c.MaxStarts > 0 {
			w, n := record.Starts(r.StartsWindow, r.Starts, c.Window)
			if n >= c.MaxStarts {
				return record.StartsLimit(id, w, n, c.MaxStarts)
			}
			r.StartsWindow, r.Starts = w, n+1
			if err := put(rollouts, []byte(id), r); err != nil {
				return err
			}
		}
		return putDevice(devs, counts, c.State)
	})
}

func addCount(b *bolt.Bucket, k []byte, delta int64) error {
	var n int64
	if v := b.Get(k); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	if n += delta; n <= 0 {
		return b.Delete(k)
	}
	return b.Put(k, u64(uint64(n)))
}

// RolloutDevice implements [store.Rollouts].
func (s *Store) RolloutDevice(ctx context.Context, rolloutID, deviceID string) (store.RolloutDevice, error) {
	var d store.RolloutDevice
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		d, err = get[store.RolloutDevice](tx.Bucket(bRDevices), key(rolloutID, deviceID), store.KindRolloutDevice, record.RolloutDeviceKey(rolloutID, deviceID))
		return err
	})
	return record.RolloutDevice(d), err
}

// ListRolloutDevices implements [store.Rollouts]. With a phase, it reads
// the rollout's states and skips the others.
func (s *Store) ListRolloutDevices(ctx context.Context, rolloutID string, phase store.Phase, after string, limit int) ([]store.RolloutDevice, error) {
	var out []store.RolloutDevice
	err := s.view(ctx, func(tx *bolt.Tx) error {
		prefix := key(rolloutID, "")
		c := tx.Bucket(bRDevices).Cursor()
		start := key(rolloutID, after)
		k, v := c.Seek(start)
		if after != "" && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var d store.RolloutDevice
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("boltstore: rollout device %q is corrupt: %w", k, err)
			}
			if phase == "" || d.Phase == phase {
				out = append(out, record.RolloutDevice(d))
			}
		}
		return nil
	})
	return out, err
}

// CountRolloutDevices implements [store.Rollouts]: it reads the counters,
// not the states.
func (s *Store) CountRolloutDevices(ctx context.Context, rolloutID string) ([]store.PhaseCount, error) {
	var out []store.PhaseCount
	err := s.view(ctx, func(tx *bolt.Tx) error {
		prefix := key(rolloutID, "")
		c := tx.Bucket(bRCounts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			phase, reason, ok := strings.Cut(string(k[len(prefix):]), "\x00")
			if !ok || len(v) != 8 {
				return fmt.Errorf("boltstore: rollout counter %q is corrupt", k)
			}
			out = append(out, store.PhaseCount{Phase: store.Phase(phase), Reason: reason, Count: int64(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	// Keys sort phase NUL reason, which is phase then reason.
	return out, err
}

// AppendAudit implements [store.AuditLog].
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if err := record.CheckAuditEvent(&e); err != nil {
		return store.AuditEvent{}, err
	}
	e = record.AuditEvent(e)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = int64(seq)
		return put(b, u64(seq), e)
	})
	if err != nil {
		return store.AuditEvent{}, err
	}
	return e, nil
}

// ListAudit implements [store.AuditLog].
func (s *Store) ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		for k, v := c.Seek(u64(uint64(max(after, 0)) + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var e store.AuditEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("boltstore: audit event %x is corrupt: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
