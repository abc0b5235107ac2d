// Package backuptest checks that a [backup.Hook] keeps its promises. A
// vendor runs [TestHook] on each of its hooks:
//
//	func TestJournalHook(t *testing.T) {
//		backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
//			db := openTestJournal(t) // live data in a temporary place
//			return backuptest.Subject{
//				Hook:   journal.NewBackupHook(db),
//				Mutate: func(t *testing.T) { db.Append(t, "sale 42"); db.Delete(t, "sale 7") },
//				State:  func(t *testing.T) map[string][]byte { return db.Dump(t) },
//			}
//		})
//	}
//
// To check that the hook survives power cuts too, put its live data and
// the suite's stores on a durabletest.CrashFS of the subject's own: the
// suite then cuts the power at every operation of Store.Create and
// Store.Restore.
//
//	backuptest.TestHook(t, func(t *testing.T) backuptest.Subject {
//		fsys := durabletest.NewCrashFS(1)
//		fsys.Mkdir("/scratch", 0o700)
//		db := openTestJournalOn(t, fsys, "/data/journal")
//		return backuptest.Subject{
//			Hook:    journal.NewBackupHook(db),
//			Mutate:  ...,
//			State:   ...,
//			FS:      fsys,
//			Scratch: "/scratch",
//		}
//	})
package backuptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

// Subject is a hook under test and the live data it guards, made fresh for
// each subtest.
type Subject struct {
	// Hook is the hook under test.
	Hook backup.Hook
	// Mutate changes the live data the way an update might: edit, add,
	// remove. It must change what State returns.
	Mutate func(t *testing.T)
	// State captures the live data, as names and bytes (see [TreeState]
	// and [TreeStateOn] for data kept in files). A restore must bring it
	// back exactly.
	State func(t *testing.T) map[string][]byte
	// FS is the filesystem the suite keeps its backups and stores on,
	// which the hook is given, and where the hook's live data should be
	// too. Nil means durable.OS{}. When FS is a *durabletest.CrashFS, the
	// suite also cuts the power at every operation of Store.Create and
	// Store.Restore (see [TestHook]); each Subject must then have a
	// CrashFS of its own, holding all the live data the hook guards.
	FS durable.FS
	// Scratch is an empty directory on FS for the suite's backups and
	// stores. Empty means a fresh t.TempDir() each time, which only makes
	// sense on the OS's filesystem: set it for any other FS.
	Scratch string
}

func (s Subject) fs() durable.FS { return durable.Or(s.FS) }

