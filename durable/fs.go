package durable

import (
	"io"
	"io/fs"
	"os"
)

// FS is a filesystem. Paths are the host's (filepath) paths. Errors are
// *fs.PathError or *os.LinkError values matching fs.ErrNotExist,
// fs.ErrExist and the like, as the os package's are. Implementations must
// be safe for concurrent use.
type FS interface {
	// OpenFile opens a file as os.OpenFile does (O_RDONLY, O_WRONLY,
	// O_RDWR, O_CREATE, O_EXCL, O_TRUNC, O_APPEND).
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Mkdir(name string, perm fs.FileMode) error
	// Remove removes a file, a symlink or an empty directory.
	Remove(name string) error
	Rename(oldpath, newpath string) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	Lstat(name string) (fs.FileInfo, error)
	Chmod(name string, mode fs.FileMode) error
	Symlink(oldname, newname string) error
	Readlink(name string) (string, error)
	// SyncDir makes the entries of the directory durable: files created,
	// renamed or removed in it survive a power cut once it returns.
	SyncDir(name string) error
}

// File is an open file. *os.File is one.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Seeker
	io.Closer
	Name() string
	Stat() (fs.FileInfo, error)
	// Sync makes the file's content and mode durable.
	Sync() error
	Truncate(size int64) error
	Chmod(mode fs.FileMode) error
}

// OS is the operating system's filesystem. Its zero value is ready to use.
type OS struct{}

var _ FS = OS{}

func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // never a typed nil *os.File in the interface
	}
	return f, nil
}

func (OS) Mkdir(name string, perm fs.FileMode) error  { return os.Mkdir(name, perm) }
func (OS) Remove(name string) error                   { return os.Remove(name) }
func (OS) Rename(oldpath, newpath string) error       { return os.Rename(oldpath, newpath) }
func (OS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (OS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (OS) Lstat(name string) (fs.FileInfo, error)     { return os.Lstat(name) }
func (OS) Chmod(name string, mode fs.FileMode) error  { return os.Chmod(name, mode) }
func (OS) Symlink(oldname, newname string) error      { return os.Symlink(oldname, newname) }
func (OS) Readlink(name string) (string, error)       { return os.Readlink(name) }

// SyncDir fsyncs the directory.
func (OS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Or returns fsys, or OS when fsys is nil: what a nil FS in a Config means.
func Or(fsys FS) FS {
	if fsys == nil {
		return OS{}
	}
	return fsys
}
