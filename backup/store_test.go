package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/verify"
)

// recordingHook writes fixed files on Backup and records every Restore,
// so a test can tell whether a restore began.
type recordingHook struct {
	name  string
	files map[string]string // relative path → content
	fail  error             // returned by Backup and Restore when set
	panic bool

	mu       sync.Mutex
	restores []string // the directories Restore was called with
}

func (h *recordingHook) Name() string { return h.name }

func (h *recordingHook) Backup(ctx context.Context, fsys durable.FS, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.panic {
		panic("vendor bug")
	}
	if h.fail != nil {
		return h.fail
	}
	for p, c := range h.files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := durable.MkdirAll(fsys, full, 0o700); err != nil {
				return err
			}
			continue
		}
		if err := durable.MkdirAll(fsys, filepath.Dir(full), 0o700); err != nil {
			return err
		}
		if err := durable.WriteFile(fsys, full, []byte(c), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (h *recordingHook) Restore(ctx context.Context, fsys durable.FS, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	h.restores = append(h.restores, dir)
	h.mu.Unlock()
	return h.fail
}

func (h *recordingHook) restored() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.restores)
}

func newHooks() []*recordingHook {
	return []*recordingHook{
		{name: "journal", files: map[string]string{"journal.dat": "sale 1\nsale 2\n", "batch/no": "42", "empty/": ""}},
		{name: "signatures", files: map[string]string{"a/b/0001.png": "\x89PNG", "zero": ""}},
	}
}

func asHooks(hs []*recordingHook) []Hook {
	out := make([]Hook, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}

func openStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "backups"), cfg)
	must(t, err)
	return s
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestStoreRoundTrip(t *testing.T) {
	// Real data through Files, plus a second hook.
	root := t.TempDir()
	live := filepath.Join(root, "pos")
	write(t, filepath.Join(live, "journal.dat"), "sale 1\n", 0o600)
	write(t, filepath.Join(live, "sig", "0001.png"), "\x89PNG", 0o644)
	files, err := NewFiles("pos", live)
	must(t, err)
	rec := &recordingHook{name: "Params", files: map[string]string{"p.json": "{}"}}
	hooks := []Hook{files, rec}

	s := openStore(t, StoreConfig{})
	snap, err := s.Create(t.Context(), "before app@2.0.0", hooks)
	must(t, err)
	if snap.Label != "before app@2.0.0" || !slices.Equal(snap.Hooks, []string{"pos", "Params"}) || snap.Files == 0 || snap.Size == 0 {
		t.Fatalf("Create = %+v", snap)
	}
	if err := CheckID(snap.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(snap.ID)
	must(t, err)
	if got.ID != snap.ID || !got.Created.Equal(snap.Created) || got.Files != snap.Files || got.Size != snap.Size {
		t.Fatalf("Get = %+v, want %+v", got, snap)
	}
	list, err := s.List()
	must(t, err)
	if len(list) != 1 || list[0].ID != snap.ID {
		t.Fatalf("List = %+v", list)
	}
	must(t, s.Verify(t.Context(), snap.ID))
	// Only the snapshot is left in the store: no staging directory.
	if n := names(t, s.Dir()); !slices.Equal(n, []string{snap.ID}) {
		t.Fatalf("store holds %v", n)
	}
	// Private data: owner only.
	fi, err := os.Stat(filepath.Join(s.Dir(), snap.ID))
	must(t, err)
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("snapshot directory mode %v", fi.Mode())
	}

	want := tree(t, live)
	write(t, filepath.Join(live, "journal.dat"), "sale 1\nsale 2 on the new version\n", 0o600)
	write(t, filepath.Join(live, "new"), "x", 0o600)
	must(t, s.Restore(t.Context(), snap.ID, hooks))
	sameTree(t, "after restore", tree(t, live), want)
	if rec.restored() != 1 || rec.restores[0] != filepath.Join(s.Dir(), snap.ID, "Params") {
		t.Fatalf("hook restored from %v", rec.restores)
	}

	// A subset of the hooks may be restored.
	must(t, s.Restore(t.Context(), snap.ID, []Hook{rec}))
	if rec.restored() != 2 {
		t.Fatal("restore of one hook did not run it")
	}
}

