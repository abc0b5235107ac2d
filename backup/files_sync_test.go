package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/upkeephq/upkeep/durable"
)

// syncFixture is a Files hook over five configured paths, each in a
// directory of its own so that the test can tell which parent was synced:
//
//	<root>/a/gone       absent when backed up
//	<root>/b/link       a symlink
//	<root>/c/app.cfg    a file, mode 0644
//	<root>/d/new/x.cfg  a file whose parents a restore may have to create
//	<root>/e/f/y.cfg    a file, last, whose parent a test can break
type syncFixture struct {
	root, gone, link, cfg, deep, last, dir string
	hook                                   *Files
	dirs, files                            []string // what the restore synced
}

func newSyncFixture(t *testing.T) *syncFixture {
	t.Helper()
	root := t.TempDir()
	f := &syncFixture{
		root: root,
		gone: filepath.Join(root, "a", "gone"),
		link: filepath.Join(root, "b", "link"),
		cfg:  filepath.Join(root, "c", "app.cfg"),
		deep: filepath.Join(root, "d", "new", "x.cfg"),
		last: filepath.Join(root, "e", "f", "y.cfg"),
		dir:  filepath.Join(root, "backup"),
	}
	must(t, os.MkdirAll(filepath.Dir(f.gone), 0o755))
	must(t, os.MkdirAll(filepath.Dir(f.link), 0o755))
	must(t, os.Symlink("target", f.link))
	write(t, f.cfg, "host=a\n", 0o644)
	write(t, f.deep, "x\n", 0o644)
	write(t, f.last, "y\n", 0o644)
	must(t, os.Mkdir(f.dir, 0o700))
	h, err := NewFiles("files", f.gone, f.link, f.cfg, f.deep, f.last)
	must(t, err)
	must(t, h.Backup(t.Context(), durable.OS{}, f.dir))
	h.syncDir = func(d string) error {
		f.dirs = append(f.dirs, d)
		return (durable.OS{}).SyncDir(d)
	}
	h.syncFile = func(file durable.File) error {
		f.files = append(f.files, file.Name())
		return file.Sync()
	}
	f.hook = h
	return f
}

// TestFilesRestoreSyncs is the regression test for restores whose changes
// were never made durable: directories were synced only at the very end,
// which an error or a cancellation skipped, and a rerun, finding the
// paths already right, synced nothing; a file whose mode alone was
// restored had its directory synced instead of itself; a file left in
// place because its bytes were right was not synced, though they might
// not be on disk yet.
func TestFilesRestoreSyncs(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(t *testing.T, f *syncFixture)
		wantErr   bool
		wantDirs  func(f *syncFixture) []string // synced, at least
		wantFiles func(f *syncFixture) []string // synced, exactly
	}{
		{
			// A rerun after a restore cut short: everything is already
			// right, but the earlier run's changes may not be durable,
			// nor the bytes the application wrote before the backup.
			name: "rerun on restored data syncs every root's parent and every kept file",
			wantDirs: func(f *syncFixture) []string {
				return []string{filepath.Dir(f.gone), filepath.Dir(f.link), filepath.Dir(f.cfg),
					filepath.Dir(f.deep), filepath.Dir(f.last)}
			},
			wantFiles: func(f *syncFixture) []string { return []string{f.cfg, f.deep, f.last} },
		},
		{
			name: "an error midway still syncs what changed before it",
			mutate: func(t *testing.T, f *syncFixture) {
				write(t, f.gone, "created since", 0o644)
				// y.cfg's parent becomes a file: writing y.cfg fails.
				must(t, os.RemoveAll(filepath.Dir(f.last)))
				write(t, filepath.Dir(f.last), "in the way", 0o644)
			},
			wantErr:   true,
			wantDirs:  func(f *syncFixture) []string { return []string{filepath.Dir(f.gone)} },
			wantFiles: func(f *syncFixture) []string { return []string{f.cfg, f.deep} },
		},
		{
			name: "recreated parents are synced",
			mutate: func(t *testing.T, f *syncFixture) {
				must(t, os.RemoveAll(filepath.Dir(f.deep)))
			},
			wantDirs: func(f *syncFixture) []string {
				return []string{filepath.Dir(filepath.Dir(f.deep)), filepath.Dir(f.deep)}
			},
			// x.cfg is rewritten (durable.Write syncs it), not kept.
			wantFiles: func(f *syncFixture) []string { return []string{f.cfg, f.last} },
		},
		{
			name:      "a mode restored alone syncs the file",
			mutate:    func(t *testing.T, f *syncFixture) { must(t, os.Chmod(f.cfg, 0o600)) },
			wantDirs:  func(f *syncFixture) []string { return []string{filepath.Dir(f.cfg)} },
			wantFiles: func(f *syncFixture) []string { return []string{f.cfg, f.deep, f.last} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSyncFixture(t)
			if tt.mutate != nil {
				tt.mutate(t, f)
			}
			err := f.hook.Restore(t.Context(), durable.OS{}, f.dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Restore = %v, want an error: %v", err, tt.wantErr)
			}
			for _, d := range tt.wantDirs(f) {
				if !slices.Contains(f.dirs, d) {
					t.Errorf("%s was not synced; synced %q", d, f.dirs)
				}
			}
			var wantFiles []string
			if tt.wantFiles != nil {
				wantFiles = tt.wantFiles(f)
			}
			if !slices.Equal(f.files, wantFiles) {
				t.Errorf("files synced %q, want %q", f.files, wantFiles)
			}
		})
	}
}

func TestFilesRestoreModeOnly(t *testing.T) {
	f := newSyncFixture(t)
	must(t, os.Chmod(f.cfg, 0o600))
	before, err := os.Stat(f.cfg)
	must(t, err)
	must(t, f.hook.Restore(t.Context(), durable.OS{}, f.dir))
	after, err := os.Stat(f.cfg)
	must(t, err)
	if after.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", after.Mode().Perm())
	}
	if !os.SameFile(before, after) {
		t.Fatal("a file with the right content was rewritten to restore its mode")
	}
}
