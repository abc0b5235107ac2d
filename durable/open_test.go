package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var errBig = errors.New("too big")

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o600)
	if b, err := ReadFile(OS{}, p, 5, errBig); err != nil || string(b) != "12345" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(OS{}, p, 4, errBig); !errors.Is(err, errBig) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadFile over the limit = %v", err)
	}
	if _, err := ReadFile(OS{}, p+"-absent", 4, errBig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	haveLinks := os.Symlink("file", link) == nil
	dirLink := filepath.Join(dir, "dirlink")
	haveLinks = haveLinks && os.Symlink(".", dirLink) == nil
	tests := []struct {
		name     string
		open     func(FS, string) (File, error)
		path     string
		links    bool // needs symlinks
		want     error
		wantKind string // named in the error
	}{
		{"file", Open, file, false, nil, ""},
		{"file, no follow", OpenNoFollow, file, false, nil, ""},
		{"symlink to a file is followed", Open, link, true, nil, ""},
		{"symlink refused", OpenNoFollow, link, true, ErrNotRegular, "symlink"},
		{"directory", Open, dir, false, ErrNotRegular, "directory"},
		{"directory, no follow", OpenNoFollow, dir, false, ErrNotRegular, "directory"},
		{"symlink to a directory", Open, dirLink, true, ErrNotRegular, "directory"},
		{"missing", Open, filepath.Join(dir, "absent"), false, os.ErrNotExist, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.links && !haveLinks {
				t.Skip("no symlinks here")
			}
			f, err := tt.open(OS{}, tt.path)
			if f != nil {
				defer f.Close()
			}
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil {
				if f != nil {
					t.Fatal("a file was returned with an error")
				}
				if !strings.Contains(err.Error(), tt.wantKind) || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("error %q does not name %s and a %s", err, tt.path, tt.wantKind)
				}
				return
			}
			b, err := io.ReadAll(f)
			if err != nil || string(b) != "data" {
				t.Fatalf("read %q, %v", b, err)
			}
		})
	}
}