func TestStoreManifestRecordsEveryFile(t *testing.T) {
	s := openStore(t, StoreConfig{})
	snap, err := s.Create(t.Context(), "", asHooks(newHooks()))
	must(t, err)
	data, err := os.ReadFile(filepath.Join(s.Dir(), snap.ID, ManifestFile))
	must(t, err)
	var m manifest
	must(t, json.Unmarshal(data, &m))
	var files []string
	for _, f := range m.Files {
		files = append(files, f.Path)
		if f.Digest != verify.DigestBytes([]byte(newHooks()[0].files[strings.TrimPrefix(f.Path, "journal/")])) &&
			f.Digest != verify.DigestBytes([]byte(newHooks()[1].files[strings.TrimPrefix(f.Path, "signatures/")])) {
			t.Errorf("%s: digest %s does not match the content", f.Path, f.Digest)
		}
	}
	slices.Sort(files)
	wantFiles := []string{"journal/batch/no", "journal/journal.dat", "signatures/a/b/0001.png", "signatures/zero"}
	if !slices.Equal(files, wantFiles) {
		t.Fatalf("manifest files %v, want %v", files, wantFiles)
	}
	dirs := slices.Sorted(slices.Values(m.Dirs))
	wantDirs := []string{"journal", "journal/batch", "journal/empty", "signatures", "signatures/a", "signatures/a/b"}
	if !slices.Equal(dirs, wantDirs) {
		t.Fatalf("manifest dirs %v, want %v", dirs, wantDirs)
	}
	if m.ID != snap.ID || m.Schema != manifestSchema {
		t.Fatalf("manifest %+v", m)
	}
}

