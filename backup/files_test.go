package backup

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/verify"
)

func write(t testing.TB, path, content string, perm os.FileMode) {
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

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tree captures every path under roots: type, mode and content.
func tree(t testing.TB, roots ...string) map[string]string {
	t.Helper()
	return treeOn(t, durable.OS{}, roots...)
}

// treeOn is tree for paths on fsys.
func treeOn(t testing.TB, fsys durable.FS, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		if _, err := fsys.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		must(t, walkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			v := fi.Mode().String()
			switch {
			case fi.Mode().IsRegular():
				b, err := readLimited(fsys, p, 1<<20)
				if err != nil {
					return err
				}
				v += " " + string(b)
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := fsys.Readlink(p)
				if err != nil {
					return err
				}
				v += " -> " + target
			}
			out[p] = v
			return nil
		}))
	}
	return out
}

func sameTree(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s (%q)", what, k, v)
		}
	}
}

// filesFixture is a Files hook over a small tree, backed up into dir, with
// a directory beside it ("outside") that a restore must never touch.
type filesFixture struct {
	root, live, cfg, outside, dir string
	hook                          *Files
}

func newFilesFixture(t *testing.T) *filesFixture {
	t.Helper()
	root := t.TempDir()
	f := &filesFixture{
		root:    root,
		live:    filepath.Join(root, "live"),
		cfg:     filepath.Join(root, "app.cfg"),
		outside: filepath.Join(root, "outside"),
		dir:     filepath.Join(root, "backup"),
	}
	write(t, filepath.Join(f.live, "journal.dat"), "sale 1\n", 0o600)
	write(t, filepath.Join(f.live, "sub", "sig.png"), "signature", 0o644)
	write(t, f.cfg, "host=a\n", 0o644)
	write(t, filepath.Join(f.outside, "passwd"), "root:x:0:0\n", 0o644)
	must(t, os.Mkdir(f.dir, 0o700))
	h, err := NewFiles("files", f.live, f.cfg)
	must(t, err)
	f.hook = h
	must(t, h.Backup(t.Context(), durable.OS{}, f.dir))
	return f
}

func (f *filesFixture) state(t *testing.T) map[string]string {
	return tree(t, f.live, f.cfg, f.outside)
}

func (f *filesFixture) readIndex(t *testing.T) *filesIndex {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, filesIndexName))
	must(t, err)
	var idx filesIndex
	must(t, json.Unmarshal(data, &idx))
	return &idx
}

func (f *filesFixture) writeIndex(t *testing.T, idx *filesIndex) {
	t.Helper()
	data, err := json.Marshal(idx)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(f.dir, filesIndexName), data, 0o600))
}

// addFile appends a file entry at path whose data is really in the
// backup, so only confinement can refuse it.
func (f *filesFixture) addFile(t *testing.T, idx *filesIndex, path, content string) {
	t.Helper()
	i := len(idx.Entries)
	write(t, filepath.Join(f.dir, filesDataDir, strconv.Itoa(i)), content, 0o600)
	idx.Entries = append(idx.Entries, fileEntry{Path: path, Type: typeFile, Mode: 0o644,
		Size: int64(len(content)), Digest: verify.DigestBytes([]byte(content))})
}

func (f *filesFixture) find(idx *filesIndex, path string) int {
	for i, e := range idx.Entries {
		if e.Path == path {
			return i
		}
	}
	return -1
}

