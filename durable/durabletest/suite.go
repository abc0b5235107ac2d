package durabletest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/durable"
)

// TestFS is the conformance suite of durable.FS: the behaviour upkeep
// relies on, checked on any implementation. newFS returns a filesystem and
// an empty directory in it to work in. Run it on your own FS before giving
// it to the agent.
func TestFS(t *testing.T, newFS func(t *testing.T) (durable.FS, string)) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, fsys durable.FS, dir string)
	}{
		{"ReadWrite", testReadWrite},
		{"OpenFlags", testOpenFlags},
		{"Directories", testDirectories},
		{"Rename", testRename},
		{"Symlinks", testSymlinks},
		{"SymlinkedDirectories", testSymlinkedDirectories},
		{"Modes", testModes},
		{"Helpers", testHelpers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, dir := newFS(t)
			tc.run(t, fsys, dir)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, fsys durable.FS, name string) string {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func testReadWrite(t *testing.T, fsys durable.FS, dir string) {
	p := filepath.Join(dir, "f")
	f, err := fsys.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	must(t, err)
	defer f.Close()
	if n, err := f.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("X"), 8); err != nil {
		t.Fatal(err)
	}
	want := "hello\x00\x00\x00X"
	b := make([]byte, 20)
	n, err := f.ReadAt(b, 0)
	if string(b[:n]) != want || err != io.EOF {
		t.Errorf("ReadAt = %q, %v; want %q, EOF", b[:n], err, want)
	}
	if n, err := f.ReadAt(b[:2], 3); n != 2 || err != nil || string(b[:2]) != "lo" {
		t.Errorf("ReadAt inside = %q, %v", b[:n], err)
	}
	if _, err := f.Seek(1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Read(b[:3]); string(b[:n]) != "ell" {
		t.Errorf("Read after Seek = %q", b[:n])
	}
	must(t, f.Truncate(2))
	if fi, err := f.Stat(); err != nil || fi.Size() != 2 || fi.IsDir() || fi.Name() != "f" {
		t.Errorf("Stat after Truncate: %v, %v", fi, err)
	}
	must(t, f.Truncate(4))
	must(t, f.Sync())
	if got := readAll(t, fsys, p); got != "he\x00\x00" {
		t.Errorf("after growing Truncate: %q", got)
	}
	if f.Name() != p {
		t.Errorf("Name = %q, want %q", f.Name(), p)
	}
	must(t, f.Close())
	if err := f.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

func testOpenFlags(t *testing.T, fsys durable.FS, dir string) {
	p := filepath.Join(dir, "f")
	if _, err := fsys.OpenFile(p, os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open missing: %v", err)
	}
	if _, err := fsys.OpenFile(filepath.Join(dir, "no", "f"), os.O_RDWR|os.O_CREATE, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("create in a missing directory: %v", err)
	}
	f, err := fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	f.Write([]byte("abc"))
	f.Close()
	if _, err := fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on an existing file: %v", err)
	}
	f, err = fsys.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.Write([]byte("de"))
	f.Close()
	if got := readAll(t, fsys, p); got != "abcde" {
		t.Errorf("after O_APPEND: %q", got)
	}
	f, err = fsys.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	f.Close()
	if got := readAll(t, fsys, p); got != "" {
		t.Errorf("after O_TRUNC: %q", got)
	}
	r, err := fsys.OpenFile(p, os.O_RDONLY, 0)
	must(t, err)
	if _, err := r.Write([]byte("x")); err == nil {
		t.Error("Write on a read-only file succeeded")
	}
	r.Close()
	if _, err := fsys.OpenFile(dir, os.O_RDWR, 0); err == nil {
		t.Error("opening a directory for writing succeeded")
	}
}

func testDirectories(t *testing.T, fsys durable.FS, dir string) {
	sub := filepath.Join(dir, "sub")
	must(t, fsys.Mkdir(sub, 0o755))
	if err := fsys.Mkdir(sub, 0o755); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir existing: %v", err)
	}
	for _, n := range []string{"c", "a", "b"} {
		must(t, durable.WriteFile(fsys, filepath.Join(sub, n), []byte(n), 0o600))
	}
	must(t, fsys.Mkdir(filepath.Join(sub, "d"), 0o755))
	entries, err := fsys.ReadDir(sub)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) || !entries[3].IsDir() || entries[0].IsDir() {
		t.Errorf("ReadDir = %v", names)
	}
	if err := fsys.Remove(sub); err == nil {
		t.Error("Remove of a non-empty directory succeeded")
	}
	must(t, fsys.Remove(filepath.Join(sub, "a")))
	if err := fsys.Remove(filepath.Join(sub, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove missing: %v", err)
	}
	if _, err := fsys.ReadDir(filepath.Join(sub, "b")); err == nil {
		t.Error("ReadDir of a file succeeded")
	}
	must(t, fsys.SyncDir(sub))
	if err := fsys.SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir missing: %v", err)
	}
	if fi, err := fsys.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("Stat dir: %v, %v", fi, err)
	}
	if _, err := fsys.Stat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
}