func TestStoreCorruptionDetectedBeforeRestore(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, snap string)
		path    string // the file the error names; "" to skip the check
		digest  bool   // carries a *verify.DigestMismatchError
	}{
		{"changed byte", func(t *testing.T, snap string) {
			p := filepath.Join(snap, "journal", "journal.dat")
			b, err := os.ReadFile(p)
			must(t, err)
			b[3] ^= 0x20
			must(t, os.WriteFile(p, b, 0o600))
		}, "journal/journal.dat", true},
		{"truncated", func(t *testing.T, snap string) {
			must(t, os.Truncate(filepath.Join(snap, "signatures", "a", "b", "0001.png"), 2))
		}, "signatures/a/b/0001.png", false},
		{"grown", func(t *testing.T, snap string) {
			write(t, filepath.Join(snap, "signatures", "zero"), "not empty", 0o600)
		}, "signatures/zero", false},
		{"missing file", func(t *testing.T, snap string) {
			must(t, os.Remove(filepath.Join(snap, "journal", "batch", "no")))
		}, "journal/batch/no", false},
		{"missing directory", func(t *testing.T, snap string) {
			must(t, os.Remove(filepath.Join(snap, "journal", "empty")))
		}, "journal/empty", false},
		{"extra file", func(t *testing.T, snap string) {
			write(t, filepath.Join(snap, "journal", "empty", "planted"), "x", 0o600)
		}, "journal/empty/planted", false},
		{"extra directory", func(t *testing.T, snap string) {
			must(t, os.Mkdir(filepath.Join(snap, "journal", "planted"), 0o700))
		}, "journal/planted", false},
		{"extra hook directory", func(t *testing.T, snap string) {
			must(t, os.Mkdir(filepath.Join(snap, "params"), 0o700))
		}, "params", false},
		{"file replaced by a symlink", func(t *testing.T, snap string) {
			p := filepath.Join(snap, "journal", "journal.dat")
			must(t, os.Remove(p))
			must(t, os.Symlink("/etc/hostname", p))
		}, "journal/journal.dat", false},
		{"manifest missing", func(t *testing.T, snap string) {
			must(t, os.Remove(filepath.Join(snap, ManifestFile)))
		}, ManifestFile, false},
		{"manifest malformed", func(t *testing.T, snap string) {
			must(t, os.WriteFile(filepath.Join(snap, ManifestFile), []byte(`{"schema":1,`), 0o600))
		}, ManifestFile, false},
		{"manifest of another snapshot", func(t *testing.T, snap string) {
			editManifest(t, snap, func(m *manifest) { m.ID = "000000000099-20250101T000000Z" })
		}, ManifestFile, false},
		{"manifest pointing outside", func(t *testing.T, snap string) {
			editManifest(t, snap, func(m *manifest) { m.Files[0].Path = "journal/../../outside" })
		}, ManifestFile, false},
		{"manifest with a digest that lies", func(t *testing.T, snap string) {
			editManifest(t, snap, func(m *manifest) {
				for i := range m.Files {
					if m.Files[i].Path == "journal/journal.dat" {
						m.Files[i].Digest = verify.DigestBytes([]byte("something else"))
					}
				}
			})
		}, "journal/journal.dat", true},
		{"manifest unlisting a file", func(t *testing.T, snap string) {
			editManifest(t, snap, func(m *manifest) {
				m.Files = slices.DeleteFunc(m.Files, func(f manifestFile) bool { return f.Path == "journal/batch/no" })
			})
		}, "journal/batch/no", false},
		{"manifest with unknown fields", func(t *testing.T, snap string) {
			p := filepath.Join(snap, ManifestFile)
			b, err := os.ReadFile(p)
			must(t, err)
			b = append([]byte(`{"x":1,`), b[1:]...)
			must(t, os.WriteFile(p, b, 0o600))
		}, ManifestFile, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, StoreConfig{})
			hs := newHooks()
			snap, err := s.Create(t.Context(), "", asHooks(hs))
			must(t, err)
			tt.corrupt(t, filepath.Join(s.Dir(), snap.ID))

			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s = %v, want ErrCorrupt", op, err)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Snapshot != snap.ID || tt.path != "" && ce.Path != tt.path {
					t.Fatalf("%s = %v, want a CorruptError naming %s", op, err, tt.path)
				}
				var dm *verify.DigestMismatchError
				if errors.As(err, &dm) != tt.digest {
					t.Fatalf("%s = %v: DigestMismatchError is %v, want %v", op, err, !tt.digest, tt.digest)
				}
			}
			check("Verify", s.Verify(t.Context(), snap.ID))
			check("Restore", s.Restore(t.Context(), snap.ID, asHooks(hs)))
			for _, h := range hs {
				if h.restored() != 0 {
					t.Fatalf("hook %s was restored from a corrupt snapshot", h.name)
				}
			}
		})
	}
}

func editManifest(t *testing.T, snap string, edit func(*manifest)) {
	t.Helper()
	p := filepath.Join(snap, ManifestFile)
	b, err := os.ReadFile(p)
	must(t, err)
	var m manifest
	must(t, json.Unmarshal(b, &m))
	edit(&m)
	b, err = json.Marshal(m)
	must(t, err)
	must(t, os.WriteFile(p, b, 0o600))
}

func TestStoreRestoreHookNotInSnapshot(t *testing.T) {
	s := openStore(t, StoreConfig{})
	hs := newHooks()
	snap, err := s.Create(t.Context(), "", asHooks(hs[:1]))
	must(t, err)
	err = s.Restore(t.Context(), snap.ID, asHooks(hs))
	var he *HookError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &he) || he.Hook != "signatures" || he.Op != "restore" {
		t.Fatalf("Restore = %v, want a HookError naming signatures, matching ErrNotFound", err)
	}
	if hs[0].restored() != 0 {
		t.Fatal("a hook was restored before the missing one was noticed")
	}
}

