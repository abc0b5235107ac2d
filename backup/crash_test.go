package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

// The power-cut tests: every mutating operation of Store.Create,
// Store.Restore and Store.Prune in turn is the last before the power goes,
// under both losses and a few seeds (which decide whether a crash falls
// just before or just after its operation, and what LoseSome keeps).

var (
	crashLosses = []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome}
	crashSeeds  = []uint64{1, 2, 3, 4}
)

const (
	crashStore = "/state/backups"
	crashLive  = "/data"
)

// crashTerminal is a terminal's data on a CrashFS: the payment app's
// files, guarded by a Files hook, and a parameter file guarded by a
// HookFuncs hook that writes through the filesystems it is given.
type crashTerminal struct {
	fsys  *durabletest.CrashFS
	hooks []Hook
	roots []string
}

func newCrashTerminal(t *testing.T, seed uint64) *crashTerminal {
	t.Helper()
	fsys := durabletest.NewCrashFS(seed)
	w := func(p, content string, perm os.FileMode) {
		t.Helper()
		must(t, durable.MkdirAll(fsys, filepath.Dir(p), 0o755))
		must(t, durable.WriteFile(fsys, p, []byte(content), perm))
	}
	pos := filepath.Join(crashLive, "pos")
	w(filepath.Join(pos, "journal.dat"), "sale 1\nsale 2\n", 0o600)
	w(filepath.Join(pos, "sig", "2025", "0001.png"), "\x89PNG signature", 0o640)
	w(filepath.Join(pos, "batch", "no"), "000042", 0o600)
	must(t, fsys.Mkdir(filepath.Join(pos, "empty"), 0o750))
	must(t, fsys.Symlink("journal.dat", filepath.Join(pos, "current")))
	w(filepath.Join(pos, "ro", "keys.bin"), "working keys", 0o400)
	must(t, fsys.Chmod(filepath.Join(pos, "ro"), 0o555))
	params := filepath.Join(crashLive, "params.cfg")
	w(params, "host=10.0.0.1\n", 0o644)
	link := filepath.Join(crashLive, "active")
	must(t, fsys.Symlink("pos", link))
	later := filepath.Join(crashLive, "later.db")
	deep := filepath.Join(crashLive, "new", "dir", "x.cfg")
	files, err := NewFilesOn(fsys, "pos", pos, params, link, later, deep)
	must(t, err)

	counter := filepath.Join(crashLive, "counter")
	w(counter, "7", 0o600)
	counterHook := HookFuncs{
		HookName: "counter",
		BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
			b, err := readLimited(fsys, counter, 64)
			if err != nil {
				return err
			}
			if err := fsys.Mkdir(filepath.Join(dir, "v1"), 0o700); err != nil {
				return err
			}
			return writeNew(fsys, filepath.Join(dir, "v1", "counter"), b, 0o600, false)
		},
		RestoreFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
			b, err := readLimited(fsys, filepath.Join(dir, "v1", "counter"), 64)
			if err != nil {
				return err
			}
			return durable.WriteFile(fsys, counter, b, 0o600)
		},
	}
	fsys.Persist()
	return &crashTerminal{fsys: fsys, hooks: []Hook{files, counterHook},
		roots: []string{pos, params, link, later, deep, counter}}
}

func (c *crashTerminal) state(t *testing.T) map[string]string {
	t.Helper()
	return treeOn(t, c.fsys, c.roots...)
}

// mutate changes the live data as a new version of the app might: some
// of it durably, the rest not.
func (c *crashTerminal) mutate(t *testing.T) {
	t.Helper()
	pos := filepath.Join(crashLive, "pos")
	must(t, durable.WriteFile(c.fsys, filepath.Join(pos, "journal.dat"), []byte("v2 format"), 0o600))
	must(t, durable.RemoveAll(c.fsys, filepath.Join(pos, "batch")))
	must(t, durable.WriteFile(c.fsys, filepath.Join(pos, "batch"), []byte("a file now"), 0o644))
	must(t, durable.WriteFile(c.fsys, filepath.Join(pos, "empty", "new"), []byte("x"), 0o644))
	must(t, c.fsys.Chmod(filepath.Join(pos, "ro"), 0o755))
	must(t, c.fsys.Remove(filepath.Join(crashLive, "active")))
	must(t, c.fsys.Symlink("elsewhere", filepath.Join(crashLive, "active")))
	must(t, durable.MkdirAll(c.fsys, filepath.Join(crashLive, "new", "dir"), 0o755))
	// Not synced: a power cut may take these back.
	must(t, c.fsys.Chmod(filepath.Join(crashLive, "params.cfg"), 0o600))
	f, err := c.fsys.OpenFile(filepath.Join(crashLive, "later.db"), os.O_WRONLY|os.O_CREATE, 0o644)
	must(t, err)
	_, err = f.Write([]byte("created by v2"))
	must(t, err)
	must(t, f.Close())
	f, err = c.fsys.OpenFile(filepath.Join(crashLive, "new", "dir", "x.cfg"), os.O_WRONLY|os.O_CREATE, 0o644)
	must(t, err)
	must(t, f.Close())
	must(t, c.fsys.SyncDir(filepath.Join(crashLive, "new", "dir")))
	must(t, durable.WriteFile(c.fsys, filepath.Join(crashLive, "counter"), []byte("8"), 0o600))
}

