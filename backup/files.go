package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/verify"
)

// Limits on a [Files] backup.
const (
	// MaxEntries bounds the files, directories and symlinks one Files
	// hook backs up.
	MaxEntries = 1 << 20
	// MaxIndexSize bounds a Files hook's index.
	MaxIndexSize = 256 << 20
	// maxPath bounds a path or symlink target in an index.
	maxPath = 4096
)

// Names inside a Files hook's backup directory.
const (
	filesIndexName = "index.json"
	filesDataDir   = "data"
	filesSchema    = 1
)

// Entry types in a Files index.
const (
	typeFile    = "file"
	typeDir     = "dir"
	typeSymlink = "symlink"
	typeAbsent  = "absent"
)

// Files is a [Hook] that backs up files and directory trees as they are on
// disk, for data an application keeps in files (a journal, signature
// images, a parameter file). The live files are on the filesystem given
// to [NewFilesOn] (the OS's for [NewFiles]); the backup is on the one the
// store gives Backup and Restore. Every access to either goes through
// them.
//
// Backup copies each configured path: a regular file byte for byte; a
// directory recursively; a symlink as a symlink (its target is recorded,
// never followed). It records a path that does not exist, too. It keeps
// permission bits (setuid, setgid and sticky included) but not owners or
// times. Devices, sockets and named pipes are refused with
// [ErrUnsupported]. The backup directory holds index.json, which lists
// every original path with its type, mode, size and SHA-256, and a data
// directory with the files' bytes. The application should be quiet while
// Backup runs (the agent backs up outside a transaction): a file written
// during the copy is saved as the bytes that were read.
//
// Restore first reads and checks the whole index and every file's SHA-256,
// and only then changes anything. It then makes each configured path what
// it was: a file is replaced atomically (a temporary file in the same
// directory, fsync, rename, fsync of the directory); a directory is made
// identical to the backup, so files created since are removed; a path
// that did not exist is removed. Files already identical are left alone,
// which spares the terminal's flash and makes a second Restore cheap.
// Missing parent directories of a configured path are created (mode 0755).
// If ctx is done midway, Restore stops between two files and returns
// ctx.Err(); running it again completes the job, and removes the
// temporary files a run cut short by a power cut left beside a configured
// path. However Restore ends, what it changed is fsynced before it
// returns, and every configured path's parent directory, every restored
// directory and every file left in place because it already held the
// right bytes are fsynced even when nothing in them changed: a rerun also
// makes durable what an interrupted run left unsynced, and bytes the
// application wrote without an fsync do not come back wrong after a power
// cut.
//
// The index cannot steer Restore elsewhere: it must cover exactly the
// configured paths, every entry must lie inside one of them, and nothing
// is ever written beneath a symlink. An index that breaks these rules is
// [ErrCorrupt] and nothing is touched.
//
// Files is safe for concurrent use, though running two Restores of the
// same paths at once is not meaningful.
type Files struct {
	fsys    durable.FS // where the live paths are
	name    string
	paths   []string
	newHash func() hash.Hash
	// syncDir and syncFile make a restore durable; tests replace them to
	// see what is synced.
	syncDir  func(dir string) error
	syncFile func(f durable.File) error
}

// NewFiles returns a Files hook named name for the given paths on the
// OS's filesystem, which must be absolute, clean, not the root directory,
// and neither equal to nor inside one another.
func NewFiles(name string, paths ...string) (*Files, error) {
	return NewFilesOn(durable.OS{}, name, paths...)
}

// NewFilesOn is [NewFiles] for live paths on fsys (nil means
// durable.OS{}): Backup reads them from fsys and Restore writes them
// there, whatever filesystem the store keeps its snapshots on.
func NewFilesOn(fsys durable.FS, name string, paths ...string) (*Files, error) {
	fsys = durable.Or(fsys)
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, invalid("files hook %q: no paths", name)
	}
	if len(paths) > MaxEntries {
		return nil, invalid("files hook %q: %d paths, limit %d", name, len(paths), MaxEntries)
	}
	for i, p := range paths {
		if err := checkAbs(p); err != nil {
			return nil, invalid("files hook %q: %v", name, err)
		}
		if filepath.Dir(p) == p {
			return nil, invalid("files hook %q: will not back up the root directory %s", name, p)
		}
		for _, q := range paths[:i] {
			if p == q || within(p, q) || within(q, p) {
				return nil, invalid("files hook %q: paths %s and %s overlap", name, q, p)
			}
		}
	}
	return &Files{fsys: fsys, name: name, paths: slices.Clone(paths), newHash: verify.NewHash,
		syncDir: fsys.SyncDir, syncFile: durable.File.Sync}, nil
}

