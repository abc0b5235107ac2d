package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/upkeephq/upkeep/internal/atomicfile"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
)

// outbox holds reports until the server has them. A report is written
// before the journal moves past the outcome it reports, and deleted only
// once the server acknowledged it; its ID makes a resend harmless.
type outbox struct {
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
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	names, err := o.list()
	if err != nil {
		return err
	}
	if len(names) >= maxOutbox {
		// Never let reports fill the disk of a terminal that is offline for
		// months: drop the oldest refusal (they repeat), else the oldest.
		drop := names[0]
		for _, n := range names {
			if strings.HasSuffix(n, "-"+string(transport.OutcomeRefused)+".json") {
				drop = n
				break
			}
		}
		os.Remove(filepath.Join(o.dir, drop))
	}
	return atomicfile.WriteFile(o.path(r.ID), b, 0o600)
}

// list returns the outbox's file names, oldest report first.
func (o *outbox) list() ([]string, error) {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, err
	}
	type item struct {
		name string
		mod  int64
	}
	var items []item
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		items = append(items, item{e.Name(), info.ModTime().UnixNano()})
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.mod != b.mod {
			if a.mod < b.mod {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.name
	}
	return names, nil
}

// flush sends every report, oldest first, and stops at the first transient
// failure: the rest wait for the network.
func (o *outbox) flush(ctx context.Context, src Source) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	names, err := o.list()
	if err != nil {
		return err
	}
	for _, name := range names {
		path := filepath.Join(o.dir, name)
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		var r transport.ReportRequest
		err = jsonwire.Decode(f, transport.MaxRequestSize, &r)
		f.Close()
		if err != nil {
			o.log.Warn("update: dropping unreadable report", "file", name, "err", err)
			os.Remove(path)
			continue
		}
		if _, err := src.Report(ctx, &r); err != nil {
			if errors.Is(err, transport.ErrBadRequest) || errors.Is(err, transport.ErrTooLarge) {
				// The server will never accept it: keeping it would block
				// every later report.
				o.log.Warn("update: server refused report, dropping it", "id", r.ID, "err", err)
				os.Remove(path)
				continue
			}
			return fmt.Errorf("update: sending report %s: %w", r.ID, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return atomicfile.SyncDir(o.dir)
}
