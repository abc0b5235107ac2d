package bounded

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var errBig = errors.New("too big")

func TestRead(t *testing.T) {
	tests := []struct {
		input string
		limit int64
		want  error
	}{
		{"", 0, nil},
		{"abc", 3, nil},
		{"abcd", 3, errBig},
		{"abc", 0, errBig},
	}
	for _, tt := range tests {
		b, err := Read(strings.NewReader(tt.input), tt.limit, "input", errBig)
		if !errors.Is(err, tt.want) || (tt.want == nil && (err != nil || string(b) != tt.input)) {
			t.Errorf("Read(%q, %d) = %q, %v; want %v", tt.input, tt.limit, b, err, tt.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o600)
	if b, err := ReadFile(p, 5, errBig); err != nil || string(b) != "12345" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 4, errBig); !errors.Is(err, errBig) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadFile over the limit = %v", err)
	}
	if _, err := ReadFile(p+"-absent", 4, errBig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v", err)
	}
}