// writeUnsynced overwrites the start of p in place without an fsync, as
// an app that trusts the page cache does: what a reader sees is not what
// a power cut leaves.
func (c *crashTerminal) writeUnsynced(t *testing.T, p, content string) {
	t.Helper()
	f, err := c.fsys.OpenFile(p, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte(content), 0)
	must(t, err)
	must(t, f.Close())
}

func (c *crashTerminal) openStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(crashStore, StoreConfig{FS: c.fsys})
	must(t, err)
	return s
}

func (c *crashTerminal) fail(t *testing.T, what string, k int, loss durabletest.Loss, format string, args ...any) {
	t.Helper()
	t.Fatalf("power cut at operation %d of %s (%s): %s\nlast operations:\n\t%s",
		k, what, loss, fmt.Sprintf(format, args...), strings.Join(c.fsys.Trace(), "\n\t"))
}

// checkStore checks a store after a restart: every directory under a
// snapshot ID verifies (List would skip one with a broken manifest), and
// nothing a crash left is there.
func checkStore(t *testing.T, s *Store) ([]string, error) {
	t.Helper()
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := s.Verify(t.Context(), id); err != nil {
			return ids, fmt.Errorf("published snapshot %s: %w", id, err)
		}
	}
	entries, err := s.fsys.ReadDir(s.dir)
	if err != nil {
		return ids, err
	}
	if len(entries) != len(ids) {
		return ids, fmt.Errorf("the store holds %d entries for %d snapshots", len(entries), len(ids))
	}
	return ids, nil
}

// crashLoop runs try with k = 1, 2, ... until a run ends before its k-th
// operation, and returns how many operations the power was cut at.
func crashLoop(t *testing.T, try func(k int) (crashed bool)) int {
	t.Helper()
	for k := 1; k < 100_000; k++ {
		if !try(k) {
			return k - 1
		}
		if t.Failed() {
			return k
		}
	}
	t.Fatal("no end to the operations")
	return 0
}

func TestStoreCreateSurvivesPowerCuts(t *testing.T) {
	total := 0
	for _, loss := range crashLosses {
		for _, seed := range crashSeeds {
			total += crashLoop(t, func(k int) bool {
				c := newCrashTerminal(t, seed)
				s := c.openStore(t)
				old, err := s.Create(t.Context(), "older", c.hooks)
				must(t, err)
				before := c.state(t)
				c.fsys.Persist()

				c.fsys.CrashAfter(k)
				snap, err := s.Create(t.Context(), "new", c.hooks)
				if !c.fsys.Crashed() {
					must(t, err)
					must(t, s.Verify(t.Context(), snap.ID))
					return false
				}
				c.fsys.Restart(loss)
				s, err = OpenStore(crashStore, StoreConfig{FS: c.fsys})
				if err != nil {
					c.fail(t, "Create", k, loss, "OpenStore: %v", err)
				}
				ids, err := checkStore(t, s)
				if err != nil {
					c.fail(t, "Create", k, loss, "%v", err)
				}
				if len(ids) == 0 || ids[0] != old.ID || len(ids) > 2 {
					c.fail(t, "Create", k, loss, "the store holds %v; want %s and maybe one more", ids, old.ID)
				}
				if got := c.state(t); !equalTree(got, before) {
					sameTree(t, "the live data", got, before)
					c.fail(t, "Create", k, loss, "the live data changed")
				}
				// The store works on: a new snapshot, restored.
				snap, err = s.Create(t.Context(), "again", c.hooks)
				if err != nil {
					c.fail(t, "Create", k, loss, "Create after the restart: %v", err)
				}
				c.mutate(t)
				if err := s.Restore(t.Context(), snap.ID, c.hooks); err != nil {
					c.fail(t, "Create", k, loss, "Restore after the restart: %v", err)
				}
				sameTree(t, "the live data restored after the restart", c.state(t), before)
				return true
			})
		}
	}
	t.Logf("the power was cut at %d operations of Store.Create", total)
}

