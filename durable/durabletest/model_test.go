package durabletest_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

func mode(t *testing.T, fsys durable.FS, name string) fs.FileMode {
	t.Helper()
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func names(t *testing.T, fsys durable.FS, dir string) string {
	t.Helper()
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range entries {
		s = append(s, e.Name())
	}
	return strings.Join(s, ",")
}

// TestSymlinkTargetsFromTheRealDirectory: a relative symlink reached
// through a symlinked directory resolves from the directory that holds
// it, and ".." after a symlink from where the symlink leads; also when a
// power cut has had the directories settle.
func TestSymlinkTargetsFromTheRealDirectory(t *testing.T) {
	f := durabletest.NewCrashFS(5)
	durable.MkdirAll(f, "/real/dir", 0o755)
	durable.WriteFile(f, "/real/x", []byte("real x"), 0o600)
	durable.WriteFile(f, "/x", []byte("top x"), 0o600)
	f.Symlink("real/dir", "/a")
	f.Symlink("../x", "/real/dir/link")
	f.Persist()
	f.Restart(durabletest.LoseUnsynced)
	tests := []struct{ path, want string }{
		{"/a/link", "real x"},
		{"/a/../x", "real x"},
		{"a/link", "real x"},
		{"/a/link/", "<stat /a/link/: not a directory>"},
		{"/a/../../x", "top x"},
		{"/../../x", "top x"},
	}
	for _, tt := range tests {
		if got := read(f, tt.path); got != tt.want {
			t.Errorf("%s reads %q, want %q", tt.path, got, tt.want)
		}
	}
	// Creating through a dangling symlink creates its target, from the
	// link's real directory.
	f.Symlink("../made", "/real/dir/dangling")
	w, err := f.OpenFile("/a/dangling", os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !exists(f, "/real/made") || exists(f, "/made") {
		t.Error("created through a dangling symlink in the wrong directory")
	}
	// A directory cannot be moved into itself through a symlink.
	if err := f.Rename("/real", "/a/../inside"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("rename into itself = %v, want EINVAL", err)
	}
	for _, p := range []string{"/a/..", "/real/."} {
		if err := f.Remove(p); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Remove(%s) = %v, want EINVAL", p, err)
		}
	}
}

// TestDirectoryModeIsDurableWhenSynced: a directory's chmod, like its
// entries, is lost in a crash until the directory itself is synced.
func TestDirectoryModeIsDurableWhenSynced(t *testing.T) {
	tests := []struct {
		name string
		sync func(f *durabletest.CrashFS) error
		want fs.FileMode
	}{
		{"not synced", func(*durabletest.CrashFS) error { return nil }, 0o755},
		{"parent synced", func(f *durabletest.CrashFS) error { return f.SyncDir("/") }, 0o755},
		{"SyncDir", func(f *durabletest.CrashFS) error { return f.SyncDir("/d") }, 0o700},
		{"Sync of the directory opened", func(f *durabletest.CrashFS) error {
			d, err := f.OpenFile("/d", os.O_RDONLY, 0)
			if err != nil {
				return err
			}
			defer d.Close()
			return d.Sync()
		}, 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := durabletest.NewCrashFS(6)
			f.Mkdir("/d", 0o755)
			f.Persist()
			must(t, f.Chmod("/d", 0o700))
			if got := mode(t, f, "/d"); got != 0o700 {
				t.Fatalf("mode before the crash %v", got)
			}
			must(t, tt.sync(f))
			f.Restart(durabletest.LoseUnsynced)
			if got := mode(t, f, "/d"); got != tt.want {
				t.Errorf("mode after the crash %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLoseSomeKeepsDirectoryModeInOrder: under LoseSome a directory's
// chmod is one of its changes, kept only with every change before it.
func TestLoseSomeKeepsDirectoryModeInOrder(t *testing.T) {
	allowed := map[string]bool{
		" 755": true, "a 755": true, "a 700": true, "a,b 700": true,
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 100; seed++ {
		f := durabletest.NewCrashFS(seed)
		f.Mkdir("/d", 0o755)
		f.Persist()
		f.Mkdir("/d/a", 0o755)
		f.Chmod("/d", 0o700)
		f.Mkdir("/d/b", 0o755)
		f.Restart(durabletest.LoseSome)
		got := names(t, f, "/d") + " " + strings.TrimPrefix(mode(t, f, "/d").String(), "-")
		got = strings.NewReplacer("rwxr-xr-x", "755", "rwx------", "700").Replace(got)
		if !allowed[got] {
			t.Fatalf("seed %d: directory left as %q, not a prefix of its changes", seed, got)
		}
		seen[got] = true
	}
	if len(seen) != len(allowed) {
		t.Errorf("across 100 seeds LoseSome left only %v", seen)
	}
}

// TestRenameAcrossDirectories pins how a rename from one directory to
// another is modelled: two independent changes, each durable when its own
// directory is synced.
func TestRenameAcrossDirectories(t *testing.T) {
	setup := func(seed uint64) (*durabletest.CrashFS, fs.FileInfo) {
		f := durabletest.NewCrashFS(seed)
		f.Mkdir("/old", 0o755)
		f.Mkdir("/new", 0o755)
		durable.WriteFile(f, "/old/f", []byte("F"), 0o600)
		f.Persist()
		fi, _ := f.Stat("/old/f")
		f.Rename("/old/f", "/new/f")
		return f, fi
	}
	outcome := func(t *testing.T, f *durabletest.CrashFS, orig fs.FileInfo) string {
		var s []string
		for _, p := range []string{"/old/f", "/new/f"} {
			if fi, err := f.Stat(p); err == nil {
				if !durable.SameFile(fi, orig) || read(f, p) != "F" {
					t.Fatalf("%s is not the renamed file", p)
				}
				s = append(s, p)
			}
		}
		if len(s) == 0 {
			return "neither"
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		sync []string
		want string
	}{
		{nil, "/old/f"},
		{[]string{"/new"}, "/old/f /new/f"},
		{[]string{"/old"}, "neither"},
		{[]string{"/new", "/old"}, "/new/f"},
	}
	for _, tt := range tests {
		f, orig := setup(7)
		for _, d := range tt.sync {
			must(t, f.SyncDir(d))
		}
		f.Restart(durabletest.LoseUnsynced)
		if got := outcome(t, f, orig); got != tt.want {
			t.Errorf("synced %v: after the crash %s, want %s", tt.sync, got, tt.want)
		}
	}
	// Both names left share one file: a write through one shows in the
	// other, and removing one leaves the other.
	f, orig := setup(7)
	f.SyncDir("/new")
	f.Restart(durabletest.LoseUnsynced)
	must(t, durable.Remove(f, "/old/f"))
	if outcome(t, f, orig) != "/new/f" {
		t.Error("removing one of two names lost the other")
	}
	// Unsynced, LoseSome can leave any of the four.
	seen := map[string]bool{}
	for seed := uint64(0); seed < 100; seed++ {
		f, orig := setup(seed)
		f.Restart(durabletest.LoseSome)
		seen[outcome(t, f, orig)] = true
	}
	if len(seen) != 4 {
		t.Errorf("across 100 seeds LoseSome left only %v", seen)
	}
}

// TestLoseAnyWritesBackPages: under LoseAny each 4 KiB piece of an
// unsynced write survives or not on its own, and the size lands anywhere
// from the synced size to the size at the crash.
func TestLoseAnyWritesBackPages(t *testing.T) {
	const page = 4096
	old := bytes.Repeat([]byte("o"), 3*page)
	seen := map[string]bool{}
	sizes := map[string]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		f := durabletest.NewCrashFS(seed)
		must(t, durable.WriteFile(f, "/f", old, 0o600))
		w, err := f.OpenFile("/f", os.O_RDWR, 0)
		must(t, err)
		// 4 pages, written in two writes that straddle a page boundary.
		w.Write(bytes.Repeat([]byte("n"), page+page/2))
		w.Write(bytes.Repeat([]byte("n"), 2*page+page/2))
		w.Chmod(0o640)
		f.Restart(durabletest.LoseAny)
		got := []byte(read(f, "/f"))
		if len(got) < len(old) || len(got) > 4*page {
			t.Fatalf("seed %d: size %d, not between the synced 3 pages and the 4 written", seed, len(got))
		}
		switch len(got) {
		case len(old):
			sizes["synced"] = true
		case 4 * page:
			sizes["current"] = true
		default:
			sizes["between"] = true
		}
		var shape []byte
		for off := 0; off < len(got); off += page / 2 {
			half := got[off:min(off+page/2, len(got))]
			var c byte = '0'
			if len(half) > 0 {
				c = half[0]
			}
			if bytes.Count(half, []byte{c}) != len(half) || (off < len(old) && c == 0) || (off >= len(old) && c == 'o') {
				t.Fatalf("seed %d: bytes at %d are not one write's, the old ones or zeros past the old end", seed, off)
			}
			if c == 0 {
				c = '0'
			}
			shape = append(shape, c)
		}
		seen[string(shape)] = true
		if m := mode(t, f, "/f"); m != 0o600 && m != 0o640 {
			t.Fatalf("seed %d: mode %v", seed, m)
		}
	}
	// A later piece survived where an earlier one did not: not a prefix.
	notPrefix := false
	for s := range seen {
		if strings.Contains(s, "on") {
			notPrefix = true
		}
	}
	if !notPrefix || len(sizes) != 3 || !seen["oooooo"] || !seen["nnnnnnnn"] {
		t.Errorf("across 200 seeds LoseAny left only %v, sizes %v", slices.Sorted(maps.Keys(seen)), sizes)
	}
}

// TestLoseAnyTruncatedFile: a file truncated and rewritten without a sync
// can come back with the old bytes, the new, or zeros where the new were
// not written back, at any size in between.
func TestLoseAnyTruncatedFile(t *testing.T) {
	old := bytes.Repeat([]byte("o"), 8192)
	for seed := uint64(0); seed < 100; seed++ {
		f := durabletest.NewCrashFS(seed)
		durable.WriteFile(f, "/f", old, 0o600)
		w, err := f.OpenFile("/f", os.O_WRONLY|os.O_TRUNC, 0)
		must(t, err)
		w.Write([]byte("new"))
		f.Restart(durabletest.LoseAny)
		got := []byte(read(f, "/f"))
		if len(got) < 3 {
			t.Fatalf("seed %d: %d bytes, fewer than the 3 written", seed, len(got))
		}
		if h := string(got[:3]); h != "new" && h != "ooo" && h != "\x00\x00\x00" {
			t.Fatalf("seed %d: starts %q", seed, h)
		}
		rest := got[3:]
		if bytes.Count(rest, []byte("o")) != len(rest) && bytes.Count(rest, []byte{0}) != len(rest) {
			t.Fatalf("seed %d: old bytes mixed with zeros", seed)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRemovedOpenFileHoldsItsSpace: a file removed or renamed over while
// open keeps its space until its last handle closes.
func TestRemovedOpenFileHoldsItsSpace(t *testing.T) {
	tests := []struct {
		name   string
		unlink func(f *durabletest.CrashFS) error
	}{
		{"removed", func(f *durabletest.CrashFS) error { return f.Remove("/big") }},
		{"renamed over", func(f *durabletest.CrashFS) error {
			must(t, durable.WriteFile(f, "/small", nil, 0o600))
			return f.Rename("/small", "/big")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := durabletest.NewCrashFS(8)
			f.SetCapacity(100)
			must(t, durable.WriteFile(f, "/big", make([]byte, 80), 0o600))
			h, err := f.OpenFile("/big", os.O_RDONLY, 0)
			must(t, err)
			h2, err := f.OpenFile("/big", os.O_RDONLY, 0)
			must(t, err)
			must(t, tt.unlink(f))
			if err := durable.WriteFile(f, "/g", make([]byte, 50), 0o600); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write while the removed file is open = %v, want ENOSPC", err)
			}
			if b, err := io.ReadAll(h); len(b) != 80 || err != nil {
				t.Errorf("the open handle reads %d bytes, %v", len(b), err)
			}
			h.Close()
			if err := durable.WriteFile(f, "/g", make([]byte, 50), 0o600); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write with one handle left = %v, want ENOSPC", err)
			}
			h2.Close()
			must(t, durable.WriteFile(f, "/g", make([]byte, 50), 0o600))
		})
	}
	// A crash closes every handle, and the space is freed.
	f := durabletest.NewCrashFS(9)
	f.SetCapacity(100)
	must(t, durable.WriteFile(f, "/big", make([]byte, 80), 0o600))
	h, _ := f.OpenFile("/big", os.O_RDONLY, 0)
	must(t, durable.Remove(f, "/big"))
	f.Restart(durabletest.LoseUnsynced)
	h.Close() // dead; must not free the space twice
	must(t, durable.WriteFile(f, "/g", make([]byte, 80), 0o600))
	if err := durable.WriteFile(f, "/h", make([]byte, 30), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("space freed twice: a write past capacity = %v", err)
	}
}

// TestOnlyChangesAreCrashPoints: reads, stats, listings, opens that
// create or truncate nothing, seeks and closes do not count as operations
// and never fire an armed crash.
func TestOnlyChangesAreCrashPoints(t *testing.T) {
	f := durabletest.NewCrashFS(10)
	durable.WriteFile(f, "/f", []byte("data"), 0o600)
	durable.WriteFile(f, "/empty", nil, 0o600)
	f.Symlink("f", "/l")
	start := f.Ops()
	f.CrashAfter(1)
	reads := []func() error{
		func() error { _, err := f.Stat("/f"); return err },
		func() error { _, err := f.Lstat("/l"); return err },
		func() error { _, err := f.ReadDir("/"); return err },
		func() error { _, err := f.Readlink("/l"); return err },
		func() error { _, err := durable.ReadFile(f, "/l", 10, errBig); return err },
		func() error {
			h, err := f.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600) // exists: creates nothing
			if err != nil {
				return err
			}
			if _, err := h.Seek(2, io.SeekStart); err != nil {
				return err
			}
			if _, err := h.ReadAt(make([]byte, 2), 0); err != nil {
				return err
			}
			if _, err := h.Stat(); err != nil {
				return err
			}
			return h.Close()
		},
		func() error {
			h, err := f.OpenFile("/empty", os.O_WRONLY|os.O_TRUNC, 0) // empty: truncates nothing
			if err != nil {
				return err
			}
			return h.Close()
		},
	}
	for i, r := range reads {
		if err := r(); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if f.Crashed() || f.Ops() != start {
		t.Fatalf("reads counted as operations: crashed %v, %d ops", f.Crashed(), f.Ops()-start)
	}
	f.Chmod("/f", 0o644)
	if !f.Crashed() {
		t.Error("the first change did not fire the armed crash")
	}
}

var errBig = errors.New("too big")