func TestStoreRestoreContinuesPastAFailedHook(t *testing.T) {
	s := openStore(t, StoreConfig{})
	hs := newHooks()
	snap, err := s.Create(t.Context(), "", asHooks(hs))
	must(t, err)
	boom := errors.New("database locked")
	hs[0].fail = boom
	err = s.Restore(t.Context(), snap.ID, asHooks(hs))
	var he *HookError
	if !errors.Is(err, boom) || !errors.As(err, &he) || he.Hook != "journal" {
		t.Fatalf("Restore = %v, want a HookError naming journal", err)
	}
	if hs[1].restored() != 1 {
		t.Fatal("the second hook was not restored after the first failed")
	}
}

func TestStoreCreateFailures(t *testing.T) {
	boom := errors.New("disk full")
	symlinker := HookFuncs{HookName: "links", BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
		return fsys.Symlink("/etc", filepath.Join(dir, "etc"))
	}}
	escaper := HookFuncs{HookName: "escaper", BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
		return durable.WriteFile(fsys, filepath.Join(dir, "..", "planted"), nil, 0o600)
	}}
	replacer := HookFuncs{HookName: "replacer", BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
		if err := fsys.Remove(dir); err != nil {
			return err
		}
		return durable.WriteFile(fsys, dir, nil, 0o600)
	}}
	tests := []struct {
		name   string
		hooks  []Hook
		target error  // errors.Is
		hook   string // the HookError's hook; "" for none
	}{
		{"hook fails", []Hook{newHooks()[0], &recordingHook{name: "params", fail: boom}}, boom, "params"},
		{"hook panics", []Hook{&recordingHook{name: "params", panic: true}}, nil, "params"},
		{"hook writes a symlink", []Hook{symlinker}, ErrUnsupported, "links"},
		{"hook replaces its directory", []Hook{replacer}, nil, "replacer"},
		{"hook writes outside its directory", []Hook{escaper}, nil, ""},
		{"no backup func", []Hook{HookFuncs{HookName: "nothing"}}, ErrInvalid, "nothing"},
		{"no hooks", nil, ErrInvalid, ""},
		{"nil hook", []Hook{nil}, ErrInvalid, ""},
		{"duplicate names", []Hook{&recordingHook{name: "journal"}, &recordingHook{name: "Journal"}}, ErrInvalid, ""},
		{"bad name", []Hook{&recordingHook{name: "../journal"}}, ErrInvalid, ""},
		{"reserved name", []Hook{&recordingHook{name: "Snapshot.json"}}, ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, StoreConfig{})
			_, err := s.Create(t.Context(), "", tt.hooks)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Fatalf("Create = %v, want %v", err, tt.target)
			}
			var he *HookError
			if tt.hook != "" && (!errors.As(err, &he) || he.Hook != tt.hook || he.Op != "backup") {
				t.Fatalf("Create = %v, want a HookError naming %s", err, tt.hook)
			}
			if n := names(t, s.Dir()); len(n) != 0 {
				t.Fatalf("a failed Create left %v", n)
			}
		})
	}
}

func TestStoreCreateCancelled(t *testing.T) {
	s := openStore(t, StoreConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	hook := HookFuncs{HookName: "slow", BackupFunc: func(ctx context.Context, fsys durable.FS, dir string) error {
		cancel() // cancelled while the hook runs
		return ctx.Err()
	}}
	if _, err := s.Create(ctx, "", []Hook{hook}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create = %v, want context.Canceled", err)
	}
	if n := names(t, s.Dir()); len(n) != 0 {
		t.Fatalf("a cancelled Create left %v", n)
	}
	if _, err := s.Create(ctx, "", asHooks(newHooks())); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create = %v, want context.Canceled", err)
	}
}

func TestStoreBadLabel(t *testing.T) {
	s := openStore(t, StoreConfig{})
	for _, label := range []string{strings.Repeat("x", MaxLabel+1), "\xff"} {
		if _, err := s.Create(t.Context(), label, asHooks(newHooks())); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Create with label %.20q = %v, want ErrInvalid", label, err)
		}
	}
}