func testRename(t *testing.T, fsys durable.FS, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	must(t, durable.WriteFile(fsys, a, []byte("A"), 0o600))
	must(t, durable.WriteFile(fsys, b, []byte("B"), 0o600))
	must(t, fsys.Rename(a, b))
	if got := readAll(t, fsys, b); got != "A" {
		t.Errorf("rename over: %q", got)
	}
	if _, err := fsys.Stat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old name still there: %v", err)
	}
	sub := filepath.Join(dir, "sub")
	must(t, fsys.Mkdir(sub, 0o755))
	must(t, fsys.Rename(b, filepath.Join(sub, "b")))
	if got := readAll(t, fsys, filepath.Join(sub, "b")); got != "A" {
		t.Errorf("rename into a directory: %q", got)
	}
	must(t, fsys.Rename(sub, filepath.Join(dir, "moved")))
	if got := readAll(t, fsys, filepath.Join(dir, "moved", "b")); got != "A" {
		t.Errorf("rename of a directory: %q", got)
	}
	if err := fsys.Rename(filepath.Join(dir, "missing"), a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rename missing: %v", err)
	}
	must(t, fsys.Mkdir(filepath.Join(dir, "full"), 0o755))
	must(t, durable.WriteFile(fsys, filepath.Join(dir, "full", "x"), nil, 0o600))
	if err := fsys.Rename(filepath.Join(dir, "moved"), filepath.Join(dir, "full")); err == nil {
		t.Error("rename over a non-empty directory succeeded")
	}
}

func testSymlinks(t *testing.T, fsys durable.FS, dir string) {
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	must(t, durable.WriteFile(fsys, target, []byte("T"), 0o600))
	if err := fsys.Symlink("target", link); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
	if got, err := fsys.Readlink(link); got != "target" || err != nil {
		t.Errorf("Readlink = %q, %v", got, err)
	}
	if fi, err := fsys.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat = %v, %v", fi, err)
	}
	if fi, err := fsys.Stat(link); err != nil || !fi.Mode().IsRegular() || fi.Size() != 1 {
		t.Errorf("Stat through the link = %v, %v", fi, err)
	}
	if got := readAll(t, fsys, link); got != "T" {
		t.Errorf("read through the link: %q", got)
	}
	if _, err := fsys.Readlink(target); err == nil {
		t.Error("Readlink of a file succeeded")
	}
	if f, err := durable.OpenNoFollow(fsys, link); !errors.Is(err, durable.ErrNotRegular) {
		if f != nil {
			f.Close()
		}
		t.Errorf("OpenNoFollow of a link: %v", err)
	}
	if err := fsys.Symlink("target", link); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Symlink over an existing name: %v", err)
	}
	must(t, fsys.Remove(link))
	if _, err := fsys.Stat(target); err != nil {
		t.Errorf("removing the link removed the target: %v", err)
	}
}

// testSymlinkedDirectories: a path resolves component by component, as
// the kernel resolves it, so a relative symlink's target is taken from the
// directory that really holds the link and ".." after a symlink leaves
// the directory the link leads to, not the one the path names.
func testSymlinkedDirectories(t *testing.T, fsys durable.FS, dir string) {
	if runtime.GOOS == "windows" {
		t.Skip(`Windows removes ".." from a path before following symlinks`)
	}
	sep := string(filepath.Separator)
	// at joins without cleaning: ".." must reach the filesystem as written.
	at := func(parts ...string) string { return dir + sep + strings.Join(parts, sep) }
	must(t, fsys.Mkdir(at("real"), 0o755))
	must(t, fsys.Mkdir(at("real", "dir"), 0o755))
	must(t, durable.WriteFile(fsys, at("real", "x"), []byte("real x"), 0o600))
	// What resolving against the path as written would find instead.
	must(t, durable.WriteFile(fsys, at("x"), []byte("top x"), 0o600))
	if err := fsys.Symlink("real"+sep+"dir", at("a")); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
	must(t, fsys.Symlink(".."+sep+"x", at("real", "dir", "link")))
	must(t, fsys.Symlink("a", at("b")))
	must(t, fsys.Symlink(at("real", "dir"), at("abs")))

	for _, tt := range []struct{ path, want string }{
		{at("real", "dir", "link"), "real x"},
		{at("a", "link"), "real x"},
		{at("b", "link"), "real x"},
		{at("abs", "link"), "real x"},
		{at("a", "..", "x"), "real x"},
		{at("a", ".", "..", "x"), "real x"},
		{at("b", "..", "x"), "real x"},
		{at("abs", "..", "x"), "real x"},
		{at("a", "..", "dir", "..", "..", "x"), "top x"},
	} {
		if got := readAll(t, fsys, tt.path); got != tt.want {
			t.Errorf("%s reads %q, want %q", tt.path, got, tt.want)
		}
	}
	if got, err := fsys.Readlink(at("a", "link")); got != ".."+sep+"x" || err != nil {
		t.Errorf("Readlink through a symlinked directory = %q, %v", got, err)
	}
	if fi, err := fsys.Lstat(at("a", "link")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat through a symlinked directory = %v, %v", fi, err)
	}

	// Changes through symlinks land in the real directories.
	must(t, durable.WriteFile(fsys, at("a", "new"), []byte("new"), 0o600))
	if got := readAll(t, fsys, at("real", "dir", "new")); got != "new" {
		t.Errorf("written through a symlinked directory: %q", got)
	}
	must(t, fsys.Mkdir(at("a", "..", "sub"), 0o755))
	if fi, err := fsys.Stat(at("real", "sub")); err != nil || !fi.IsDir() {
		t.Errorf("Mkdir a/../sub: %v, %v", fi, err)
	}
	must(t, fsys.Rename(at("a", "..", "x"), at("b", "..", "y")))
	if got := readAll(t, fsys, at("real", "y")); got != "real x" {
		t.Errorf("renamed through symlinks: %q", got)
	}
	entries, err := fsys.ReadDir(at("a", ".."))
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"dir", "sub", "y"}) {
		t.Errorf("ReadDir a/.. = %v, want the real directory's", names)
	}
	// real/dir/.. is real: moving real there moves it into itself.
	if err := fsys.Rename(at("real"), at("a", "..", "inside")); err == nil {
		t.Error("renaming a directory into itself through a symlink succeeded")
	}
	must(t, fsys.Remove(at("a", "..", "y")))
	if _, err := fsys.Lstat(at("real", "y")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed through a symlink, still there: %v", err)
	}

	// A symlink to itself never resolves.
	must(t, fsys.Symlink("loop", at("loop")))
	if _, err := fsys.Stat(at("loop")); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a symlink loop: %v, want a loop error", err)
	}
}

