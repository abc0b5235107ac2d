package durable

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/upkeephq/upkeep/internal/bounded"
)

// WriteFile atomically replaces path with data, created with perm.
func WriteFile(fsys FS, path string, data []byte, perm fs.FileMode) error {
	return Write(fsys, path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write atomically replaces path with what fill writes: fill writes a
// temporary file in the same directory, which is synced, renamed over
// path, and the directory synced. If anything fails the temporary file is
// removed and path is as it was.
func Write(fsys FS, path string, perm fs.FileMode, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := CreateTemp(fsys, dir, "."+base+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			fsys.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = fsys.Rename(tmp, path); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// CreateTemp creates a new file in dir whose name is prefix followed by a
// random string, opened for reading and writing. Names starting with
// ".name.tmp-" are what [CleanTemp] removes.
func CreateTemp(fsys FS, dir, prefix string) (File, error) {
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		name := filepath.Join(dir, prefix+hex.EncodeToString(b[:]))
		f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
}

// CleanTemp removes the temporary files that a Write cut short by a crash
// left in dir, and returns how many it removed.
func CleanTemp(fsys FS, dir string) (int, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() && strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return n, err
			}
			n++
		}
	}
	if n > 0 {
		return n, fsys.SyncDir(dir)
	}
	return 0, nil
}

// Rename renames oldpath to newpath and syncs the directories involved.
func Rename(fsys FS, oldpath, newpath string) error {
	if err := fsys.Rename(oldpath, newpath); err != nil {
		return err
	}
	oldDir, newDir := filepath.Dir(oldpath), filepath.Dir(newpath)
	if err := fsys.SyncDir(newDir); err != nil {
		return err
	}
	if oldDir != newDir {
		return fsys.SyncDir(oldDir)
	}
	return nil
}

// Remove removes name, if it exists, and syncs its directory.
func Remove(fsys FS, name string) error {
	if err := fsys.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// MkdirAll creates path and any missing parents, syncing the directory
// each new one was created in, so that the new directories survive.
func MkdirAll(fsys FS, path string, perm fs.FileMode) error {
	path = filepath.Clean(path)
	fi, err := fsys.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return &fs.PathError{Op: "mkdir", Path: path, Err: errNotDir}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	parent := filepath.Dir(path)
	if parent != path {
		if err := MkdirAll(fsys, parent, perm); err != nil {
			return err
		}
	}
	if err := fsys.Mkdir(path, perm); err != nil {
		if fi, serr := fsys.Lstat(path); serr == nil && fi.IsDir() {
			return nil // created meanwhile
		}
		return err
	}
	return fsys.SyncDir(parent)
}

var errNotDir = errors.New("not a directory")

// RemoveAll removes path and everything under it, then syncs its parent.
// A path that does not exist is not an error. Symlinks are removed, never
// followed.
func RemoveAll(fsys FS, path string) error {
	if err := removeTree(fsys, path); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(path))
}

func removeTree(fsys FS, path string) error {
	fi, err := fsys.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := fsys.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeTree(fsys, filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ErrNotRegular is the category of every [*NotRegularError].
var ErrNotRegular = errors.New("durable: not a regular file")

// NotRegularError reports a path that is not a regular file: a directory,
// a named pipe, a device, a socket, or, for [OpenNoFollow], a symlink.
type NotRegularError struct {
	Path string
	// Kind is "directory", "symlink", "named pipe", "socket", "device" or
	// "special file".
	Kind string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("durable: %s is a %s, not a regular file", e.Path, e.Kind)
}

// Is makes every NotRegularError match [ErrNotRegular].
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// Open opens the regular file at path for reading, following symlinks (a
// key directory mounted from a secret store, or a release directory on a
// USB stick, may hold symlinks to regular files). Anything else is refused
// with a [*NotRegularError] and never opened in a way that could block:
// opening a named pipe for reading waits for a writer, and opening a
// device can have side effects. The file is opened with O_NONBLOCK where
// the system has it (so a pipe swapped in after the check cannot hang the
// open either), and checked after opening to be the very file checked.
func Open(fsys FS, path string) (File, error) {
	return open(path, fsys.Stat, fsys)
}

// OpenNoFollow is [Open] that also refuses a symlink, even to a regular
// file: for callers that must not be steered out of a tree they own.
func OpenNoFollow(fsys FS, path string) (File, error) {
	return open(path, fsys.Lstat, fsys)
}

func open(path string, stat func(string) (fs.FileInfo, error), fsys FS) (File, error) {
	fi, err := stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	f, err := fsys.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	sfi, err := f.Stat()
	if err == nil && !SameFile(fi, sfi) {
		err = fmt.Errorf("durable: %s changed while it was being opened", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func notRegular(path string, m fs.FileMode) error {
	kind := "special file"
	switch {
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeSymlink != 0:
		kind = "symlink"
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeDevice != 0:
		kind = "device"
	}
	return &NotRegularError{Path: path, Kind: kind}
}

// ReadFile reads the regular file at path, opened with [Open], refusing
// more than limit bytes with an error wrapping tooLarge.
func ReadFile(fsys FS, path string, limit int64, tooLarge error) ([]byte, error) {
	f, err := Open(fsys, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bounded.Read(f, limit, path, tooLarge)
}

// FileIDer is what a FileInfo's Sys value implements, in filesystems other
// than the OS's, to say which file it describes.
type FileIDer interface{ FileID() uint64 }

// SameFile reports whether two FileInfos describe the same file, for the
// OS's filesystem (os.SameFile) and for any FS whose FileInfo.Sys
// implements [FileIDer].
func SameFile(a, b fs.FileInfo) bool {
	if ia, ok := a.Sys().(FileIDer); ok {
		ib, ok := b.Sys().(FileIDer)
		return ok && ia.FileID() == ib.FileID()
	}
	return os.SameFile(a, b)
}