func TestStorePrune(t *testing.T) {
	tests := []struct {
		name    string
		keep    int
		n       int
		protect []int // indexes of the snapshots to protect
		corrupt []int // indexes whose manifest is removed
		want    []int // indexes left
	}{
		{"default keeps three", 0, 5, nil, nil, []int{2, 3, 4}},
		{"keep one", 1, 3, nil, nil, []int{2}},
		{"protected kept", 2, 6, []int{0, 4}, nil, []int{0, 3, 4, 5}},
		{"protected newest does not count", 1, 3, []int{2}, nil, []int{1, 2}},
		{"protected oldest does not count", 1, 3, []int{0}, nil, []int{0, 2}},
		{"all protected", 1, 2, []int{0, 1}, nil, []int{0, 1}},
		{"fewer than keep", 3, 2, nil, nil, []int{0, 1}},
		{"corrupt do not count", 2, 5, nil, []int{4}, []int{2, 3}},
		{"corrupt protected kept", 1, 3, []int{2}, []int{2}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, StoreConfig{Keep: tt.keep})
			var ids []string
			for i := range tt.n {
				snap, err := s.Create(t.Context(), fmt.Sprint(i), asHooks(newHooks()[:1]))
				must(t, err)
				ids = append(ids, snap.ID)
			}
			if !slices.IsSorted(ids) {
				t.Fatalf("IDs not in creation order: %v", ids)
			}
			for _, i := range tt.corrupt {
				must(t, os.Remove(filepath.Join(s.Dir(), ids[i], ManifestFile)))
			}
			var protect []string
			for _, i := range tt.protect {
				protect = append(protect, ids[i])
			}
			protect = append(protect, "000000000777-20250101T000000Z") // unknown: ignored
			must(t, s.Prune(protect...))
			var want []string
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if got := names(t, s.Dir()); !slices.Equal(got, want) {
				t.Fatalf("left %v, want %v", got, want)
			}
		})
	}
}

func TestStorePruneInvalidProtect(t *testing.T) {
	s := openStore(t, StoreConfig{Keep: 1})
	for range 3 {
		_, err := s.Create(t.Context(), "", asHooks(newHooks()[:1]))
		must(t, err)
	}
	if err := s.Prune("../x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Prune = %v, want ErrInvalid", err)
	}
	if n := names(t, s.Dir()); len(n) != 3 {
		t.Fatalf("Prune with an invalid protect deleted snapshots: %v", n)
	}
}

func TestStoreDelete(t *testing.T) {
	s := openStore(t, StoreConfig{})
	snap, err := s.Create(t.Context(), "", asHooks(newHooks()))
	must(t, err)
	must(t, s.Delete(snap.ID))
	if n := names(t, s.Dir()); len(n) != 0 {
		t.Fatalf("store holds %v after Delete", n)
	}
	for op, err := range map[string]error{
		"Delete":  s.Delete(snap.ID),
		"Get":     func() error { _, err := s.Get(snap.ID); return err }(),
		"Verify":  s.Verify(t.Context(), snap.ID),
		"Restore": s.Restore(t.Context(), snap.ID, asHooks(newHooks())),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a deleted snapshot = %v, want ErrNotFound", op, err)
		}
	}
}

func TestStoreCleansCrashLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	s, err := OpenStore(dir, StoreConfig{})
	must(t, err)
	kept, err := s.Create(t.Context(), "", asHooks(newHooks()))
	must(t, err)
	// A Create interrupted by a power cut, a Delete likewise, and a file
	// that is none of the store's business.
	staging := filepath.Join(dir, stagingPrefix+"000000000041-20250101T000000Z")
	write(t, filepath.Join(staging, "journal", "journal.dat"), "half written", 0o600)
	write(t, filepath.Join(dir, deletingPrefix+"000000000040-20250101T000000Z", "journal", "x"), "x", 0o600)
	write(t, filepath.Join(dir, "README"), "not ours", 0o600)

	s2, err := OpenStore(dir, StoreConfig{})
	must(t, err)
	if got := names(t, dir); !slices.Equal(got, []string{kept.ID, "README"}) {
		t.Fatalf("after OpenStore the store holds %v", got)
	}
	// The sequence continues past everything seen, leftovers included.
	next, err := s2.Create(t.Context(), "", asHooks(newHooks()))
	must(t, err)
	if !strings.HasPrefix(next.ID, "000000000042-") {
		t.Fatalf("next ID %s, want sequence 42", next.ID)
	}
	list, err := s2.List()
	must(t, err)
	if len(list) != 2 || list[0].ID != kept.ID || list[1].ID != next.ID {
		t.Fatalf("List = %+v", list)
	}
}