// Name returns the hook's name.
func (f *Files) Name() string { return f.name }

// Paths returns the configured paths.
func (f *Files) Paths() []string { return slices.Clone(f.paths) }

// FS returns the filesystem of the live paths.
func (f *Files) FS() durable.FS { return f.fsys }

// checkAbs checks that p is an absolute, clean path of sane length.
func checkAbs(p string) error {
	switch {
	case p == "" || len(p) > maxPath:
		return fmt.Errorf("path of %d bytes: want 1 to %d", len(p), maxPath)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %.80q holds a NUL byte", p)
	case !filepath.IsAbs(p):
		return fmt.Errorf("path %.80q is not absolute", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("path %.80q is not clean (want %s)", p, filepath.Clean(p))
	}
	return nil
}

// within reports whether the clean path p lies strictly inside dir.
func within(p, dir string) bool {
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(p, dir)
}

// filesIndex is the index.json of a Files backup.
type filesIndex struct {
	Schema int `json:"schema"`
	// Paths are the configured paths, in order.
	Paths []string `json:"paths"`
	// Entries start, for each configured path in order, with the path
	// itself, followed (for a directory) by everything under it, parents
	// before children. The data of entry i, if a file, is data/<i>.
	Entries []fileEntry `json:"entries"`
}

type fileEntry struct {
	Path string `json:"path"`
	Type string `json:"type"`
	// Mode holds the Unix permission bits, 0 to 07777.
	Mode   uint32        `json:"mode,omitempty"`
	Size   int64         `json:"size,omitempty"`
	Digest verify.Digest `json:"digest,omitempty"`
	Target string        `json:"target,omitempty"`
}

func dataName(i int) string { return filesDataDir + "/" + strconv.Itoa(i) }

// Backup copies the configured paths into dir on fsys. See [Files].
func (f *Files) Backup(ctx context.Context, fsys durable.FS, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fsys = durable.Or(fsys)
	abs, err := absPath(fsys, dir)
	if err != nil {
		return err
	}
	for _, p := range f.paths {
		if abs == p || within(abs, p) {
			// It would copy its own output.
			return invalid("files hook %q: backup directory %s lies inside %s", f.name, abs, p)
		}
	}
	if err := fsys.Mkdir(filepath.Join(dir, filesDataDir), 0o700); err != nil {
		return err
	}
	idx := filesIndex{Schema: filesSchema, Paths: f.paths}
	for _, root := range f.paths {
		if err := f.backupRoot(ctx, &idx, fsys, dir, root); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(idx, "", "\t")
	if err != nil {
		return err
	}
	// Not synced: the store syncs the whole snapshot.
	return writeNew(fsys, filepath.Join(dir, filesIndexName), append(data, '\n'), 0o600, false)
}

// absPath makes dir absolute: from the working directory on the OS's
// filesystem, from the root on another (as durabletest.CrashFS does).
func absPath(fsys durable.FS, dir string) (string, error) {
	if filepath.IsAbs(dir) {
		return filepath.Clean(dir), nil
	}
	if _, ok := fsys.(durable.OS); ok {
		return filepath.Abs(dir)
	}
	return filepath.Join(string(filepath.Separator), dir), nil
}

func (f *Files) backupRoot(ctx context.Context, idx *filesIndex, out durable.FS, dir, root string) error {
	fi, err := f.fsys.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		idx.Entries = append(idx.Entries, fileEntry{Path: root, Type: typeAbsent})
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return f.backupEntry(ctx, idx, out, dir, root, fi)
	}
	return walkDir(f.fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info() // lstat: symlinks are not followed
		if err != nil {
			return err
		}
		return f.backupEntry(ctx, idx, out, dir, p, fi)
	})
}

