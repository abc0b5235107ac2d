package durabletest_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

func TestCrashFSConforms(t *testing.T) {
	durabletest.TestFS(t, func(t *testing.T) (durable.FS, string) {
		f := durabletest.NewCrashFS(1)
		if err := f.Mkdir("/work", 0o755); err != nil {
			t.Fatal(err)
		}
		return f, "/work"
	})
}

func read(fsys durable.FS, name string) string {
	b, err := durable.ReadFile(fsys, name, 1<<20, errors.New("big"))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func exists(fsys durable.FS, name string) bool {
	_, err := fsys.Lstat(name)
	return err == nil
}

func TestWhatAPowerCutLoses(t *testing.T) {
	f := durabletest.NewCrashFS(2)
	f.Mkdir("/d", 0o755)
	f.Persist()

	// A file created, written and synced, in a directory never synced.
	w, _ := f.OpenFile("/d/synced-file", os.O_RDWR|os.O_CREATE, 0o600)
	w.Write([]byte("data"))
	w.Sync()
	w.Close()
	// A file whose directory entry is synced but whose data is not.
	w2, _ := f.OpenFile("/d/synced-entry", os.O_RDWR|os.O_CREATE, 0o600)
	f.SyncDir("/d")
	w2.Write([]byte("lost"))
	// An atomic write: survives.
	durable.WriteFile(f, "/d/atomic", []byte("kept"), 0o600)

	f.PowerCut()
	if _, err := f.Stat("/d"); !errors.Is(err, durabletest.ErrCrashed) {
		t.Errorf("Stat while the power is off: %v", err)
	}
	f.Restart(durabletest.LoseUnsynced)

	// /d was synced after synced-file was created, so its entry is kept.
	if got := read(f, "/d/synced-file"); got != "data" {
		t.Errorf("synced-file = %q, want data", got)
	}
	if got := read(f, "/d/synced-entry"); got != "" {
		t.Errorf("synced-entry = %q, want empty (its data was never synced)", got)
	}
	if got := read(f, "/d/atomic"); got != "kept" {
		t.Errorf("atomic = %q, want kept", got)
	}
	if _, err := w2.Write([]byte("x")); !errors.Is(err, durabletest.ErrCrashed) {
		t.Errorf("a file opened before the crash still works: %v", err)
	}
}

func TestUnsyncedEntriesAreLost(t *testing.T) {
	f := durabletest.NewCrashFS(3)
	f.Mkdir("/d", 0o755)
	durable.WriteFile(f, "/d/a", []byte("A"), 0o600)
	f.SyncDir("/")
	f.Persist()
	// Rename, remove and create without syncing the directory.
	f.Rename("/d/a", "/d/b")
	w, _ := f.OpenFile("/d/new", os.O_RDWR|os.O_CREATE, 0o600)
	w.Sync()
	f.Restart(durabletest.LoseUnsynced)
	if !exists(f, "/d/a") || exists(f, "/d/b") || exists(f, "/d/new") {
		t.Error("unsynced directory changes survived")
	}
}

// TestAtomicWriteSurvivesEveryCrash cuts the power at every operation of a
// durable.WriteFile, under every loss and many seeds: the file always
// reads as the old content or the new, never anything else.
func TestAtomicWriteSurvivesEveryCrash(t *testing.T) {
	for _, loss := range []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome, durabletest.LoseAny} {
		for seed := uint64(0); seed < 30; seed++ {
			for k := 1; ; k++ {
				f := durabletest.NewCrashFS(seed)
				f.Mkdir("/d", 0o755)
				durable.WriteFile(f, "/d/j", []byte("old content"), 0o600)
				f.SyncDir("/")
				f.Persist()
				start := f.Ops()
				f.CrashAfter(k)
				err := durable.WriteFile(f, "/d/j", []byte("the new content"), 0o600)
				if !f.Crashed() {
					if err != nil {
						t.Fatal(err)
					}
					if k > 20 && f.Ops()-start < k {
						break // every operation has been a crash point
					}
					continue
				}
				f.Restart(loss)
				got := read(f, "/d/j")
				if got != "old content" && got != "the new content" {
					t.Fatalf("%s seed %d crash at op %d: %q\n%v", loss, seed, k, got, f.Trace())
				}
				if n, _ := durable.CleanTemp(f, "/d"); n > 1 {
					t.Fatalf("%d temporary files left", n)
				}
			}
		}
	}
}

func TestLoseSomeKeepsPrefixes(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		f := durabletest.NewCrashFS(seed)
		w, _ := f.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600)
		f.SyncDir("/")
		w.Sync()
		w.Write([]byte("aaaa"))
		w.Write([]byte("bbbb"))
		f.Restart(durabletest.LoseSome)
		got := read(f, "/f")
		seen[got] = true
		ok := got == "" || got == "aaaa" || got == "aaaabbbb"
		for i := 0; i < 4 && !ok; i++ {
			ok = got == "aaaa"[:i] || got == "aaaa"+"bbbb"[:i]
		}
		if !ok {
			t.Fatalf("seed %d kept %q, not a prefix of the writes", seed, got)
		}
	}
	for _, want := range []string{"", "aaaa", "aaaabbbb"} {
		if !seen[want] {
			t.Errorf("across 200 seeds LoseSome never kept %q", want)
		}
	}
}

// TestCrashFallsBeforeOrAfter: an armed crash falls just before its
// operation (which fails and does not happen) or just after it (which
// succeeds), both across seeds, and the power is off either way.
func TestCrashFallsBeforeOrAfter(t *testing.T) {
	before, after := 0, 0
	for seed := uint64(0); seed < 100; seed++ {
		f := durabletest.NewCrashFS(seed)
		f.CrashAfter(1)
		err := f.Mkdir("/d", 0o755)
		if !f.Crashed() {
			t.Fatal("no crash at the armed operation")
		}
		if err != nil {
			if !errors.Is(err, durabletest.ErrCrashed) {
				t.Fatalf("Mkdir = %v", err)
			}
			before++
		} else {
			after++
		}
		f.Persist() // make what happened in memory durable, to see it
		f.Restart(durabletest.LoseUnsynced)
		if exists(f, "/d") != (err == nil) {
			t.Fatalf("seed %d: Mkdir returned %v, but /d exists = %v", seed, err, exists(f, "/d"))
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("before %d, after %d: want both", before, after)
	}
}

func TestCapacity(t *testing.T) {
	f := durabletest.NewCrashFS(4)
	f.SetCapacity(10)
	w, _ := f.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600)
	if _, err := w.Write(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 8)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past capacity = %v, want ENOSPC", err)
	}
	if err := durable.WriteFile(f, "/g", make([]byte, 8), 0o600); err == nil {
		t.Error("atomic write past capacity succeeded")
	}
	if exists(f, "/g") {
		t.Error("failed atomic write left its file")
	}
}