func TestStoreIDValidation(t *testing.T) {
	root := t.TempDir()
	s, err := OpenStore(filepath.Join(root, "backups"), StoreConfig{})
	must(t, err)
	// Something an ID with a path in it might reach.
	victim := filepath.Join(root, "victim")
	write(t, filepath.Join(victim, ManifestFile), "{}", 0o600)
	tests := []string{
		"",
		"..",
		"../victim",
		"/etc",
		"000000000001-20250101T000000Z/../../victim",
		"000000000001-20250101T000000Z/",
		"000000000000-20250101T000000Z", // sequence starts at 1
		"00000000001-20250101T000000Z",  // short sequence
		"000000000001_20250101T000000Z",
		"000000000001-20251301T000000Z", // month 13
		"000000000001-20250101T000000",
		"00000000000a-20250101T000000Z",
		"+00000000001-20250101T000000Z",
	}
	for _, id := range tests {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			checks := map[string]error{
				"CheckID": CheckID(id),
				"Get":     func() error { _, err := s.Get(id); return err }(),
				"Verify":  s.Verify(t.Context(), id),
				"Restore": s.Restore(t.Context(), id, asHooks(newHooks())),
				"Delete":  s.Delete(id),
				"Prune":   s.Prune(id),
			}
			for op, err := range checks {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s(%q) = %v, want ErrInvalid", op, id, err)
				}
			}
			if _, err := os.Stat(filepath.Join(victim, ManifestFile)); err != nil {
				t.Fatalf("victim touched: %v", err)
			}
		})
	}
	if err := CheckID("000000000001-20250101T000000Z"); err != nil {
		t.Fatalf("a good ID: %v", err)
	}
}

func TestStoreSymlinkedSnapshotRefused(t *testing.T) {
	s := openStore(t, StoreConfig{})
	snap, err := s.Create(t.Context(), "", asHooks(newHooks()))
	must(t, err)
	// Move the snapshot away and leave a symlink in its place.
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	must(t, os.Rename(filepath.Join(s.Dir(), snap.ID), elsewhere))
	must(t, os.Symlink(elsewhere, filepath.Join(s.Dir(), snap.ID)))
	if err := s.Verify(t.Context(), snap.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v, want ErrCorrupt", err)
	}
}

func TestStoreConcurrentCreates(t *testing.T) {
	s := openStore(t, StoreConfig{Keep: 2})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			snap, err := s.Create(t.Context(), "", asHooks(newHooks()))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = snap.ID
			if err := s.Verify(t.Context(), snap.ID); err != nil {
				t.Error(err)
			}
			if _, err := s.List(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("duplicate IDs: %v", ids)
	}
	must(t, s.Prune())
	if got := names(t, s.Dir()); !slices.Equal(got, ids[len(ids)-2:]) {
		t.Fatalf("after Prune: %v, want the newest two of %v", got, ids)
	}
}

func TestOpenStoreErrors(t *testing.T) {
	if _, err := OpenStore("", StoreConfig{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("OpenStore(\"\") = %v", err)
	}
	if _, err := OpenStore(t.TempDir(), StoreConfig{Keep: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("OpenStore(Keep -1) = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	write(t, file, "", 0o600)
	if _, err := OpenStore(file, StoreConfig{}); err == nil {
		t.Fatal("OpenStore on a file succeeded")
	}
}