// TestHook runs the conformance suite on the hooks newSubject makes. It
// checks that:
//
//   - the hook's name is valid ([backup.CheckName]);
//   - Backup leaves the live data alone and writes only inside its
//     directory;
//   - after Mutate, Restore brings the live data back byte for byte;
//   - Restore is idempotent: twice in a row, or on unchanged data, and
//     the same backup restores again after another Mutate;
//   - a cancelled context makes Backup and Restore return
//     context.Canceled, and Restore then changes nothing;
//   - the hook works through a [backup.Store]: created, verified and
//     restored;
//   - a snapshot tampered with after it was made (a file of the hook's
//     changed, or one added) makes [backup.Store.Restore] fail with
//     [backup.ErrCorrupt] before the hook changes anything.
//
// When [Subject.FS] is a *durabletest.CrashFS, it also checks, cutting the
// power at every mutating operation in turn, under both
// durabletest.LoseUnsynced and durabletest.LoseSome, that:
//
//   - a power cut during Store.Create leaves the live data as it was, the
//     store opens again, and the snapshot is absent or complete (it
//     verifies and restores);
//   - after a power cut during Store.Restore, the snapshot still
//     verifies, and Store.Restore run again brings the live data back
//     byte for byte;
//   - once Store.Restore has returned, a power cut does not undo it.
//
// For those, the suite persists the CrashFS (durabletest.CrashFS.Persist)
// right after newSubject: the live data as the subject set it up is taken
// as being on disk already.
func TestHook(t *testing.T, newSubject func(t *testing.T) Subject) {
	t.Run("Name", func(t *testing.T) {
		s := newSubject(t)
		if err := backup.CheckName(s.Hook.Name()); err != nil {
			t.Fatalf("hook name: %v", err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := newSubject(t)
		fsys := s.fs()
		before := s.State(t)
		dir := backupDir(t, s)
		if err := s.Hook.Backup(t.Context(), fsys, dir); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		same(t, "after Backup, the live data", s.State(t), before)
		siblings, err := fsys.ReadDir(filepath.Dir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(siblings) != 1 {
			t.Fatalf("Backup wrote outside its directory: %d entries beside it", len(siblings)-1)
		}
		mutate(t, s, before)
		if err := s.Hook.Restore(t.Context(), fsys, dir); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		same(t, "after Restore, the live data", s.State(t), before)
	})
	t.Run("RestoreIsIdempotent", func(t *testing.T) {
		s := newSubject(t)
		fsys := s.fs()
		before := s.State(t)
		dir := backupDir(t, s)
		if err := s.Hook.Backup(t.Context(), fsys, dir); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		if err := s.Hook.Restore(t.Context(), fsys, dir); err != nil {
			t.Fatalf("Restore of unchanged data: %v", err)
		}
		same(t, "after Restore of unchanged data, the live data", s.State(t), before)
		mutate(t, s, before)
		for i := range 2 {
			if err := s.Hook.Restore(t.Context(), fsys, dir); err != nil {
				t.Fatalf("Restore #%d: %v", i+1, err)
			}
			same(t, fmt.Sprintf("after Restore #%d, the live data", i+1), s.State(t), before)
		}
		mutate(t, s, before)
		if err := s.Hook.Restore(t.Context(), fsys, dir); err != nil {
			t.Fatalf("Restore after a second Mutate: %v", err)
		}
		same(t, "after a second Mutate and Restore, the live data", s.State(t), before)
	})
	t.Run("CancelledBackup", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Hook.Backup(ctx, s.fs(), backupDir(t, s)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Backup with a cancelled context = %v, want context.Canceled", err)
		}
		same(t, "after a cancelled Backup, the live data", s.State(t), before)
	})
	t.Run("CancelledRestore", func(t *testing.T) {
		s := newSubject(t)
		fsys := s.fs()
		before := s.State(t)
		dir := backupDir(t, s)
		if err := s.Hook.Backup(t.Context(), fsys, dir); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		mutate(t, s, before)
		mutated := s.State(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Hook.Restore(ctx, fsys, dir); !errors.Is(err, context.Canceled) {
			t.Fatalf("Restore with a cancelled context = %v, want context.Canceled", err)
		}
		same(t, "after a cancelled Restore, the live data", s.State(t), mutated)
	})
	t.Run("ThroughStore", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		store := openStore(t, s)
		hooks := []backup.Hook{s.Hook}
		snap, err := store.Create(t.Context(), "conformance", hooks)
		if err != nil {
			t.Fatalf("Store.Create: %v", err)
		}
		if err := store.Verify(t.Context(), snap.ID); err != nil {
			t.Fatalf("Store.Verify: %v", err)
		}
		mutate(t, s, before)
		if err := store.Restore(t.Context(), snap.ID, hooks); err != nil {
			t.Fatalf("Store.Restore: %v", err)
		}
		same(t, "after Store.Restore, the live data", s.State(t), before)
		if err := store.Verify(t.Context(), snap.ID); err != nil {
			t.Fatalf("Store.Verify after Restore (Restore must not write to the snapshot): %v", err)
		}
	})
	t.Run("TamperedSnapshot", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		store := openStore(t, s)
		hooks := []backup.Hook{s.Hook}
		snap, err := store.Create(t.Context(), "conformance", hooks)
		if err != nil {
			t.Fatalf("Store.Create: %v", err)
		}
		tamper(t, s.fs(), filepath.Join(store.Dir(), snap.ID, s.Hook.Name()))
		mutate(t, s, before)
		mutated := s.State(t)
		if err := store.Restore(t.Context(), snap.ID, hooks); !errors.Is(err, backup.ErrCorrupt) {
			t.Fatalf("Store.Restore of a tampered snapshot = %v, want backup.ErrCorrupt", err)
		}
		same(t, "after a refused Store.Restore, the live data", s.State(t), mutated)
	})
	for _, loss := range []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome} {
		t.Run("PowerCutDuringCreate/"+loss.String(), func(t *testing.T) {
			everyCrash(t, newSubject, func(t *testing.T, s Subject, cfs *durabletest.CrashFS, k int) bool {
				return crashCreate(t, s, cfs, k, loss)
			})
		})
		t.Run("PowerCutDuringRestore/"+loss.String(), func(t *testing.T) {
			everyCrash(t, newSubject, func(t *testing.T, s Subject, cfs *durabletest.CrashFS, k int) bool {
				return crashRestore(t, s, cfs, k, loss)
			})
		})
	}
}

// maxCrashPoints bounds the operations a power-cut check cuts the power
// at, so that a hook that never ends its work cannot hang the suite.
const maxCrashPoints = 100_000

