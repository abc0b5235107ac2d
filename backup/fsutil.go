package backup

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/bounded"
	"github.com/upkeephq/upkeep/verify"
)

// copyBufferSize is the buffer of copyCtx: big enough to keep per-call
// overhead low, small enough for a terminal's memory.
const copyBufferSize = 64 << 10

// copyCtx copies src to dst, checking ctx between reads.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufferSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			w, werr := dst.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// digestRegular hashes the regular file at path on fsys. A path that is
// not a regular file (a symlink, a directory) fails with ErrUnsupported.
func digestRegular(ctx context.Context, fsys durable.FS, path string, newHash func() hash.Hash) (verify.Digest, int64, error) {
	f, err := openRegular(fsys, path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	d := verify.NewDigester(newHash)
	if _, err := copyCtx(ctx, d, f); err != nil {
		return "", 0, err
	}
	return d.Digest(), d.Size(), nil
}

// openRegular opens path on fsys for reading if it is a regular file, and
// not a symlink to one: a backup never follows a symlink out of the tree
// it owns. Anything else fails with ErrUnsupported, without ever being
// opened in a way that could block (a named pipe) or have side effects (a
// device).
func openRegular(fsys durable.FS, path string) (durable.File, error) {
	f, err := durable.OpenNoFollow(fsys, path)
	var nr *durable.NotRegularError
	if errors.As(err, &nr) {
		return nil, fmt.Errorf("%w: %s is a %s, not a regular file", ErrUnsupported, nr.Path, nr.Kind)
	}
	return f, err
}

// readLimited reads the regular file at path on fsys, refusing more than
// limit bytes with ErrTooLarge.
func readLimited(fsys durable.FS, path string, limit int64) ([]byte, error) {
	f, err := openRegular(fsys, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bounded.Read(f, limit, path, ErrTooLarge)
}

// writeNew creates path on fsys, which must not exist, and writes data to
// it. If sync, the file is fsynced before it is closed. On failure the
// file may be left behind: it is in a directory its caller abandons.
func writeNew(fsys durable.FS, path string, data []byte, perm fs.FileMode, sync bool) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if sync && err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// walkDir walks the tree at root on fsys as filepath.WalkDir walks the
// OS's: root first, then each directory's entries in lexical order,
// parents before children, never following a symlink. fn's d describes
// what Lstat saw (for root) or what the directory listing said; returning
// filepath.SkipDir from fn on a directory skips its contents. An error
// reading a directory is passed to fn a second time with that directory,
// as filepath.WalkDir does.
func walkDir(fsys durable.FS, root string, fn fs.WalkDirFunc) error {
	fi, err := fsys.Lstat(root)
	if err != nil {
		err = fn(root, nil, err)
	} else {
		err = walkDirEntry(fsys, root, fs.FileInfoToDirEntry(fi), fn)
	}
	if errors.Is(err, filepath.SkipDir) || errors.Is(err, filepath.SkipAll) {
		return nil
	}
	return err
}

func walkDirEntry(fsys durable.FS, p string, d fs.DirEntry, fn fs.WalkDirFunc) error {
	if err := fn(p, d, nil); err != nil || !d.IsDir() {
		if errors.Is(err, filepath.SkipDir) && d.IsDir() {
			err = nil
		}
		return err
	}
	entries, err := fsys.ReadDir(p)
	if err != nil {
		if err = fn(p, d, err); err != nil {
			if errors.Is(err, filepath.SkipDir) && d.IsDir() {
				err = nil
			}
			return err
		}
	}
	for _, e := range entries {
		if err := walkDirEntry(fsys, filepath.Join(p, e.Name()), e, fn); err != nil {
			if errors.Is(err, filepath.SkipDir) {
				break
			}
			return err
		}
	}
	return nil
}

// removeTree removes p and everything under it, if it exists, never
// following a symlink. It syncs nothing: the caller syncs p's parent.
func removeTree(fsys durable.FS, p string) error {
	fi, err := fsys.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := fsys.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeTree(fsys, filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
