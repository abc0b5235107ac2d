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
package backuptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/upkeephq/upkeep/backup"
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
	// for data kept in files). A restore must bring it back exactly.
	State func(t *testing.T) map[string][]byte
}

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
func TestHook(t *testing.T, newSubject func(t *testing.T) Subject) {
	t.Run("Name", func(t *testing.T) {
		s := newSubject(t)
		if err := backup.CheckName(s.Hook.Name()); err != nil {
			t.Fatalf("hook name: %v", err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		dir := backupDir(t)
		if err := s.Hook.Backup(t.Context(), dir); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		same(t, "after Backup, the live data", s.State(t), before)
		siblings, err := os.ReadDir(filepath.Dir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(siblings) != 1 {
			t.Fatalf("Backup wrote outside its directory: %d entries beside it", len(siblings)-1)
		}
		mutate(t, s, before)
		if err := s.Hook.Restore(t.Context(), dir); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		same(t, "after Restore, the live data", s.State(t), before)
	})
	t.Run("RestoreIsIdempotent", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		dir := backupDir(t)
		if err := s.Hook.Backup(t.Context(), dir); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		if err := s.Hook.Restore(t.Context(), dir); err != nil {
			t.Fatalf("Restore of unchanged data: %v", err)
		}
		same(t, "after Restore of unchanged data, the live data", s.State(t), before)
		mutate(t, s, before)
		for i := range 2 {
			if err := s.Hook.Restore(t.Context(), dir); err != nil {
				t.Fatalf("Restore #%d: %v", i+1, err)
			}
			same(t, fmt.Sprintf("after Restore #%d, the live data", i+1), s.State(t), before)
		}
		mutate(t, s, before)
		if err := s.Hook.Restore(t.Context(), dir); err != nil {
			t.Fatalf("Restore after a second Mutate: %v", err)
		}
		same(t, "after a second Mutate and Restore, the live data", s.State(t), before)
	})
	t.Run("CancelledBackup", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Hook.Backup(ctx, backupDir(t)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Backup with a cancelled context = %v, want context.Canceled", err)
		}
		same(t, "after a cancelled Backup, the live data", s.State(t), before)
	})
	t.Run("CancelledRestore", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		dir := backupDir(t)
		if err := s.Hook.Backup(t.Context(), dir); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		mutate(t, s, before)
		mutated := s.State(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Hook.Restore(ctx, dir); !errors.Is(err, context.Canceled) {
			t.Fatalf("Restore with a cancelled context = %v, want context.Canceled", err)
		}
		same(t, "after a cancelled Restore, the live data", s.State(t), mutated)
	})
	t.Run("ThroughStore", func(t *testing.T) {
		s := newSubject(t)
		before := s.State(t)
		store, err := backup.OpenStore(t.TempDir(), backup.StoreConfig{})
		if err != nil {
			t.Fatal(err)
		}
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
		store, err := backup.OpenStore(t.TempDir(), backup.StoreConfig{})
		if err != nil {
			t.Fatal(err)
		}
		hooks := []backup.Hook{s.Hook}
		snap, err := store.Create(t.Context(), "conformance", hooks)
		if err != nil {
			t.Fatalf("Store.Create: %v", err)
		}
		tamper(t, filepath.Join(store.Dir(), snap.ID, s.Hook.Name()))
		mutate(t, s, before)
		mutated := s.State(t)
		if err := store.Restore(t.Context(), snap.ID, hooks); !errors.Is(err, backup.ErrCorrupt) {
			t.Fatalf("Store.Restore of a tampered snapshot = %v, want backup.ErrCorrupt", err)
		}
		same(t, "after a refused Store.Restore, the live data", s.State(t), mutated)
	})
}

// tamper changes what a hook wrote into dir, a snapshot's directory for
// it: it flips the first byte of the first non-empty file, or, if the hook
// wrote none, adds a file.
func tamper(t *testing.T, dir string) {
	t.Helper()
	var victim string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if victim != "" || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() > 0 {
			victim = p
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if victim == "" {
		if err := os.WriteFile(filepath.Join(dir, "tampered"), []byte("x"), 0o600); err != nil {
			t.Fatalf("tamper: %v", err)
		}
		return
	}
	// The hook may have written it read-only; a mode is not checked.
	if err := os.Chmod(victim, 0o600); err != nil {
		t.Fatalf("tamper: %v", err)
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// backupDir returns an empty directory, alone in a fresh parent, as a
// store gives a hook.
func backupDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "hook")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
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
	state := make(map[string][]byte)
	for _, root := range paths {
		if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			head := fmt.Sprintf("%s %v\n", kind(fi.Mode()), fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
			var body []byte
			switch {
			case fi.Mode().IsRegular():
				body, err = os.ReadFile(p)
			case fi.Mode()&fs.ModeSymlink != 0:
				var target string
				target, err = os.Readlink(p)
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
