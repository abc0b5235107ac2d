package backup

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/verify"
)

// ManifestFile is the name of a snapshot's manifest, beside the hooks'
// directories.
const ManifestFile = "snapshot.json"

// Limits on a snapshot.
const (
	// MaxManifestSize bounds a snapshot manifest.
	MaxManifestSize = 256 << 20
	// MaxFiles bounds the files and directories of one snapshot.
	MaxFiles = 2 * MaxEntries
	// MaxLabel bounds a snapshot's label, in bytes.
	MaxLabel = 256
)

// DefaultKeep is the number of snapshots [Store.Prune] keeps, besides the
// protected ones, when [StoreConfig.Keep] is zero.
const DefaultKeep = 3

const (
	manifestSchema = 1
	stagingPrefix  = ".staging-"
	deletingPrefix = ".deleting-"
	seqDigits      = 12
	idTimeLayout   = "20060102T150405Z"
	idLen          = seqDigits + 1 + len(idTimeLayout)
)

// StoreConfig configures a [Store].
type StoreConfig struct {
	// Keep is how many of the newest readable snapshots [Store.Prune]
	// keeps besides the ones it is asked to protect: a protected snapshot
	// never counts toward Keep. With Keep 1, pruning while protecting the
	// snapshot an install in progress depends on keeps that one and the
	// newest other. Zero means [DefaultKeep].
	Keep int
	// NewHash returns the SHA-256 used to record and verify every file.
	// Nil means [verify.NewHash].
	NewHash func() hash.Hash
	// Logger receives a line per snapshot created, restored or deleted.
	// Nil discards.
	Logger *slog.Logger
	// FS is the filesystem the store's directory is on, and the one its
	// hooks write snapshots to and read them from. Nil means durable.OS{}.
	// Tests give a durabletest.CrashFS to cut the power at any operation.
	FS durable.FS
}

// Snapshot describes a stored snapshot.
type Snapshot struct {
	// ID names the snapshot. IDs sort in creation order: a sequence
	// number, then the creation time (for people; the sequence orders
	// them even when the clock was wrong).
	ID      string
	Label   string
	Created time.Time
	// Hooks names the hooks whose data the snapshot holds, in the order
	// they ran.
	Hooks []string
	// Files and Size count the snapshot's files and their bytes.
	Files int
	Size  int64
}

// Store keeps snapshots in a directory (the agent uses <state>/backups),
// one subdirectory per snapshot:
//
//	<dir>/<id>/snapshot.json   the manifest: id, label, time, hooks, and
//	                           the size and SHA-256 of every file
//	<dir>/<id>/<hook>/...      what each hook's Backup wrote
//
// A snapshot is written in a staging directory, fsynced file by file and
// directory by directory, and published by one rename, so after a power
// cut a snapshot is either complete or absent; [OpenStore] removes what a
// crash left behind. Snapshots hold the terminal's private data and are
// made readable by their owner only.
//
// A Store is safe for concurrent use by several goroutines. Only one Store
// may use a directory at a time: OpenStore removes leftovers it takes for
// a crashed writer's.
type Store struct {
	fsys    durable.FS
	dir     string
	keep    int
	newHash func() hash.Hash
	log     *slog.Logger

	// mu is held for reading while a snapshot is read (Get, List, Verify,
	// Restore) and for writing while one is published or deleted.
	mu sync.RWMutex
	// seqMu guards seq, the last sequence number given out.
	seqMu sync.Mutex
	seq   int64
}

