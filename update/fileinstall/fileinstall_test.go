package fileinstall_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/fileinstall"
	"github.com/upkeephq/upkeep/verify"
)

func artifact(t *testing.T, dir, content string) *update.Artifact {
	t.Helper()
	p := filepath.Join(dir, "artifact-"+content)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return &update.Artifact{Path: p, Manifest: &verify.Manifest{Artifact: verify.Artifact{Digest: verify.DigestBytes([]byte(content))}}}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestInstallRollbackCommit(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		existing string // "" means no file before
		steps    []string
		want     string // content after; "<absent>" means no file
		leftover int    // entries in the target dir besides the file itself
	}{
		{"install then commit", "v1", []string{"install", "commit"}, "v2", 0},
		{"install then rollback", "v1", []string{"install", "rollback"}, "v1", 0},
		{"install twice then rollback", "v1", []string{"install", "install", "rollback"}, "v1", 0},
		{"rollback twice", "v1", []string{"install", "rollback", "rollback"}, "v1", 0},
		{"commit twice", "v1", []string{"install", "commit", "commit"}, "v2", 0},
		{"rollback without install", "v1", []string{"rollback"}, "v1", 0},
		{"no file before, rollback", "", []string{"install", "rollback"}, "<absent>", 0},
		{"no file before, commit", "", []string{"install", "commit"}, "v2", 0},
		{"kept file while installed", "v1", []string{"install"}, "v2", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, src := t.TempDir(), t.TempDir()
			target := filepath.Join(dir, "app.bin")
			if tt.existing != "" {
				if err := os.WriteFile(target, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			in := &fileinstall.Installer{Path: target}
			a := artifact(t, src, "v2")
			for _, step := range tt.steps {
				var err error
				switch step {
				case "install":
					err = in.Install(ctx, a)
				case "rollback":
					err = in.Rollback(ctx, a)
				case "commit":
					err = in.Commit(ctx, a)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			got := read(t, target)
			if tt.want == "<absent>" {
				if _, err := os.Stat(target); !os.IsNotExist(err) {
					t.Errorf("file exists with %q, want none", got)
				}
			} else if got != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			n := len(entries(t, dir))
			if tt.want != "<absent>" {
				n--
			}
			if n != tt.leftover {
				t.Errorf("directory holds %v, want %d extra entries", entries(t, dir), tt.leftover)
			}
		})
	}
}

// TestLeftoverFromAnotherUpdate is a Commit cut short by a power cut: the
// kept file of the previous update must not be mistaken for this one's.
func TestLeftoverFromAnotherUpdate(t *testing.T) {
	ctx := context.Background()
	dir, src := t.TempDir(), t.TempDir()
	target := filepath.Join(dir, "app.bin")
	os.WriteFile(target, []byte("v1"), 0o644)
	in := &fileinstall.Installer{Path: target}
	v2, v3 := artifact(t, src, "v2"), artifact(t, src, "v3")
	if err := in.Install(ctx, v2); err != nil {
		t.Fatal(err)
	}
	// v2 committed by the agent, but the installer's Commit never ran.
	if err := in.Install(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if err := in.Rollback(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if got := read(t, target); got != "v2" {
		t.Errorf("rolled back to %q, want v2 (what v3 replaced), not v1", got)
	}
}

func TestInstallHonoursCancellation(t *testing.T) {
	dir, src := t.TempDir(), t.TempDir()
	target := filepath.Join(dir, "app.bin")
	os.WriteFile(target, []byte("v1"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := &fileinstall.Installer{Path: target}
	if err := in.Install(ctx, artifact(t, src, "v2")); err == nil {
		t.Fatal("Install succeeded with a cancelled context")
	}
	if got := read(t, target); got != "v1" {
		t.Errorf("content %q after a cancelled install, want v1", got)
	}
}
