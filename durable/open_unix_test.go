//go:build unix

package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenRefusesNamedPipe is the regression test for a reader that hung
// on a named pipe planted where a file was expected: opening a FIFO for
// reading blocks until a writer comes. The open must fail at once.
func TestOpenRefusesNamedPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "manifest.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("manifest.json", link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		open func() error
	}{
		{"Open", func() error { f, err := Open(OS{}, fifo); closeIf(f); return err }},
		{"Open via symlink", func() error { f, err := Open(OS{}, link); closeIf(f); return err }},
		{"OpenNoFollow", func() error { f, err := OpenNoFollow(OS{}, fifo); closeIf(f); return err }},
		{"ReadFile", func() error { _, err := ReadFile(OS{}, fifo, 10, errBig); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tt.open() }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "named pipe") {
					t.Fatalf("err = %v, want ErrNotRegular naming a named pipe", err)
				}
			case <-time.After(10 * time.Second):
				// Unblock the open so the test binary can finish.
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				t.Fatal("opening a named pipe blocked")
			}
		})
	}
}

func TestOpenDevice(t *testing.T) {
	if _, err := os.Stat(os.DevNull); err != nil {
		t.Skip(err)
	}
	if _, err := ReadFile(OS{}, os.DevNull, 10, errBig); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "device") {
		t.Fatalf("ReadFile(%s) = %v, want ErrNotRegular naming a device", os.DevNull, err)
	}
}

func closeIf(f File) {
	if f != nil {
		f.Close()
	}
}
