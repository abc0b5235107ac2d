package bounded

import (
	"errors"
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