func testModes(t *testing.T, fsys durable.FS, dir string) {
	p := filepath.Join(dir, "f")
	must(t, durable.WriteFile(fsys, p, []byte("x"), 0o640))
	if fi, _ := fsys.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	must(t, fsys.Chmod(p, 0o600))
	if fi, _ := fsys.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after Chmod %v, want 0600", fi.Mode().Perm())
	}
	f, err := fsys.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	must(t, f.Chmod(0o644))
	fi1, _ := f.Stat()
	f.Close()
	fi2, _ := fsys.Stat(p)
	if fi2.Mode().Perm() != 0o644 || !durable.SameFile(fi1, fi2) {
		t.Errorf("File.Chmod: %v; SameFile %v", fi2.Mode(), durable.SameFile(fi1, fi2))
	}
	q := filepath.Join(dir, "q")
	must(t, durable.WriteFile(fsys, q, []byte("x"), 0o600))
	fq, _ := fsys.Stat(q)
	if durable.SameFile(fi2, fq) {
		t.Error("SameFile of two files")
	}
}

func testHelpers(t *testing.T, fsys durable.FS, dir string) {
	p := filepath.Join(dir, "a", "b", "c")
	must(t, durable.MkdirAll(fsys, p, 0o755))
	must(t, durable.MkdirAll(fsys, p, 0o755))
	f := filepath.Join(p, "f")
	must(t, durable.WriteFile(fsys, f, []byte("one"), 0o600))
	must(t, durable.WriteFile(fsys, f, []byte("two"), 0o600))
	b, err := durable.ReadFile(fsys, f, 10, errBig)
	if err != nil || !bytes.Equal(b, []byte("two")) {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := durable.ReadFile(fsys, f, 2, errBig); !errors.Is(err, errBig) {
		t.Errorf("ReadFile over the limit: %v", err)
	}
	if _, err := durable.ReadFile(fsys, p, 10, errBig); !errors.Is(err, durable.ErrNotRegular) {
		t.Errorf("ReadFile of a directory: %v", err)
	}
	tmp, err := durable.CreateTemp(fsys, p, ".f.tmp-")
	must(t, err)
	tmp.Close()
	if n, err := durable.CleanTemp(fsys, p); n != 1 || err != nil {
		t.Errorf("CleanTemp = %d, %v", n, err)
	}
	entries, _ := fsys.ReadDir(p)
	if len(entries) != 1 || entries[0].Name() != "f" {
		t.Errorf("after CleanTemp: %v", entries)
	}
	must(t, durable.Rename(fsys, f, filepath.Join(dir, "g")))
	must(t, durable.Remove(fsys, filepath.Join(dir, "g")))
	must(t, durable.Remove(fsys, filepath.Join(dir, "g")))
	must(t, durable.RemoveAll(fsys, filepath.Join(dir, "a")))
	if _, err := fsys.Stat(filepath.Join(dir, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemoveAll: %v", err)
	}
	must(t, durable.RemoveAll(fsys, filepath.Join(dir, "a")))
}

var errBig = errors.New("too big")