func (f *Files) backupEntry(ctx context.Context, idx *filesIndex, out durable.FS, dir, p string, fi fs.FileInfo) error {
	if len(idx.Entries) >= MaxEntries {
		return fmt.Errorf("%w: files hook %q: more than %d entries", ErrTooLarge, f.name, MaxEntries)
	}
	e := fileEntry{Path: p, Mode: unixMode(fi.Mode())}
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type = typeFile
		d, n, err := f.copyOut(ctx, p, fi, out, filepath.Join(dir, filepath.FromSlash(dataName(len(idx.Entries)))))
		if err != nil {
			return err
		}
		e.Size, e.Digest = n, d
	case m.IsDir():
		e.Type = typeDir
	case m&fs.ModeSymlink != 0:
		t, err := f.fsys.Readlink(p)
		if err != nil {
			return err
		}
		e.Type, e.Mode, e.Target = typeSymlink, 0, t
	default:
		return fmt.Errorf("%w: %s is a %s", ErrUnsupported, p, typeName(m))
	}
	idx.Entries = append(idx.Entries, e)
	return nil
}

// copyOut copies the live regular file p (as lstat saw it in fi) to dst
// on out and returns the digest and size of what it copied.
func (f *Files) copyOut(ctx context.Context, p string, fi fs.FileInfo, out durable.FS, dst string) (verify.Digest, int64, error) {
	src, err := openRegular(f.fsys, p)
	if err != nil {
		return "", 0, err
	}
	defer src.Close()
	// The walk saw a regular file; make sure it is still the one whose
	// mode was recorded.
	if sfi, err := src.Stat(); err != nil {
		return "", 0, err
	} else if !durable.SameFile(fi, sfi) {
		return "", 0, fmt.Errorf("backup: %s changed while it was being backed up", p)
	}
	w, err := out.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, err
	}
	d := verify.NewDigester(f.newHash)
	_, err = copyCtx(ctx, io.MultiWriter(w, d), src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	return d.Digest(), d.Size(), nil
}

