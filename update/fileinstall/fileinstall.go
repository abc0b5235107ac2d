// Package fileinstall is an [update.Installer] that installs an artifact by
// replacing one file, keeping the file it replaced until the update is
// committed, so that a rollback puts back exactly what was there.
//
// Every step is atomic and durable (temporary file, fsync, rename, fsync of
// the directory) and every method is idempotent, as the agent requires: a
// power cut at any point leaves either the old file or the new one in
// place, and calling the interrupted method again finishes its work.
//
// Beside the target it keeps, during an update only, either
// "<file>.prev-<id>" (the replaced file) or "<file>.absent-<id>" (a marker:
// there was no file), where <id> names the artifact being installed, so a
// leftover from another update is never mistaken for this one's.
package fileinstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/update"
)

// Installer replaces the file at Path. It is safe for concurrent use only
// on distinct paths.
type Installer struct {
	// Path is the file an artifact replaces.
	Path string
	// FS is the filesystem Path is on; nil means durable.OS. It must be the
	// one the agent's artifacts are on, which it reads them from.
	FS durable.FS
	// Mode is the installed file's mode; 0 means 0o755 (artifacts are
	// usually programs).
	Mode fs.FileMode
}

var _ update.Installer = (*Installer)(nil)

func (in *Installer) fs() durable.FS { return durable.Or(in.FS) }

var _ update.Committer = (*Installer)(nil)

func (in *Installer) id(a *update.Artifact) string {
	return a.Manifest.Artifact.Digest.Hex()[:16]
}

func (in *Installer) prev(a *update.Artifact) string   { return in.Path + ".prev-" + in.id(a) }
func (in *Installer) absent(a *update.Artifact) string { return in.Path + ".absent-" + in.id(a) }

// Install keeps the current file (or notes there is none), then atomically
// replaces it with the artifact.
func (in *Installer) Install(ctx context.Context, a *update.Artifact) error {
	if in.Path == "" {
		return errors.New("fileinstall: no Path")
	}
	if err := in.dropLeftovers(a); err != nil {
		return err
	}
	prev, absent := in.prev(a), in.absent(a)
	fsys := in.fs()
	havePrev, err := exists(fsys, prev)
	if err != nil {
		return err
	}
	haveAbsent, err := exists(fsys, absent)
	if err != nil {
		return err
	}
	if !havePrev && !haveAbsent {
		// First call for this artifact: keep what is there now.
		switch _, err := fsys.Lstat(in.Path); {
		case err == nil:
			if err := copyFile(ctx, fsys, in.Path, prev, 0); err != nil {
				return fmt.Errorf("fileinstall: keeping %s: %w", in.Path, err)
			}
		case errors.Is(err, fs.ErrNotExist):
			if err := durable.WriteFile(fsys, absent, nil, 0o600); err != nil {
				return fmt.Errorf("fileinstall: %w", err)
			}
		default:
			return fmt.Errorf("fileinstall: %w", err)
		}
	}
	mode := in.Mode
	if mode == 0 {
		mode = 0o755
	}
	if err := copyFile(ctx, fsys, a.Path, in.Path, mode); err != nil {
		return fmt.Errorf("fileinstall: installing %s: %w", in.Path, err)
	}
	return nil
}

// Rollback puts back the file Install replaced, or removes the installed
// file if there was none. Called again, or without a prior Install, it
// changes nothing.
func (in *Installer) Rollback(ctx context.Context, a *update.Artifact) error {
	if err := in.dropLeftovers(a); err != nil {
		return err
	}
	fsys := in.fs()
	prev, absent := in.prev(a), in.absent(a)
	havePrev, err := exists(fsys, prev)
	if err != nil {
		return err
	}
	haveAbsent, err := exists(fsys, absent)
	if err != nil {
		return err
	}
	switch {
	case havePrev:
		if err := durable.Rename(fsys, prev, in.Path); err != nil {
			return fmt.Errorf("fileinstall: restoring %s: %w", in.Path, err)
		}
	case haveAbsent:
		// The installed file goes first: a power cut in between leaves the
		// marker, and Rollback is called again.
		if err := durable.Remove(fsys, in.Path); err != nil {
			return fmt.Errorf("fileinstall: %w", err)
		}
		if err := durable.Remove(fsys, absent); err != nil {
			return fmt.Errorf("fileinstall: %w", err)
		}
	}
	return nil
}

// Commit drops the kept file: the install is final.
func (in *Installer) Commit(ctx context.Context, a *update.Artifact) error {
	fsys := in.fs()
	for _, p := range []string{in.prev(a), in.absent(a)} {
		if err := fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fileinstall: %w", err)
		}
	}
	return fsys.SyncDir(filepath.Dir(in.Path))
}

// dropLeftovers removes what an earlier update left behind for another
// artifact (a Commit cut short by a power cut), and the temporary copies a
// power cut left in the middle of a copy: each may be a whole artifact.
func (in *Installer) dropLeftovers(a *update.Artifact) error {
	dir, base := filepath.Split(in.Path)
	if dir == "" {
		dir = "."
	}
	fsys := in.fs()
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("fileinstall: %w", err)
	}
	keep := map[string]bool{filepath.Base(in.prev(a)): true, filepath.Base(in.absent(a)): true}
	for _, e := range entries {
		n := e.Name()
		ours := strings.HasPrefix(n, base+".prev-") || strings.HasPrefix(n, base+".absent-")
		// durable.Write's temporaries: ".app.bin.tmp-…", ".app.bin.prev-….tmp-…".
		tmp := strings.HasPrefix(n, "."+base+".") && strings.Contains(n, ".tmp-")
		if keep[n] || !ours && !tmp {
			continue
		}
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fileinstall: %w", err)
		}
	}
	return nil
}

// copyFile atomically replaces dst with a copy of src. Mode 0 keeps src's.
func copyFile(ctx context.Context, fsys durable.FS, src, dst string, mode fs.FileMode) error {
	f, err := durable.Open(fsys, src)
	if err != nil {
		return err
	}
	defer f.Close()
	if mode == 0 {
		info, err := f.Stat()
		if err != nil {
			return err
		}
		mode = info.Mode().Perm()
	}
	return durable.Write(fsys, dst, mode, func(w io.Writer) error {
		_, err := io.CopyBuffer(w, ctxReader{ctx, f}, make([]byte, 1<<20))
		return err
	})
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// exists reports whether path exists; only "does not exist" is a no, any
// other error (an I/O error) is returned, never taken for absence.
func exists(fsys durable.FS, path string) (bool, error) {
	_, err := fsys.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("fileinstall: %w", err)
}
