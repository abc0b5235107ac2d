package backuptest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/backup/backuptest"
)

func write(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFiles runs the suite on a Files hook guarding a directory tree
// (files, nested directories, an empty directory, a symlink, a read-only
// directory), a lone file, and two paths absent at backup time, one of
// them in a directory that does not exist yet.
func TestFiles(t *testing.T) {
	backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
		root := t.TempDir()
		live := filepath.Join(root, "pos")
		params := filepath.Join(root, "params.cfg")
		later := filepath.Join(root, "later.db")
		deep := filepath.Join(root, "new", "dir", "x.cfg")

		write(t, filepath.Join(live, "journal.dat"), "sale 1\nsale 2\n", 0o600)
		write(t, filepath.Join(live, "sig", "2025", "0001.png"), "\x89PNG signature", 0o640)
		write(t, filepath.Join(live, "sig", "2025", "0002.png"), "\x89PNG another", 0o640)
		write(t, filepath.Join(live, "batch", "no"), "000042", 0o600)
		must(t, os.Mkdir(filepath.Join(live, "empty"), 0o750))
		must(t, os.Symlink("journal.dat", filepath.Join(live, "current")))
		write(t, filepath.Join(live, "ro", "keys.bin"), "working keys", 0o400)
		must(t, os.Chmod(filepath.Join(live, "ro"), 0o555))
		write(t, params, "host=10.0.0.1\n", 0o644)

		h, err := backup.NewFiles("pos-data", live, params, later, deep)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(live, "ro"), 0o755) })
		return backuptest.Subject{
			Hook: h,
			Mutate: func(t *testing.T) {
				write(t, filepath.Join(live, "journal.dat"), "sale 1\nsale 2\nsale 3 (new version)\n", 0o600)
				must(t, os.Remove(filepath.Join(live, "sig", "2025", "0001.png")))
				write(t, filepath.Join(live, "sig", "2026", "0001.png"), "new dir, new file", 0o644)
				write(t, filepath.Join(live, "empty", "not-any-more"), "x", 0o644)
				must(t, os.RemoveAll(filepath.Join(live, "batch")))
				write(t, filepath.Join(live, "batch"), "a file where a directory was", 0o644)
				must(t, os.Remove(filepath.Join(live, "current")))
				must(t, os.Symlink("sig", filepath.Join(live, "current")))
				must(t, os.Chmod(filepath.Join(live, "ro"), 0o755))
				write(t, filepath.Join(live, "ro", "extra"), "x", 0o644)
				must(t, os.Chmod(params, 0o666))
				write(t, later, "created by the new version", 0o644)
				write(t, deep, "and this one too", 0o644)
			},
			State: func(t *testing.T) map[string][]byte {
				return backuptest.TreeState(t, live, params, later, deep)
			},
		}
	})
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
		BackupFunc: func(ctx context.Context, dir string) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p.mu.Lock()
			data, err := json.Marshal(p.params)
			p.mu.Unlock()
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "params.json"), data, 0o600)
		},
		RestoreFunc: func(ctx context.Context, dir string) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := os.ReadFile(filepath.Join(dir, "params.json"))
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
				BackupFunc: func(ctx context.Context, dir string) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					if !on {
						return nil
					}
					return os.WriteFile(filepath.Join(dir, "on"), nil, 0o600)
				},
				RestoreFunc: func(ctx context.Context, dir string) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					_, err := os.Stat(filepath.Join(dir, "on"))
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
