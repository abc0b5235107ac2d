package update

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
)

// outbox holds reports until the server has them. A report is written
// before the journal moves past the outcome it reports, and deleted only
// once the server acknowledged it; its ID makes a resend harmless.
type outbox struct {
	fs  durable.FS
	dir string
	log *slog.Logger
	mu  sync.Mutex // one flush or add at a time
}

const maxOutbox = 256

func (o *outbox) path(id string) string {
	return filepath.Join(o.dir, strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, id)+".json")
}

func (o *outbox) add(r *transport.ReportRequest) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	waiting, err := o.list()
	if err != nil {
		return err
	}
	seq := uint64(1)
	if n := len(waiting); n > 0 {
		seq = waiting[n-1].Seq + 1
	}
	b, err := json.Marshal(queued{Seq: seq, Report: *r})
	if err != nil {
		return err
	}
	if len(waiting) >= maxOutbox {
		// Never let reports fill the disk of a terminal that is offline for
		// months: drop the oldest refusal (they repeat), else the oldest.
		drop := waiting[0]
		for _, q := range waiting {
			if q.Report.Outcome == transport.OutcomeRefused {
				drop = q
				break
			}
		}
		o.fs.Remove(drop.path)
	}
	return durable.WriteFile(o.fs, o.path(r.ID), b, 0o600)
}

// queued is a report in the outbox, numbered in the order it was queued.
type queued struct {
	Seq    uint64                  `json:"seq"`
	Report transport.ReportRequest `json:"report"`
	path   string
}

// list reads the queued reports, in the order they were queued. A file
// that does not read as one (a torn write cannot happen, but a corrupt
// disk can) is dropped.
func (o *outbox) list() ([]queued, error) {
	entries, err := o.fs.ReadDir(o.dir)
	if err != nil {
		return nil, err
	}
	var out []queued
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(o.dir, e.Name())
		b, err := durable.ReadFile(o.fs, path, transport.MaxRequestSize, transport.ErrTooLarge)
		if err != nil && !errors.Is(err, transport.ErrTooLarge) && !errors.Is(err, durable.ErrNotRegular) {
			return nil, err // the disk, not the report: try again later
		}
		var q queued
		if err == nil {
			err = jsonwire.Unmarshal(b, &q)
		}
		if err != nil {
			o.log.Warn("update: dropping unreadable report", "file", e.Name(), "err", err)
			o.fs.Remove(path)
			continue
		}
		q.path = path
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b queued) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), strings.Compare(a.Report.ID, b.Report.ID))
	})
	return out, nil
}

// flush sends every report, oldest first, and stops at the first transient
// failure: the rest wait for the network.
func (o *outbox) flush(ctx context.Context, src Source) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	reports, err := o.list()
	if err != nil {
		return err
	}
	sent := 0
	for _, q := range reports {
		if _, err := src.Report(ctx, &q.Report); err != nil {
			if errors.Is(err, transport.ErrBadRequest) || errors.Is(err, transport.ErrTooLarge) {
				// The server will never accept it: keeping it would block
				// every later report.
				o.log.Warn("update: server refused report, dropping it", "id", q.Report.ID, "err", err)
				o.fs.Remove(q.path)
				continue
			}
			return fmt.Errorf("update: sending report %s: %w", q.Report.ID, err)
		}
		if err := o.fs.Remove(q.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		sent++
	}
	if sent == 0 {
		return nil
	}
	return o.fs.SyncDir(o.dir)
}