// Restore puts the configured paths back from dir on fsys. See [Files].
func (f *Files) Restore(ctx context.Context, fsys durable.FS, dir string) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	fsys = durable.Or(fsys)
	idx, err := f.readIndex(fsys, dir)
	if err != nil {
		return err
	}
	if err := f.verifyData(ctx, fsys, dir, idx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &restorer{f: f, live: f.fsys, src: fsys, dir: dir, idx: idx, dirty: map[string]bool{}}
	// Whatever changed is made durable however Restore ends: an error or
	// a cancellation midway must not leave changes that a power cut could
	// still undo, since a second Restore finds them done and would not
	// sync them again.
	defer func() {
		if serr := r.sync(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	// Entries come grouped by configured path, each group led by the
	// path itself (checked by readIndex).
	start := 0
	for i := 1; i <= len(idx.Entries); i++ {
		if i < len(idx.Entries) && !slices.Contains(f.paths, idx.Entries[i].Path) {
			continue
		}
		if err := r.restoreRoot(ctx, start, i); err != nil {
			return err
		}
		start = i
	}
	return nil
}

// readIndex reads the index of the backup in dir on fsys and checks that
// it covers exactly f's paths and stays inside them.
func (f *Files) readIndex(fsys durable.FS, dir string) (*filesIndex, error) {
	data, err := readLimited(fsys, filepath.Join(dir, filesIndexName), MaxIndexSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupported) {
			return nil, &CorruptError{Path: filesIndexName, Reason: "unreadable index", Err: err}
		}
		return nil, err
	}
	var idx filesIndex
	if err := jsonwire.Unmarshal(data, &idx); err != nil {
		return nil, &CorruptError{Path: filesIndexName, Reason: "malformed index", Err: err}
	}
	if err := f.checkIndex(&idx); err != nil {
		return nil, &CorruptError{Path: filesIndexName, Reason: err.Error()}
	}
	return &idx, nil
}

func (f *Files) checkIndex(idx *filesIndex) error {
	if idx.Schema != filesSchema {
		return fmt.Errorf("schema %d, want %d", idx.Schema, filesSchema)
	}
	if !slices.Equal(idx.Paths, f.paths) {
		return fmt.Errorf("covers %q but hook %q is configured for %q", idx.Paths, f.name, f.paths)
	}
	if len(idx.Entries) > MaxEntries {
		return fmt.Errorf("%d entries, limit %d", len(idx.Entries), MaxEntries)
	}
	types := make(map[string]string, len(idx.Entries))
	next := 0 // the next configured path expected to lead a group
	root := ""
	for i, e := range idx.Entries {
		if err := checkAbs(e.Path); err != nil {
			return fmt.Errorf("entry %d: %v", i, err)
		}
		if _, dup := types[e.Path]; dup {
			return fmt.Errorf("entry %d: %s listed twice", i, e.Path)
		}
		if next < len(f.paths) && e.Path == f.paths[next] {
			root = e.Path
			next++
		} else {
			// Inside the current configured path, whose entry and every
			// directory above it come first: nothing is ever placed
			// beneath a symlink or a file.
			if root == "" || !within(e.Path, root) {
				return fmt.Errorf("entry %d: %s lies outside the configured paths", i, e.Path)
			}
			if types[filepath.Dir(e.Path)] != typeDir {
				return fmt.Errorf("entry %d: %s is not under a directory of the backup", i, e.Path)
			}
			if e.Type == typeAbsent {
				return fmt.Errorf("entry %d: only a configured path can be absent", i)
			}
		}
		if e.Mode > 0o7777 {
			return fmt.Errorf("entry %d: mode %o", i, e.Mode)
		}
		switch e.Type {
		case typeFile:
			if e.Size < 0 {
				return fmt.Errorf("entry %d: size %d", i, e.Size)
			}
			if err := e.Digest.Validate(); err != nil {
				return fmt.Errorf("entry %d: %v", i, err)
			}
		case typeSymlink:
			if e.Target == "" || len(e.Target) > maxPath || strings.IndexByte(e.Target, 0) >= 0 {
				return fmt.Errorf("entry %d: bad symlink target", i)
			}
		case typeDir, typeAbsent:
		default:
			return fmt.Errorf("entry %d: type %.20q", i, e.Type)
		}
		types[e.Path] = e.Type
	}
	if next != len(f.paths) {
		return fmt.Errorf("no entry for %s", f.paths[next])
	}
	return nil
}

// verifyData checks every file of the backup in dir on fsys against the
// index.
func (f *Files) verifyData(ctx context.Context, fsys durable.FS, dir string, idx *filesIndex) error {
	for i, e := range idx.Entries {
		if e.Type != typeFile {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := dataName(i)
		got, n, err := digestRegular(ctx, fsys, filepath.Join(dir, filepath.FromSlash(name)), f.newHash)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrUnsupported) {
				return &CorruptError{Path: name, Reason: "missing data of " + e.Path, Err: err}
			}
			return err
		}
		if n != e.Size {
			return &CorruptError{Path: name, Reason: fmt.Sprintf("%d bytes, want %d", n, e.Size)}
		}
		if got != e.Digest {
			return &CorruptError{Path: name, Reason: "content changed",
				Err: &verify.DigestMismatchError{What: name, Index: -1, Want: e.Digest, Got: got}}
		}
	}
	return nil
}

// restorer is the state of one Files.Restore.
type restorer struct {
	f    *Files
	live durable.FS // the live paths' filesystem, f.fsys
	src  durable.FS // the backup's filesystem
	dir  string     // the backup's directory on src
	idx  *filesIndex
	// dirty holds the directories whose entries changed and need an fsync.
	dirty map[string]bool
}

// restoreRoot restores the configured path led by entry start and followed
// by its children up to entry end.
//
// The root's parent directory is always synced, even when nothing in it
// changes now: an earlier Restore cut short (by an error, a cancellation,
// a failed sync) may have changed it, and this one, finding the root
// already right, would otherwise never make that change durable.
func (r *restorer) restoreRoot(ctx context.Context, start, end int) error {
	e := r.idx.Entries[start]
	parent := filepath.Dir(e.Path)
	if e.Type == typeAbsent {
		if fi, err := r.live.Lstat(parent); err != nil || !fi.IsDir() {
			return r.remove(e.Path) // nothing there to remove
		}
	} else if err := r.ensureParent(e.Path); err != nil {
		return err
	}
	r.dirty[parent] = true
	if err := r.removeTemps(parent, filepath.Base(e.Path)); err != nil {
		return err
	}
	switch e.Type {
	case typeAbsent:
		return r.remove(e.Path)
	case typeFile:
		return r.writeFile(ctx, start)
	case typeSymlink:
		return r.writeSymlink(e)
	}
	return r.restoreTree(ctx, start, end)
}

