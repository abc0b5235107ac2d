//go:build unix

package backup

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/upkeephq/upkeep/durable"
)

func TestFilesRefusesSpecialFiles(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "ok"), "x", 0o644)
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	h, err := NewFiles("special", root)
	must(t, err)
	dir := filepath.Join(t.TempDir(), "b")
	must(t, os.Mkdir(dir, 0o700))
	if err := h.Backup(t.Context(), durable.OS{}, dir); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Backup = %v, want ErrUnsupported", err)
	}
}