func TestFilesIndexConfined(t *testing.T) {
	tests := []struct {
		name  string
		craft func(t *testing.T, f *filesFixture, idx *filesIndex)
	}{
		{"entry outside the configured paths", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			f.addFile(t, idx, filepath.Join(f.outside, "passwd"), "evil")
		}},
		{"entry climbing out with ..", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			f.addFile(t, idx, f.live+"/../outside/passwd", "evil")
		}},
		{"entry sharing a prefix", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			f.addFile(t, idx, f.live+"-evil", "evil")
		}},
		{"relative entry", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			f.addFile(t, idx, "outside/passwd", "evil")
		}},
		{"configured path swapped", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Paths[0] = f.outside
			idx.Entries[0].Path = f.outside
		}},
		{"extra configured path", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Paths = append(idx.Paths, f.outside)
			idx.Entries = append(idx.Entries, fileEntry{Path: f.outside, Type: typeAbsent})
		}},
		{"write through a symlink", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries = append(idx.Entries, fileEntry{Path: filepath.Join(f.live, "link"), Type: typeSymlink, Target: f.outside})
			f.addFile(t, idx, filepath.Join(f.live, "link", "passwd"), "evil")
		}},
		{"child of a file", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			f.addFile(t, idx, filepath.Join(f.live, "journal.dat", "x"), "evil")
		}},
		{"child of a configured file", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			f.addFile(t, idx, filepath.Join(f.cfg, "x"), "evil")
		}},
		{"child before its directory", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			i := f.find(idx, filepath.Join(f.live, "sub"))
			j := f.find(idx, filepath.Join(f.live, "sub", "sig.png"))
			idx.Entries[i], idx.Entries[j] = idx.Entries[j], idx.Entries[i]
		}},
		{"absent child removes a file", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries = append(idx.Entries, fileEntry{Path: filepath.Join(f.live, "journal.dat"), Type: typeAbsent})
		}},
		{"duplicate entry", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries = append(idx.Entries, idx.Entries[1])
		}},
		{"configured path missing", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries = idx.Entries[:len(idx.Entries)-1]
		}},
		{"mode out of range", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries[1].Mode = 0o17777
		}},
		{"unknown type", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries[1].Type = "fifo"
		}},
		{"bad digest", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries[f.find(idx, filepath.Join(f.live, "journal.dat"))].Digest = "md5:abc"
		}},
		{"schema", func(t *testing.T, f *filesFixture, idx *filesIndex) { idx.Schema = 2 }},
		{"empty symlink target", func(t *testing.T, f *filesFixture, idx *filesIndex) {
			idx.Entries = append(idx.Entries, fileEntry{Path: filepath.Join(f.live, "l"), Type: typeSymlink})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilesFixture(t)
			idx := f.readIndex(t)
			tt.craft(t, f, idx)
			f.writeIndex(t, idx)
			write(t, filepath.Join(f.live, "journal.dat"), "changed since", 0o600)
			before := f.state(t)
			err := f.hook.Restore(t.Context(), durable.OS{}, f.dir)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != filesIndexName {
				t.Fatalf("Restore = %v, want a CorruptError on %s", err, filesIndexName)
			}
			sameTree(t, "after a refused restore", f.state(t), before)
		})
	}
}