// removeTemps removes the temporary files beside the configured path
// dir/base that a restore cut short by a power cut left: the ones
// durable.Write and writeSymlink name "."+base+".tmp-" and 16 hex digits.
// (Those inside a restored directory go with everything else the backup
// does not have.)
func (r *restorer) removeTemps(dir, base string) error {
	entries, err := r.live.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !isTempOf(e.Name(), base) {
			continue
		}
		if err := r.live.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		r.dirty[dir] = true
	}
	return nil
}

// isTempOf reports whether name is that of a temporary file for base.
func isTempOf(name, base string) bool {
	suffix, ok := strings.CutPrefix(name, "."+base+".tmp-")
	if !ok || len(suffix) != 16 {
		return false
	}
	for _, c := range []byte(suffix) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// restoreTree makes the directory of entry start identical to entries
// start..end.
func (r *restorer) restoreTree(ctx context.Context, start, end int) error {
	root := r.idx.Entries[start].Path
	// 1. Make the root a real directory, writable while we work in it.
	if err := r.makeDir(root); err != nil {
		return err
	}
	// 2. Remove what the backup does not have, or has as another type.
	want := make(map[string]string, end-start)
	for _, e := range r.idx.Entries[start+1 : end] {
		want[e.Path] = e.Type
	}
	err := walkDir(r.live, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if t := entryType(d.Type()); t == want[p] {
			if t == typeDir {
				// Writable while we work, so its children can change.
				return r.live.Chmod(p, 0o700)
			}
			return nil
		}
		if err := r.remove(p); err != nil {
			return err
		}
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	// 3. Create and replace, parents first.
	for i := start + 1; i < end; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := r.idx.Entries[i]
		switch e.Type {
		case typeDir:
			err = r.makeDir(e.Path)
		case typeFile:
			err = r.writeFile(ctx, i)
		case typeSymlink:
			err = r.writeSymlink(e)
		}
		if err != nil {
			return err
		}
	}
	// 4. Final directory modes, children first, since a read-only parent
	// would have refused its children; then sync them all, changed or
	// not: an earlier run cut short may have changed them unsynced.
	for i := end - 1; i >= start; i-- {
		if e := r.idx.Entries[i]; e.Type == typeDir {
			if err := r.live.Chmod(e.Path, fileMode(e.Mode)); err != nil {
				return err
			}
			r.dirty[e.Path] = true
		}
	}
	return nil
}

// makeDir makes p a real directory, owner-writable for the restore; it
// replaces a file or symlink in its way.
func (r *restorer) makeDir(p string) error {
	fi, err := r.live.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		return r.live.Chmod(p, 0o700)
	case err == nil:
		if err := r.live.Remove(p); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := r.live.Mkdir(p, 0o700); err != nil {
		return err
	}
	r.dirty[filepath.Dir(p)] = true
	return nil
}

// ensureParent creates the missing parents of a configured path, top
// down, each one's parent to be synced.
func (r *restorer) ensureParent(p string) error {
	var missing []string
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		_, err := r.live.Lstat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for _, d := range slices.Backward(missing) {
		if err := r.live.Mkdir(d, 0o755); err != nil {
			if fi, serr := r.live.Lstat(d); serr != nil || !fi.IsDir() {
				return err
			}
		}
		r.dirty[filepath.Dir(d)] = true
	}
	return nil
}

// remove removes p, whatever it is, if it exists.
func (r *restorer) remove(p string) error {
	if _, err := r.live.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := removeTree(r.live, p); err != nil {
		return err
	}
	r.dirty[filepath.Dir(p)] = true
	return nil
}

// writeFile restores the file of entry i, unless the live file already
// has the same content (then only its mode is restored, if need be).
func (r *restorer) writeFile(ctx context.Context, i int) error {
	e := r.idx.Entries[i]
	mode := fileMode(e.Mode)
	fi, err := r.live.Lstat(e.Path)
	if err == nil && fi.Mode().IsRegular() && fi.Size() == e.Size {
		kept, err := r.keepFile(ctx, e)
		if err != nil || kept {
			return err
		}
	}
	if err == nil && fi.IsDir() {
		// A rename cannot replace a directory.
		if err := r.remove(e.Path); err != nil {
			return err
		}
	}
	name := dataName(i)
	src, err := openRegular(r.src, filepath.Join(r.dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer src.Close()
	return durable.Write(r.live, e.Path, mode, func(w io.Writer) error {
		d := verify.NewDigester(r.f.newHash)
		// Check again as the bytes go out: the backup must not have
		// changed since it was verified.
		if _, err := copyCtx(ctx, io.MultiWriter(w, d), io.LimitReader(src, e.Size+1)); err != nil {
			return err
		}
		if d.Size() != e.Size || d.Digest() != e.Digest {
			return &CorruptError{Path: name, Reason: "changed during restore",
				Err: &verify.DigestMismatchError{What: name, Index: -1, Want: e.Digest, Got: d.Digest()}}
		}
		return nil
	})
}

// keepFile reports whether the live file of e already holds e's content,
// and if so gives it e's mode and fsyncs it. The fsync is not only for
// the mode (metadata of the file, not of its directory): the application
// may have written those bytes without one before the backup read them,
// and a power cut would still lose them. An fsync of a file already on
// disk writes nothing.
func (r *restorer) keepFile(ctx context.Context, e fileEntry) (bool, error) {
	f, err := openRegular(r.live, e.Path)
	if err != nil {
		return false, nil // not a file we can read: replace it
	}
	defer f.Close()
	d := verify.NewDigester(r.f.newHash)
	if _, err := copyCtx(ctx, d, f); err != nil {
		return false, ctx.Err() // nil unless cancelled: replace it
	}
	if d.Size() != e.Size || d.Digest() != e.Digest {
		return false, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if unixMode(fi.Mode()) != e.Mode {
		if err := f.Chmod(fileMode(e.Mode)); err != nil {
			return false, err
		}
	}
	if err := r.f.syncFile(f); err != nil {
		return false, fmt.Errorf("backup: sync %s: %w", e.Path, err)
	}
	return true, nil
}

// writeSymlink restores a symlink atomically, unless it is already there.
func (r *restorer) writeSymlink(e fileEntry) error {
	fi, err := r.live.Lstat(e.Path)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if t, err := r.live.Readlink(e.Path); err == nil && t == e.Target {
			return nil
		}
	}
	if err == nil && fi.IsDir() {
		if err := r.remove(e.Path); err != nil {
			return err
		}
	}
	dir, base := filepath.Split(e.Path)
	var tmp string
	for range 10 {
		// Named as durable.Write names its temporary files, so that
		// removeTemps finds it if a power cut leaves it.
		tmp = filepath.Join(dir, fmt.Sprintf(".%s.tmp-%016x", base, rand.Uint64()))
		if err = r.live.Symlink(e.Target, tmp); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := r.live.Rename(tmp, e.Path); err != nil {
		r.live.Remove(tmp)
		return err
	}
	r.dirty[filepath.Clean(dir)] = true
	return nil
}

// sync fsyncs every directory whose entries changed. It tries them all,
// even after a failure, and joins the errors.
func (r *restorer) sync() error {
	var errs []error
	for _, d := range slices.Sorted(maps.Keys(r.dirty)) {
		if err := r.f.syncDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	r.dirty = map[string]bool{}
	return errors.Join(errs...)
}

// entryType is the index type of a directory entry's type bits.
func entryType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return typeFile
	case m.IsDir():
		return typeDir
	case m&fs.ModeSymlink != 0:
		return typeSymlink
	}
	return "other"
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// unixMode returns the Unix permission bits of m.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// fileMode returns the fs.FileMode of Unix permission bits u.
func fileMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