// OpenStore opens the store in dir, creating the directory and any missing
// parents if needed (mode 0700, each new one made durable in its parent),
// and removes the staging and half-deleted directories a crash may have
// left.
func OpenStore(dir string, cfg StoreConfig) (*Store, error) {
	if dir == "" {
		return nil, invalid("store directory is empty")
	}
	if cfg.Keep < 0 {
		return nil, invalid("Keep %d is negative", cfg.Keep)
	}
	s := &Store{fsys: durable.Or(cfg.FS), dir: dir, keep: cmp.Or(cfg.Keep, DefaultKeep), newHash: cfg.NewHash, log: cfg.Logger}
	if s.newHash == nil {
		s.newHash = verify.NewHash
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// Every directory created is synced into its parent: syncing only
	// dir's parent would lose dir itself with a missing grandparent.
	if err := durable.MkdirAll(s.fsys, dir, 0o700); err != nil {
		return nil, err
	}
	entries, err := s.fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	cleaned := false
	for _, e := range entries {
		name := e.Name()
		if seq, ok := parseID(name); ok {
			s.seq = max(s.seq, seq)
			continue
		}
		if strings.HasPrefix(name, stagingPrefix) || strings.HasPrefix(name, deletingPrefix) {
			if seq, ok := parseID(strings.TrimPrefix(strings.TrimPrefix(name, stagingPrefix), deletingPrefix)); ok {
				s.seq = max(s.seq, seq)
			}
			s.log.Info("backup: removing what an interrupted write left", "dir", name)
			if err := removeTree(s.fsys, filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			cleaned = true
		}
	}
	if cleaned {
		if err := s.fsys.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// FS returns the filesystem the store is on: [StoreConfig.FS], or
// durable.OS{}.
func (s *Store) FS() durable.FS { return s.fsys }

// Keep returns the number of snapshots Prune keeps besides the protected
// ones.
func (s *Store) Keep() int { return s.keep }

// CheckID reports whether id is a well-formed snapshot ID: 12 digits, '-',
// and a UTC time as 20060102T150405Z. Every method taking an ID checks it,
// so no ID can name anything outside the store.
func CheckID(id string) error {
	if _, ok := parseID(id); !ok {
		return invalid("snapshot ID %.80q", id)
	}
	return nil
}

func parseID(id string) (int64, bool) {
	if len(id) != idLen || id[seqDigits] != '-' {
		return 0, false
	}
	for i := range seqDigits {
		if id[i] < '0' || id[i] > '9' {
			return 0, false
		}
	}
	if _, err := time.Parse(idTimeLayout, id[seqDigits+1:]); err != nil {
		return 0, false
	}
	seq, err := strconv.ParseInt(id[:seqDigits], 10, 64)
	return seq, err == nil && seq > 0
}

func (s *Store) newID(created time.Time) string {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	s.seq++
	return fmt.Sprintf("%0*d-%s", seqDigits, s.seq, created.UTC().Format(idTimeLayout))
}

// manifest is a snapshot's snapshot.json.
type manifest struct {
	Schema  int       `json:"schema"`
	ID      string    `json:"id"`
	Label   string    `json:"label,omitempty"`
	Created time.Time `json:"created"`
	Hooks   []string  `json:"hooks"`
	// Dirs and Files list every directory and file under the snapshot
	// but the manifest, slash-separated, relative to the snapshot.
	Dirs  []string       `json:"dirs"`
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	Path   string        `json:"path"`
	Size   int64         `json:"size"`
	Digest verify.Digest `json:"digest"`
}

func (m *manifest) snapshot() Snapshot {
	sn := Snapshot{ID: m.ID, Label: m.Label, Created: m.Created, Hooks: slices.Clone(m.Hooks), Files: len(m.Files)}
	for _, f := range m.Files {
		sn.Size += f.Size
	}
	return sn
}

// Create runs each hook's Backup into a directory of a new snapshot,
// records every file's size and SHA-256, makes it all durable, and
// publishes the snapshot. label is free text for people (the release being
// installed, say), at most [MaxLabel] bytes.
//
// If a hook fails, the snapshot is abandoned and the error is a
// [*HookError] naming it; if ctx is done, ctx.Err(). Either way nothing is
// left in the store. Create does not prune: call [Store.Prune] when a
// snapshot is no longer needed.
func (s *Store) Create(ctx context.Context, label string, hooks []Hook) (Snapshot, error) {
	names, err := checkHooks(hooks)
	if err != nil {
		return Snapshot{}, err
	}
	if len(label) > MaxLabel || !utf8.ValidString(label) {
		return Snapshot{}, invalid("label: want at most %d bytes of UTF-8", MaxLabel)
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	created := time.Now().UTC()
	id := s.newID(created)
	staging := filepath.Join(s.dir, stagingPrefix+id)
	// The staging directory need not be durable: a power cut before the
	// publishing rename loses the snapshot either way, and OpenStore
	// removes whatever of it survives.
	if err := s.fsys.Mkdir(staging, 0o700); err != nil {
		return Snapshot{}, err
	}
	published := false
	defer func() {
		if !published {
			removeTree(s.fsys, staging)
		}
	}()
	m := &manifest{Schema: manifestSchema, ID: id, Label: label, Created: created, Hooks: names}
	for i, h := range hooks {
		dir := filepath.Join(staging, names[i])
		if err := s.fsys.Mkdir(dir, 0o700); err != nil {
			return Snapshot{}, err
		}
		if err := callHook(ctx, h.Backup, s.fsys, dir); err != nil {
			if ctx.Err() != nil {
				return Snapshot{}, ctx.Err()
			}
			return Snapshot{}, &HookError{Hook: names[i], Op: "backup", Err: err}
		}
	}
	if err := s.seal(ctx, staging, m); err != nil {
		return Snapshot{}, err
	}
	data, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return Snapshot{}, err
	}
	if err := writeNew(s.fsys, filepath.Join(staging, ManifestFile), append(data, '\n'), 0o600, true); err != nil {
		return Snapshot{}, err
	}
	// The hooks' directories and the manifest are entries of staging.
	if err := s.fsys.SyncDir(staging); err != nil {
		return Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	s.mu.Lock()
	// Published by one rename, made durable by syncing the store's
	// directory: a power cut leaves the snapshot complete or absent.
	err = durable.Rename(s.fsys, staging, filepath.Join(s.dir, id))
	s.mu.Unlock()
	if err != nil {
		return Snapshot{}, err
	}
	published = true
	sn := m.snapshot()
	s.log.Info("backup: snapshot created", "id", id, "label", label, "hooks", names, "files", sn.Files, "bytes", sn.Size)
	return sn, nil
}

// callHook calls a hook's method, turning a panic into an error: a vendor's
// bug must not take the agent down in the middle of an update.
func callHook(ctx context.Context, fn func(context.Context, durable.FS, string) error, fsys durable.FS, dir string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panicked: %v", p)
		}
	}()
	return fn(ctx, fsys, dir)
}

// seal fills m's Dirs and Files from what the hooks wrote under staging,
// fsyncing every file, and every directory (whose entries are its files
// and subdirectories). staging itself is synced by the caller once the
// manifest is in it.
func (s *Store) seal(ctx context.Context, staging string, m *manifest) error {
	var dirs []string
	err := walkDir(s.fsys, staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == staging {
			return nil
		}
		rel, err := filepath.Rel(staging, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		hook, _, _ := strings.Cut(rel, "/")
		if !slices.Contains(m.Hooks, hook) {
			return fmt.Errorf("backup: a hook wrote %s outside its directory", rel)
		}
		if rel == hook && !d.IsDir() {
			return &HookError{Hook: hook, Op: "backup", Err: errors.New("replaced its directory")}
		}
		if len(m.Dirs)+len(m.Files) >= MaxFiles {
			return &HookError{Hook: hook, Op: "backup", Err: fmt.Errorf("%w: more than %d files", ErrTooLarge, MaxFiles)}
		}
		switch {
		case d.IsDir():
			m.Dirs = append(m.Dirs, rel)
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			f, err := s.sealFile(ctx, p, rel)
			if err != nil {
				return err
			}
			m.Files = append(m.Files, f)
		default:
			return &HookError{Hook: hook, Op: "backup",
				Err: fmt.Errorf("%w: wrote %s, a %s; hooks may write regular files and directories only",
					ErrUnsupported, rel, typeName(d.Type()))}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := s.fsys.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// sealFile hashes and fsyncs one file of a snapshot being made.
func (s *Store) sealFile(ctx context.Context, p, rel string) (manifestFile, error) {
	f, err := openRegular(s.fsys, p)
	if err != nil {
		return manifestFile{}, err
	}
	defer f.Close()
	d := verify.NewDigester(s.newHash)
	if _, err := copyCtx(ctx, d, f); err != nil {
		return manifestFile{}, err
	}
	if err := f.Sync(); err != nil {
		return manifestFile{}, err
	}
	return manifestFile{Path: rel, Size: d.Size(), Digest: d.Digest()}, nil
}

// Verify recomputes the SHA-256 of every file of snapshot id and checks
// that the snapshot holds exactly the files and directories its manifest
// lists. A problem is a [*CorruptError] naming the file (wrapping a
// [*verify.DigestMismatchError] when content changed); an unknown id is
// [ErrNotFound].
func (s *Store) Verify(ctx context.Context, id string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, err := s.verify(ctx, id)
	return err
}

func (s *Store) verify(ctx context.Context, id string) (*manifest, error) {
	m, err := s.readManifest(id)
	if err != nil {
		return nil, err
	}
	snap := filepath.Join(s.dir, id)
	corrupt := func(p, reason string, err error) error {
		return &CorruptError{Snapshot: id, Path: p, Reason: reason, Err: err}
	}
	// The tree first: cheap, and it catches missing and extra files
	// before anything is hashed.
	dirs := make(map[string]bool, len(m.Dirs))
	for _, d := range m.Dirs {
		dirs[d] = false
	}
	files := make(map[string]manifestFile, len(m.Files))
	for _, f := range m.Files {
		files[f.Path] = f
	}
	seen := make(map[string]bool, len(m.Files))
	n := 0
	err = walkDir(s.fsys, snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == snap {
			return nil
		}
		if n++; n > MaxFiles+1 {
			return corrupt("", fmt.Sprintf("more than %d files", MaxFiles), ErrTooLarge)
		}
		rel, err := filepath.Rel(snap, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ManifestFile {
			return nil
		}
		switch {
		case d.IsDir():
			if _, ok := dirs[rel]; !ok {
				return corrupt(rel, "unexpected directory", nil)
			}
			dirs[rel] = true
		case d.Type().IsRegular():
			f, ok := files[rel]
			if !ok {
				return corrupt(rel, "unexpected file", nil)
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Size() != f.Size {
				return corrupt(rel, fmt.Sprintf("%d bytes, want %d", fi.Size(), f.Size), nil)
			}
			seen[rel] = true
		default:
			return corrupt(rel, "unexpected "+typeName(d.Type()), nil)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range m.Dirs {
		if !dirs[d] {
			return nil, corrupt(d, "missing directory", nil)
		}
	}
	for _, f := range m.Files {
		if !seen[f.Path] {
			return nil, corrupt(f.Path, "missing file", nil)
		}
	}
	for _, f := range m.Files {
		got, size, err := digestRegular(ctx, s.fsys, filepath.Join(snap, filepath.FromSlash(f.Path)), s.newHash)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, corrupt(f.Path, "unreadable", err)
		}
		if size != f.Size {
			return nil, corrupt(f.Path, fmt.Sprintf("%d bytes, want %d", size, f.Size), nil)
		}
		if got != f.Digest {
			return nil, corrupt(f.Path, "content changed",
				&verify.DigestMismatchError{What: f.Path, Index: -1, Want: f.Digest, Got: got})
		}
	}
	return m, nil
}

// readManifest reads and checks the manifest of snapshot id.
func (s *Store) readManifest(id string) (*manifest, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	snap := filepath.Join(s.dir, id)
	fi, err := s.fsys.Lstat(snap)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: snapshot %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &CorruptError{Snapshot: id, Reason: "not a directory"}
	}
	data, err := readLimited(s.fsys, filepath.Join(snap, ManifestFile), MaxManifestSize)
	if err != nil {
		return nil, &CorruptError{Snapshot: id, Path: ManifestFile, Reason: "unreadable manifest", Err: err}
	}
	var m manifest
	if err := jsonwire.Unmarshal(data, &m); err != nil {
		return nil, &CorruptError{Snapshot: id, Path: ManifestFile, Reason: "malformed manifest", Err: err}
	}
	if err := checkManifest(&m, id); err != nil {
		return nil, &CorruptError{Snapshot: id, Path: ManifestFile, Reason: err.Error()}
	}
	return &m, nil
}

func checkManifest(m *manifest, id string) error {
	if m.Schema != manifestSchema {
		return fmt.Errorf("schema %d, want %d", m.Schema, manifestSchema)
	}
	if m.ID != id {
		return fmt.Errorf("manifest is for snapshot %.80q", m.ID)
	}
	if len(m.Label) > MaxLabel || !utf8.ValidString(m.Label) {
		return errors.New("bad label")
	}
	if len(m.Hooks) == 0 || len(m.Hooks) > MaxHooks {
		return fmt.Errorf("%d hooks", len(m.Hooks))
	}
	hooks := make(map[string]bool, len(m.Hooks))
	for _, h := range m.Hooks {
		if err := CheckName(h); err != nil {
			return err
		}
		if hooks[strings.ToLower(h)] {
			return fmt.Errorf("hook %q listed twice", h)
		}
		hooks[strings.ToLower(h)] = true
	}
	if len(m.Dirs)+len(m.Files) > MaxFiles {
		return fmt.Errorf("%d files, limit %d", len(m.Dirs)+len(m.Files), MaxFiles)
	}
	dirs := make(map[string]bool, len(m.Dirs))
	check := func(p string) error {
		if len(p) > maxPath || !fs.ValidPath(p) || p == "." || !filepath.IsLocal(filepath.FromSlash(p)) {
			return fmt.Errorf("path %.80q", p)
		}
		if dirs[p] {
			return fmt.Errorf("path %s listed twice", p)
		}
		parent := path.Dir(p)
		if parent == "." {
			if !slices.Contains(m.Hooks, p) {
				return fmt.Errorf("%s is not a hook's directory", p)
			}
		} else if !dirs[parent] {
			return fmt.Errorf("%s: parent directory not listed before it", p)
		}
		return nil
	}
	for _, d := range m.Dirs {
		if err := check(d); err != nil {
			return err
		}
		dirs[d] = true
	}
	for _, h := range m.Hooks {
		if !dirs[h] {
			return fmt.Errorf("no directory for hook %q", h)
		}
	}
	files := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if err := check(f.Path); err != nil {
			return err
		}
		if path.Dir(f.Path) == "." {
			return fmt.Errorf("file %s outside the hooks' directories", f.Path)
		}
		if files[f.Path] {
			return fmt.Errorf("path %s listed twice", f.Path)
		}
		files[f.Path] = true
		if f.Size < 0 {
			return fmt.Errorf("%s: size %d", f.Path, f.Size)
		}
		if err := f.Digest.Validate(); err != nil {
			return fmt.Errorf("%s: %v", f.Path, err)
		}
	}
	return nil
}

// Restore verifies snapshot id (see [Store.Verify]) and then restores each
// hook from its directory, in order. Nothing is restored unless the whole
// snapshot verifies and holds data for every hook given; a hook it has no
// data for is a [*HookError] matching [ErrNotFound].
//
// A hook that fails does not stop the others: on a rollback every piece
// of data that can come back should. The error then joins a [*HookError]
// per failed hook. If ctx is done, Restore stops and returns ctx.Err();
// hooks are idempotent, so the caller restores again.
func (s *Store) Restore(ctx context.Context, id string, hooks []Hook) error {
	names, err := checkHooks(hooks)
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, err := s.readManifest(id)
	if err != nil {
		return err
	}
	for _, name := range names {
		if !slices.Contains(m.Hooks, name) {
			return &HookError{Hook: name, Op: "restore",
				Err: fmt.Errorf("%w: snapshot %s holds no data for it", ErrNotFound, id)}
		}
	}
	if _, err := s.verify(ctx, id); err != nil {
		return err
	}
	var errs []error
	for i, h := range hooks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := callHook(ctx, h.Restore, s.fsys, filepath.Join(s.dir, id, names[i])); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Error("backup: hook restore failed", "id", id, "hook", names[i], "err", err)
			errs = append(errs, &HookError{Hook: names[i], Op: "restore", Err: err})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.log.Info("backup: snapshot restored", "id", id, "hooks", names)
	return nil
}

// Get returns the description of snapshot id, from its manifest (it does
// not verify the files: see [Store.Verify]).
func (s *Store) Get(id string) (Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, err := s.readManifest(id)
	if err != nil {
		return Snapshot{}, err
	}
	return m.snapshot(), nil
}

// List returns the snapshots, oldest first. A snapshot whose manifest
// cannot be read is left out and logged; [Store.Prune] removes it.
//
// List reads and checks every snapshot's manifest (each up to
// [MaxManifestSize]), so on a store of many large snapshots it takes a
// while; it takes no context and cannot be cancelled. It does not hash
// files: that is [Store.Verify].
func (s *Store) List() ([]Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(ids))
	for _, id := range ids {
		m, err := s.readManifest(id)
		if err != nil {
			s.log.Warn("backup: unreadable snapshot", "id", id, "err", err)
			continue
		}
		out = append(out, m.snapshot())
	}
	return out, nil
}

// ids returns the IDs of the store's snapshot directories, oldest first.
func (s *Store) ids() ([]string, error) {
	entries, err := s.fsys.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if _, ok := parseID(e.Name()); ok {
			ids = append(ids, e.Name())
		}
	}
	// Fixed-width sequence numbers: string order is creation order.
	slices.Sort(ids)
	return ids, nil
}

// Delete removes snapshot id. An unknown id is [ErrNotFound].
//
// It takes time in proportion to the snapshot's files (each is removed,
// then the store directory is fsynced) and holds the store's lock
// meanwhile, so a Create publishing or a Restore starting waits for it. It
// takes no context: once the snapshot is renamed away, stopping halfway
// would only leave work for [OpenStore].
func (s *Store) Delete(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delete(id)
}

// delete renames the snapshot out of the way first, so a power cut in the
// middle never leaves a half-deleted snapshot under a valid ID.
func (s *Store) delete(id string) error {
	snap := filepath.Join(s.dir, id)
	if _, err := s.fsys.Lstat(snap); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: snapshot %s", ErrNotFound, id)
	}
	gone := filepath.Join(s.dir, deletingPrefix+id)
	// The rename is synced before anything is removed, so no power cut
	// leaves a half-removed snapshot under its ID.
	if err := durable.Rename(s.fsys, snap, gone); err != nil {
		return err
	}
	if err := durable.RemoveAll(s.fsys, gone); err != nil {
		return err
	}
	s.log.Info("backup: snapshot deleted", "id", id)
	return nil
}

// Prune deletes every snapshot but the ones named in protect (the
// snapshot of an update still in probation, say) and the newest Keep
// readable others: protected snapshots do not count toward Keep.
// Snapshots whose manifest cannot be read are deleted unless protected;
// they never count among the Keep. An ill-formed protected ID is
// [ErrInvalid], reported before anything is deleted; an unknown one is
// ignored.
//
// Prune reads the manifests of the newest snapshots until it has found
// Keep readable ones, then deletes the rest as [Store.Delete] does, so it
// takes time in proportion to what it deletes, holding the store's lock
// throughout. It takes no context and cannot be cancelled; the agent
// prunes after an update is settled, when nothing waits for the store.
func (s *Store) Prune(protect ...string) error {
	keep := make(map[string]bool, len(protect)+s.keep)
	for _, id := range protect {
		if err := CheckID(id); err != nil {
			return err
		}
		keep[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.ids()
	if err != nil {
		return err
	}
	kept := 0
	for _, id := range slices.Backward(ids) {
		if kept == s.keep {
			break
		}
		if keep[id] {
			continue // protected: kept anyway, and not counted
		}
		if _, err := s.readManifest(id); err == nil {
			keep[id] = true
			kept++
		}
	}
	for _, id := range ids {
		if keep[id] {
			continue
		}
		if err := s.delete(id); err != nil {
			return err
		}
	}
	return nil
}