// everyCrash runs try with k = 1, 2, ... on fresh subjects until a run
// ends before its k-th operation: the power has then been cut at every
// operation. It skips subjects not on a CrashFS.
func everyCrash(t *testing.T, newSubject func(*testing.T) Subject, try func(*testing.T, Subject, *durabletest.CrashFS, int) bool) {
	for k := 1; k <= maxCrashPoints; k++ {
		s := newSubject(t)
		cfs, ok := s.FS.(*durabletest.CrashFS)
		if !ok {
			t.Skip("Subject.FS is not a *durabletest.CrashFS")
		}
		cfs.Persist()
		if !try(t, s, cfs, k) {
			t.Logf("the power was cut at each of %d operations", k-1)
			return
		}
		if t.Failed() {
			return
		}
	}
	t.Fatalf("still not done after %d operations", maxCrashPoints)
}

// crashCreate cuts the power at the k-th operation of Store.Create and
// checks what comes back. It reports whether the power was cut.
func crashCreate(t *testing.T, s Subject, cfs *durabletest.CrashFS, k int, loss durabletest.Loss) bool {
	t.Helper()
	before := s.State(t)
	store := openStore(t, s)
	hooks := []backup.Hook{s.Hook}
	cfs.CrashAfter(k)
	snap, err := store.Create(t.Context(), "conformance", hooks)
	if !cfs.Crashed() {
		cfs.CrashAfter(0)
		if err != nil {
			t.Fatalf("Store.Create: %v", err)
		}
		return false
	}
	cfs.Restart(loss)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("power cut at operation %d of Store.Create (%s): %s\nlast operations:\n%s",
			k, loss, fmt.Sprintf(format, args...), joinLines(cfs.Trace()))
	}
	store, err = backup.OpenStore(store.Dir(), backup.StoreConfig{FS: cfs})
	if err != nil {
		fail("OpenStore: %v", err)
	}
	if got := s.State(t); !equal(got, before) {
		fail("the live data changed")
	}
	list, err := store.List()
	if err != nil {
		fail("List: %v", err)
	}
	if len(list) > 1 || len(list) == 1 && snap.ID != "" && list[0].ID != snap.ID {
		fail("the store holds %d snapshots", len(list))
	}
	if len(list) == 0 {
		return true // absent: fine
	}
	if err := store.Verify(t.Context(), list[0].ID); err != nil {
		fail("a published snapshot does not verify: %v", err)
	}
	mutate(t, s, before)
	if err := store.Restore(t.Context(), list[0].ID, hooks); err != nil {
		fail("Store.Restore of the snapshot that survived: %v", err)
	}
	if got := s.State(t); !equal(got, before) {
		fail("the snapshot that survived does not restore the live data")
	}
	return true
}

// crashRestore cuts the power at the k-th operation of Store.Restore,
// then restores again. It reports whether the power was cut.
func crashRestore(t *testing.T, s Subject, cfs *durabletest.CrashFS, k int, loss durabletest.Loss) bool {
	t.Helper()
	before := s.State(t)
	store := openStore(t, s)
	hooks := []backup.Hook{s.Hook}
	snap, err := store.Create(t.Context(), "conformance", hooks)
	if err != nil {
		t.Fatalf("Store.Create: %v", err)
	}
	mutate(t, s, before)
	cfs.CrashAfter(k)
	err = store.Restore(t.Context(), snap.ID, hooks)
	crashed := cfs.Crashed()
	what := fmt.Sprintf("after a power cut at operation %d of Store.Restore (%s)", k, loss)
	if !crashed {
		cfs.CrashAfter(0)
		if err != nil {
			t.Fatalf("Store.Restore: %v", err)
		}
		what = fmt.Sprintf("after Store.Restore returned and the power was cut (%s)", loss)
	} else {
		cfs.Restart(loss)
		if store, err = backup.OpenStore(store.Dir(), backup.StoreConfig{FS: cfs}); err != nil {
			t.Fatalf("%s, OpenStore: %v", what, err)
		}
		if err := store.Verify(t.Context(), snap.ID); err != nil {
			t.Fatalf("%s, the snapshot does not verify: %v\nlast operations:\n%s", what, err, joinLines(cfs.Trace()))
		}
		if err := store.Restore(t.Context(), snap.ID, hooks); err != nil {
			t.Fatalf("%s, Store.Restore again: %v", what, err)
		}
		same(t, what+" and a second Store.Restore, the live data", s.State(t), before)
		what += ", a second Store.Restore and another power cut"
	}
	// What Restore did must be durable once it has returned.
	cfs.PowerCut()
	cfs.Restart(loss)
	same(t, what+", the live data", s.State(t), before)
	return crashed
}

