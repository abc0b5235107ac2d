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
	"os"
	"path/filepath"
	"strings"

	"github.com/upkeephq/upkeep/internal/atomicfile"
	"github.com/upkeephq/upkeep/update"
)

// Installer replaces the file at Path. It is safe for concurrent use only
// on distinct paths.
type Installer struct {
	// Path is the file an artifact replaces.
	Path string
	// Mode is the installed file's mode; 0 means 0o755 (artifacts are
	// usually programs).
	Mode fs.FileMode
}

var _ update.Installer = (*Installer)(nil)
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
	if !exists(prev) && !exists(absent) {
		// First call for this artifact: keep what is there now.
		switch _, err := os.Lstat(in.Path); {
		case err == nil:
			if err := copyFile(ctx, in.Path, prev, 0); err != nil {
				return fmt.Errorf("fileinstall: keeping %s: %w", in.Path, err)
			}
		case errors.Is(err, fs.ErrNotExist):
			if err := atomicfile.WriteFile(absent, nil, 0o600); err != nil {
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
	if err := copyFile(ctx, a.Path, in.Path, mode); err != nil {
		return fmt.Errorf("fileinstall: installing %s: %w", in.Path, err)
	}
	return nil
}

// Rollback puts back the file Install replaced, or removes the installed
// file if there was none. Called again, or without a prior Install, it
// changes nothing.
func (in *Installer) Rollback(ctx context.Context, a *update.Artifact) error {
	prev, absent := in.prev(a), in.absent(a)
	switch {
	case exists(prev):
		if err := atomicfile.Rename(prev, in.Path); err != nil {
			return fmt.Errorf("fileinstall: restoring %s: %w", in.Path, err)
		}
	case exists(absent):
		if err := os.Remove(in.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fileinstall: %w", err)
		}
		if err := os.Remove(absent); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fileinstall: %w", err)
		}
		return atomicfile.SyncDir(filepath.Dir(in.Path))
	}
	return nil
}

// Commit drops the kept file: the install is final.
func (in *Installer) Commit(ctx context.Context, a *update.Artifact) error {
	for _, p := range []string{in.prev(a), in.absent(a)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fileinstall: %w", err)
		}
	}
	return atomicfile.SyncDir(filepath.Dir(in.Path))
}

// dropLeftovers removes what an earlier update left behind for another
// artifact (a Commit cut short by a power cut).
func (in *Installer) dropLeftovers(a *update.Artifact) error {
	dir, base := filepath.Split(in.Path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("fileinstall: %w", err)
	}
	keep := map[string]bool{filepath.Base(in.prev(a)): true, filepath.Base(in.absent(a)): true}
	for _, e := range entries {
		n := e.Name()
		if keep[n] || !(strings.HasPrefix(n, base+".prev-") || strings.HasPrefix(n, base+".absent-")) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fileinstall: %w", err)
		}
	}
	return nil
}

// copyFile atomically replaces dst with a copy of src. Mode 0 keeps src's.
func copyFile(ctx context.Context, src, dst string, mode fs.FileMode) error {
	f, err := os.Open(src)
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
	return atomicfile.Write(dst, mode, func(w io.Writer) error {
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

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