func TestStoreRestoreSurvivesPowerCuts(t *testing.T) {
	total := 0
	for _, loss := range crashLosses {
		for _, seed := range crashSeeds {
			total += crashLoop(t, func(k int) bool {
				c := newCrashTerminal(t, seed)
				// Bytes the app wrote but never synced are what the
				// backup saves: a restore must leave them on disk.
				c.writeUnsynced(t, filepath.Join(crashLive, "pos", "sig", "2025", "0001.png"), "\x89PNG SIGNATURE")
				s := c.openStore(t)
				snap, err := s.Create(t.Context(), "before v2", c.hooks)
				must(t, err)
				want := c.state(t)
				c.mutate(t)

				c.fsys.CrashAfter(k)
				err = s.Restore(t.Context(), snap.ID, c.hooks)
				crashed := c.fsys.Crashed()
				if !crashed {
					must(t, err)
					sameTree(t, "after Restore", c.state(t), want)
				} else {
					c.fsys.Restart(loss)
					s, err = OpenStore(crashStore, StoreConfig{FS: c.fsys})
					if err != nil {
						c.fail(t, "Restore", k, loss, "OpenStore: %v", err)
					}
					if ids, err := checkStore(t, s); err != nil || len(ids) != 1 {
						c.fail(t, "Restore", k, loss, "snapshots %v: %v", ids, err)
					}
					if err := s.Restore(t.Context(), snap.ID, c.hooks); err != nil {
						c.fail(t, "Restore", k, loss, "Restore again: %v", err)
					}
					if got := c.state(t); !equalTree(got, want) {
						sameTree(t, fmt.Sprintf("after a power cut at operation %d of Restore (%s) and Restore again", k, loss), got, want)
					}
					if n, _ := tempFiles(c.fsys, crashLive); n > 0 {
						c.fail(t, "Restore", k, loss, "%d temporary files left in %s", n, crashLive)
					}
				}
				// Once Restore has returned, a power cut does not undo it.
				c.fsys.PowerCut()
				c.fsys.Restart(loss)
				if got := c.state(t); !equalTree(got, want) {
					sameTree(t, fmt.Sprintf("(crash at %d: %v) after Restore returned and the power was cut (%s)", k, crashed, loss), got, want)
				}
				return crashed
			})
		}
	}
	t.Logf("the power was cut at %d operations of Store.Restore", total)
}

func TestStorePruneSurvivesPowerCuts(t *testing.T) {
	total := 0
	for _, loss := range crashLosses {
		for _, seed := range crashSeeds {
			total += crashLoop(t, func(k int) bool {
				c := newCrashTerminal(t, seed)
				s, err := OpenStore(crashStore, StoreConfig{FS: c.fsys, Keep: 1})
				must(t, err)
				var ids []string
				for i := range 3 {
					snap, err := s.Create(t.Context(), fmt.Sprint(i), c.hooks)
					must(t, err)
					ids = append(ids, snap.ID)
				}
				c.fsys.CrashAfter(k)
				err = s.Prune(ids[0])
				if !c.fsys.Crashed() {
					must(t, err)
					return false
				}
				c.fsys.Restart(loss)
				s, err = OpenStore(crashStore, StoreConfig{FS: c.fsys})
				if err != nil {
					c.fail(t, "Prune", k, loss, "OpenStore: %v", err)
				}
				left, err := checkStore(t, s)
				if err != nil {
					c.fail(t, "Prune", k, loss, "%v", err)
				}
				if len(left) < 2 || left[0] != ids[0] || left[len(left)-1] != ids[2] {
					c.fail(t, "Prune", k, loss, "left %v of %v: the protected and the newest must stay", left, ids)
				}
				return true
			})
		}
	}
	t.Logf("the power was cut at %d operations of Store.Prune", total)
}

func equalTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// tempFiles counts the temporary files durable.Write and writeSymlink
// leave when cut short, anywhere under root, but the counter hook's: a
// Files restore removes its own, and the counter hook is not that careful.
func tempFiles(fsys durable.FS, root string) (int, error) {
	n := 0
	err := walkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name := d.Name(); strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") && !strings.HasPrefix(name, ".counter.") {
			n++
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}