func TestFilesIndexMalformed(t *testing.T) {
	tests := []struct {
		name  string
		index string // "" removes it
	}{
		{"missing", ""},
		{"not JSON", "{"},
		{"unknown field", `{"schema":1,"paths":[],"entries":[],"extra":1}`},
		{"trailing data", `{"schema":1,"paths":[],"entries":[]} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilesFixture(t)
			p := filepath.Join(f.dir, filesIndexName)
			if tt.index == "" {
				must(t, os.Remove(p))
			} else {
				must(t, os.WriteFile(p, []byte(tt.index), 0o600))
			}
			before := f.state(t)
			if err := f.hook.Restore(t.Context(), durable.OS{}, f.dir); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Restore = %v, want ErrCorrupt", err)
			}
			sameTree(t, "after a refused restore", f.state(t), before)
		})
	}
}

func TestFilesDataCorruptionDetectedFirst(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, data string)
		digest  bool // the error carries a *verify.DigestMismatchError
	}{
		{"flipped byte", func(t *testing.T, data string) {
			b, err := os.ReadFile(data)
			must(t, err)
			b[0] ^= 1
			must(t, os.WriteFile(data, b, 0o600))
		}, true},
		{"truncated", func(t *testing.T, data string) { must(t, os.Truncate(data, 1)) }, false},
		{"appended", func(t *testing.T, data string) {
			fh, err := os.OpenFile(data, os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			_, err = fh.WriteString("more")
			must(t, err)
			must(t, fh.Close())
		}, false},
		{"removed", func(t *testing.T, data string) { must(t, os.Remove(data)) }, false},
		{"replaced by a symlink", func(t *testing.T, data string) {
			must(t, os.Remove(data))
			must(t, os.Symlink("/etc/hostname", data))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilesFixture(t)
			idx := f.readIndex(t)
			// Corrupt the last file's data, so a restore that did not
			// check first would already have written the others.
			last := -1
			for i, e := range idx.Entries {
				if e.Type == typeFile {
					last = i
				}
			}
			tt.corrupt(t, filepath.Join(f.dir, filesDataDir, strconv.Itoa(last)))
			write(t, filepath.Join(f.live, "journal.dat"), "changed since", 0o600)
			write(t, filepath.Join(f.live, "new"), "created since", 0o600)
			before := f.state(t)
			err := f.hook.Restore(t.Context(), durable.OS{}, f.dir)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Restore = %v, want ErrCorrupt", err)
			}
			var dm *verify.DigestMismatchError
			if errors.As(err, &dm) != tt.digest {
				t.Fatalf("Restore = %v: DigestMismatchError %v, want %v", err, !tt.digest, tt.digest)
			}
			sameTree(t, "after a refused restore", f.state(t), before)
		})
	}
}

// A directory replaced by a symlink to elsewhere must be replaced again
// by a real directory, never written through.
func TestFilesRestoreDoesNotFollowSymlinks(t *testing.T) {
	f := newFilesFixture(t)
	outside := f.state(t)
	sub := filepath.Join(f.live, "sub")
	must(t, os.RemoveAll(sub))
	must(t, os.Symlink(f.outside, sub))
	must(t, os.Remove(f.cfg))
	must(t, os.Symlink(filepath.Join(f.outside, "passwd"), f.cfg))
	must(t, os.RemoveAll(f.live+"/journal.dat"))
	must(t, os.Symlink(filepath.Join(f.outside, "passwd"), f.live+"/journal.dat"))

	must(t, f.hook.Restore(t.Context(), durable.OS{}, f.dir))
	sameTree(t, "after restore", f.state(t), outside)
}

func TestFilesRestoreRecreatesParents(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a", "b", "params.cfg")
	write(t, p, "x", 0o640)
	h, err := NewFiles("params", p)
	must(t, err)
	dir := t.TempDir()
	must(t, h.Backup(t.Context(), durable.OS{}, dir))
	must(t, os.RemoveAll(filepath.Join(root, "a")))
	must(t, h.Restore(t.Context(), durable.OS{}, dir))
	sameTree(t, "after restore", tree(t, p), map[string]string{p: "-rw-r----- x"})
}

func TestFilesKeepsSpecialModes(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "tool")
	write(t, bin, "#!/bin/sh\n", 0o755)
	if err := os.Chmod(bin, 0o755|fs.ModeSetuid); err != nil {
		t.Skip("cannot set setuid here:", err)
	}
	shared := filepath.Join(root, "spool")
	must(t, os.Mkdir(shared, 0o755))
	must(t, os.Chmod(shared, 0o777|fs.ModeSticky))
	want := tree(t, bin, shared)
	h, err := NewFiles("modes", bin, shared)
	must(t, err)
	dir := t.TempDir()
	must(t, h.Backup(t.Context(), durable.OS{}, dir))
	must(t, os.Chmod(bin, 0o644))
	must(t, os.Chmod(shared, 0o700))
	must(t, h.Restore(t.Context(), durable.OS{}, dir))
	sameTree(t, "after restore", tree(t, bin, shared), want)
}

func TestNewFilesErrors(t *testing.T) {
	tests := []struct {
		name  string
		hook  string
		paths []string
	}{
		{"bad name", "../x", []string{"/data/a"}},
		{"reserved name", "snapshot.json", []string{"/data/a"}},
		{"no paths", "ok", nil},
		{"relative", "ok", []string{"data/a"}},
		{"unclean", "ok", []string{"/data/../etc"}},
		{"trailing slash", "ok", []string{"/data/a/"}},
		{"root", "ok", []string{"/"}},
		{"duplicate", "ok", []string{"/data/a", "/data/a"}},
		{"nested", "ok", []string{"/data", "/data/a"}},
		{"nested the other way", "ok", []string{"/data/a/b", "/data/a"}},
		{"NUL", "ok", []string{"/data/a\x00b"}},
		{"empty path", "ok", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFiles(tt.hook, tt.paths...); !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewFiles = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := NewFiles("ok", "/data/a", "/data/ab"); err != nil {
		t.Fatalf("sibling paths sharing a prefix: %v", err)
	}
}

func TestFilesBackupNeedsEmptyDir(t *testing.T) {
	f := newFilesFixture(t)
	// Backing up twice into the same directory fails rather than mixing
	// two backups.
	if err := f.hook.Backup(t.Context(), durable.OS{}, f.dir); err == nil {
		t.Fatal("second Backup into the same directory succeeded")
	}
}

func TestFilesCancelledMidway(t *testing.T) {
	f := newFilesFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.hook.Restore(ctx, durable.OS{}, f.dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("Restore = %v, want context.Canceled", err)
	}
}

func TestFilesBackupIntoItself(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "data", "x"), "x", 0o600)
	h, err := NewFiles("data", filepath.Join(root, "data"))
	must(t, err)
	dir := filepath.Join(root, "data", "state", "backups", "hook")
	must(t, os.MkdirAll(dir, 0o700))
	if err := h.Backup(t.Context(), durable.OS{}, dir); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Backup into a configured directory = %v, want ErrInvalid", err)
	}
}
