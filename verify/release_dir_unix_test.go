//go:build unix

package verify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// TestOpenReleaseDirNamedPipe is the regression test for OpenReleaseDir
// hanging on a release directory (a USB stick, say) whose manifest or
// artifact is a named pipe: opening a FIFO for reading blocks until a
// writer comes, before any ctx check. It must be refused at once as
// ErrMalformed.
func TestOpenReleaseDirNamedPipe(t *testing.T) {
	p := newPKI(t, 1)
	data := randomBytes(2*verify.MinChunkSize + 5)
	tests := []struct {
		name string
		file string
	}{
		{"manifest", verify.ManifestFile},
		{"artifact", "app.apk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := packRelease(t, p, data)
			path := filepath.Join(dir, tt.file)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skip("mkfifo:", err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := verify.OpenReleaseDir(context.Background(), dir, p.ring, t0, nil)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, verify.ErrMalformed) || !strings.Contains(err.Error(), "named pipe") {
					t.Fatalf("OpenReleaseDir() = %v, want ErrMalformed naming a named pipe", err)
				}
			case <-time.After(10 * time.Second):
				// A watchdog, not a timing assertion: unblock the open so
				// the test binary can finish, and report the hang.
				if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				t.Fatal("OpenReleaseDir blocked on a named pipe")
			}
		})
	}
}

// TestOpenReleaseDirFollowsSymlinks: a release whose files are symlinks to
// regular files (as some copy tools leave them) verifies like any other;
// what the links point to is checked, so following them is safe.
func TestOpenReleaseDirFollowsSymlinks(t *testing.T) {
	p := newPKI(t, 1)
	dir, _ := packRelease(t, p, randomBytes(verify.MinChunkSize+1))
	elsewhere := t.TempDir()
	for _, name := range []string{verify.ManifestFile, "app.apk"} {
		target := filepath.Join(elsewhere, name)
		if err := os.Rename(filepath.Join(dir, name), target); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := verify.OpenReleaseDir(context.Background(), dir, p.ring, t0, nil); err != nil {
		t.Fatalf("OpenReleaseDir through symlinks: %v", err)
	}
	// A symlink to a tampered artifact is caught like a tampered file.
	b, err := os.ReadFile(filepath.Join(elsewhere, "app.apk"))
	if err != nil {
		t.Fatal(err)
	}
	b[0]++
	if err := os.WriteFile(filepath.Join(elsewhere, "app.apk"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.OpenReleaseDir(context.Background(), dir, p.ring, t0, nil); !errors.Is(err, verify.ErrDigestMismatch) {
		t.Fatalf("OpenReleaseDir of a tampered target = %v, want ErrDigestMismatch", err)
	}
}