// tamper changes what a hook wrote into dir, a snapshot's directory for
// it on fsys: it flips the first byte of the first non-empty file, or, if
// the hook wrote none, adds a file.
func tamper(t *testing.T, fsys durable.FS, dir string) {
	t.Helper()
	var victim string
	err := walk(fsys, dir, func(p string, fi fs.FileInfo) error {
		if victim == "" && fi.Mode().IsRegular() && fi.Size() > 0 {
			victim = p
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if victim == "" {
		if err := durable.WriteFile(fsys, filepath.Join(dir, "tampered"), []byte("x"), 0o600); err != nil {
			t.Fatalf("tamper: %v", err)
		}
		return
	}
	b, err := readFile(fsys, victim)
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	b[0] ^= 0xff
	// Replaced, not written in place: the hook may have written it
	// read-only, and a mode is not checked.
	if err := durable.WriteFile(fsys, victim, b, 0o600); err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// walk calls fn on root and, if a directory, everything under it, parents
// first, in lexical order, never following a symlink.
func walk(fsys durable.FS, root string, fn func(p string, fi fs.FileInfo) error) error {
	fi, err := fsys.Lstat(root)
	if err != nil {
		return err
	}
	if err := fn(root, fi); err != nil || !fi.IsDir() {
		return err
	}
	entries, err := fsys.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := walk(fsys, filepath.Join(root, e.Name()), fn); err != nil {
			return err
		}
	}
	return nil
}

// maxStateFile bounds a file TreeState reads.
const maxStateFile = 1 << 30

var errTooLarge = errors.New("backuptest: file too large")

func readFile(fsys durable.FS, p string) ([]byte, error) {
	return durable.ReadFile(fsys, p, maxStateFile, errTooLarge)
}

// scratchDir returns a new empty directory, alone in a fresh parent: in
// s.Scratch on s.FS, or a t.TempDir().
func scratchDir(t *testing.T, s Subject) string {
	t.Helper()
	if s.Scratch == "" {
		if _, ok := s.fs().(durable.OS); !ok {
			t.Fatal("backuptest: Subject.FS is not the OS's, so Subject.Scratch must name a directory on it")
		}
		return t.TempDir()
	}
	fsys := s.fs()
	for i := 1; ; i++ {
		d := filepath.Join(s.Scratch, fmt.Sprintf("t%d", i))
		err := fsys.Mkdir(d, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			// Durable, so that a store in it survives a power cut.
			err = fsys.SyncDir(s.Scratch)
		}
		if err != nil {
			t.Fatalf("backuptest: scratch directory: %v", err)
		}
		return d
	}
}

// backupDir returns an empty directory, alone in a fresh parent, as a
// store gives a hook.
func backupDir(t *testing.T, s Subject) string {
	t.Helper()
	dir := filepath.Join(scratchDir(t, s), "hook")
	if err := s.fs().Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openStore opens a store in a fresh directory on s.FS.
func openStore(t *testing.T, s Subject) *backup.Store {
	t.Helper()
	store, err := backup.OpenStore(filepath.Join(scratchDir(t, s), "backups"), backup.StoreConfig{FS: s.FS})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func mutate(t *testing.T, s Subject, before map[string][]byte) {
	t.Helper()
	s.Mutate(t)
	if equal(s.State(t), before) {
		t.Fatal("Mutate did not change the state: the suite cannot tell a restore from nothing")
	}
}

func equal(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, bytes.Equal) }

// same fails the test, listing the differences, unless got equals want.
func same(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if equal(got, want) {
		return
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q", k))
		case !bytes.Equal(g, want[k]):
			diffs = append(diffs, fmt.Sprintf("changed %q: got %.60q, want %.60q", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %q", k))
		}
	}
	t.Fatalf("%s differs from what it should be:\n%s", what, joinLines(diffs))
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("\t" + l + "\n")
	}
	return b.String()
}

// TreeState captures files and directory trees for [Subject.State]: for
// every path that exists, recursively, an entry keyed by its path whose
// value holds its type, its permission bits, and its content (a file's
// bytes, a symlink's target). Paths that do not exist have no entry.
func TreeState(t testing.TB, paths ...string) map[string][]byte {
	t.Helper()
	return TreeStateOn(t, durable.OS{}, paths...)
}

// TreeStateOn is [TreeState] for paths on fsys.
func TreeStateOn(t testing.TB, fsys durable.FS, paths ...string) map[string][]byte {
	t.Helper()
	state := make(map[string][]byte)
	for _, root := range paths {
		if _, err := fsys.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := walk(fsys, root, func(p string, fi fs.FileInfo) error {
			head := fmt.Sprintf("%s %v\n", kind(fi.Mode()), fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
			var body []byte
			var err error
			switch {
			case fi.Mode().IsRegular():
				body, err = readFile(fsys, p)
			case fi.Mode()&fs.ModeSymlink != 0:
				var target string
				target, err = fsys.Readlink(p)
				body = []byte(target)
			}
			if err != nil {
				return err
			}
			state[p] = append([]byte(head), body...)
			return nil
		})
		if err != nil {
			t.Fatalf("TreeState: %v", err)
		}
	}
	return state
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}
