package backuptest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"sync"
	"testing"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/backup/backuptest"
	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

// write makes path on fsys hold content with mode perm, creating its
// parents.
func write(t *testing.T, fsys durable.FS, path, content string, perm fs.FileMode) {
	t.Helper()
	must(t, durable.MkdirAll(fsys, filepath.Dir(path), 0o755))
	must(t, durable.WriteFile(fsys, path, []byte(content), perm))
	must(t, fsys.Chmod(path, perm))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// filesSubject is a Files hook on fsys guarding a directory tree under
// root (files, nested directories, an empty directory, a symlink, a
// read-only directory), a lone file, and two paths absent at backup time,
// one of them in a directory that does not exist yet.
func filesSubject(t *testing.T, fsys durable.FS, root, scratch string) backuptest.Subject {
	live := filepath.Join(root, "pos")
	params := filepath.Join(root, "params.cfg")
	later := filepath.Join(root, "later.db")
	deep := filepath.Join(root, "new", "dir", "x.cfg")

	write(t, fsys, filepath.Join(live, "journal.dat"), "sale 1\nsale 2\n", 0o600)
	write(t, fsys, filepath.Join(live, "sig", "2025", "0001.png"), "\x89PNG signature", 0o640)
	write(t, fsys, filepath.Join(live, "sig", "2025", "0002.png"), "\x89PNG another", 0o640)
	write(t, fsys, filepath.Join(live, "batch", "no"), "000042", 0o600)
	must(t, fsys.Mkdir(filepath.Join(live, "empty"), 0o750))
	must(t, fsys.Symlink("journal.dat", filepath.Join(live, "current")))
	write(t, fsys, filepath.Join(live, "ro", "keys.bin"), "working keys", 0o400)
	must(t, fsys.Chmod(filepath.Join(live, "ro"), 0o555))
	write(t, fsys, params, "host=10.0.0.1\n", 0o644)

	h, err := backup.NewFilesOn(fsys, "pos-data", live, params, later, deep)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fsys.(durable.OS); ok {
		t.Cleanup(func() { fsys.Chmod(filepath.Join(live, "ro"), 0o755) })
	}
	return backuptest.Subject{
		Hook: h,
		Mutate: func(t *testing.T) {
			write(t, fsys, filepath.Join(live, "journal.dat"), "sale 1\nsale 2\nsale 3 (new version)\n", 0o600)
			must(t, durable.Remove(fsys, filepath.Join(live, "sig", "2025", "0001.png")))
			write(t, fsys, filepath.Join(live, "sig", "2026", "0001.png"), "new dir, new file", 0o644)
			write(t, fsys, filepath.Join(live, "empty", "not-any-more"), "x", 0o644)
			must(t, durable.RemoveAll(fsys, filepath.Join(live, "batch")))
			write(t, fsys, filepath.Join(live, "batch"), "a file where a directory was", 0o644)
			must(t, fsys.Remove(filepath.Join(live, "current")))
			must(t, fsys.Symlink("sig", filepath.Join(live, "current")))
			must(t, fsys.Chmod(filepath.Join(live, "ro"), 0o755))
			write(t, fsys, filepath.Join(live, "ro", "extra"), "x", 0o644)
			must(t, fsys.Chmod(params, 0o666))
			write(t, fsys, later, "created by the new version", 0o644)
			write(t, fsys, deep, "and this one too", 0o644)
		},
		State: func(t *testing.T) map[string][]byte {
			return backuptest.TreeStateOn(t, fsys, live, params, later, deep)
		},
		FS:      fsys,
		Scratch: scratch,
	}
}

// TestFiles runs the suite on a Files hook over the OS's filesystem.
func TestFiles(t *testing.T) {
	backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
		return filesSubject(t, durable.OS{}, t.TempDir(), "")
	})
}

// TestFilesOnCrashFS runs the suite on a Files hook whose live data and
// store are on a filesystem that loses power, which adds the power-cut
// checks: a cut at every operation of Store.Create and Store.Restore.
func TestFilesOnCrashFS(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
				fsys := durabletest.NewCrashFS(seed)
				must(t, fsys.Mkdir("/scratch", 0o700))
				return filesSubject(t, fsys, "/data", "/scratch")
			})
		})
	}
}

// paramStore stands in for an application's parameter database.
type paramStore struct {
	mu     sync.Mutex
	params map[string]string
}

func (p *paramStore) set(k, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.params[k] = v
}

// hook is how a vendor would back the store up with HookFuncs.
func (p *paramStore) hook() backup.Hook {
	return backup.HookFuncs{
		HookName: "params",
		BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p.mu.Lock()
			data, err := json.Marshal(p.params)
			p.mu.Unlock()
			if err != nil {
				return err
			}
			return durable.WriteFile(fsys, filepath.Join(dir, "params.json"), data, 0o600)
		},
		RestoreFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := durable.ReadFile(fsys, filepath.Join(dir, "params.json"), 1<<20, errors.New("params too large"))
			if err != nil {
				return err
			}
			var m map[string]string
			if err := json.Unmarshal(data, &m); err != nil {
				return err
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			p.params = m
			return nil
		},
	}
}

func TestHookFuncs(t *testing.T) {
	backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
		p := &paramStore{params: map[string]string{"merchant": "104110057220001", "terminal": "12345678", "host": "10.0.0.1"}}
		return backuptest.Subject{
			Hook: p.hook(),
			Mutate: func(t *testing.T) {
				p.set("host", "10.0.0.2")
				p.set("tip", "on")
				p.mu.Lock()
				delete(p.params, "terminal")
				p.mu.Unlock()
			},
			State: func(t *testing.T) map[string][]byte {
				p.mu.Lock()
				defer p.mu.Unlock()
				out := make(map[string][]byte, len(p.params))
				for k, v := range maps.All(p.params) {
					out[k] = []byte(v)
				}
				return out
			},
		}
	})
}

// TestHookEmptyFiles runs the suite on a hook whose backup holds only an
// empty file (a switch kept as a file's presence), so the suite's tampering
// has no byte to change and must add a file instead.
func TestHookEmptyFiles(t *testing.T) {
	backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
		var mu sync.Mutex
		on := true
		return backuptest.Subject{
			Hook: backup.HookFuncs{
				HookName: "switch",
				BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					if !on {
						return nil
					}
					return durable.WriteFile(fsys, filepath.Join(dir, "on"), nil, 0o600)
				},
				RestoreFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					_, err := fsys.Stat(filepath.Join(dir, "on"))
					if err != nil && !errors.Is(err, fs.ErrNotExist) {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					on = err == nil
					return nil
				},
			},
			Mutate: func(t *testing.T) {
				mu.Lock()
				defer mu.Unlock()
				on = !on
			},
			State: func(t *testing.T) map[string][]byte {
				mu.Lock()
				defer mu.Unlock()
				if on {
					return map[string][]byte{"switch": []byte("on")}
				}
				return map[string][]byte{}
			},
		}
	})
}
