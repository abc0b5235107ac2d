package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"first", "second, longer", "3"} {
		if err := WriteFile(OS{}, p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("content %q, %v; want %q", got, err, content)
		}
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", info.Mode().Perm())
	}
	assertOnly(t, dir, "f")
}

func TestWriteFailureLeavesTheOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(OS{}, p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(OS{}, p, 0o600, func(w io.Writer) error {
		w.Write([]byte("half of the new"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want boom", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("content %q after a failed write, want old", got)
	}
	assertOnly(t, dir, "f")
}

func TestRenameAndRemoveAll(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "sub", "b")
	os.MkdirAll(filepath.Dir(b), 0o755)
	os.WriteFile(a, []byte("x"), 0o600)
	if err := Rename(OS{}, a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "x" {
		t.Errorf("renamed content %q", got)
	}
	if err := RemoveAll(OS{}, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(OS{}, filepath.Join(dir, "absent")); err != nil {
		t.Errorf("RemoveAll of an absent path: %v", err)
	}
	assertOnly(t, dir)
	if err := (OS{}).SyncDir(filepath.Join(dir, "absent")); err == nil {
		t.Error("SyncDir of an absent directory succeeded")
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(names) {
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		t.Errorf("directory holds %v, want %v", got, names)
	}
}

func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "journal.json"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, ".journal.json.tmp-123"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, ".r1.json.tmp-9"), nil, 0o600)
	os.Mkdir(filepath.Join(dir, ".keep.tmp-dir"), 0o700)
	n, err := CleanTemp(OS{}, dir)
	if err != nil || n != 2 {
		t.Fatalf("CleanTemp = %d, %v; want 2", n, err)
	}
	assertOnly(t, dir, ".keep.tmp-dir", "journal.json")
}

func TestMkdirAll(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "c")
	for range 2 {
		if err := MkdirAll(OS{}, p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("%s: %v", p, err)
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o600)
	if err := MkdirAll(OS{}, filepath.Join(f, "sub"), 0o700); err == nil {
		t.Error("MkdirAll under a file succeeded")
	}
	if err := MkdirAll(OS{}, f, 0o700); err == nil {
		t.Error("MkdirAll over a file succeeded")
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, nil, 0o600)
	if err := Remove(OS{}, p); err != nil {
		t.Fatal(err)
	}
	if err := Remove(OS{}, p); err != nil {
		t.Errorf("Remove of an absent file: %v", err)
	}
	assertOnly(t, dir)
}
