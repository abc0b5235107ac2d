package record

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/update/server/store"
)

func TestKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"t-000001", true},
		{"é", true},
		{"", false},
		{"a\x00b", false},
		{"\xff", false},
		{strings.Repeat("x", MaxKey), true},
		{strings.Repeat("x", MaxKey+1), false},
	}
	for _, tt := range tests {
		err := Key(store.KindTerminal, tt.key, tt.key, "device ID")
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, store.ErrInvalid)) {
			t.Errorf("Key(%q) = %v, want ok %v", tt.key, err, tt.ok)
		}
	}
}

func TestTime(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	got := Time(time.Date(2025, 3, 1, 10, 0, 0, 123456789, cst))
	if want := time.Date(2025, 3, 1, 2, 0, 0, 123456000, time.UTC); got != want {
		t.Errorf("Time = %v, want %v", got, want)
	}
	if !Time(time.Time{}).IsZero() {
		t.Error("Time(zero) is not zero")
	}
}

func TestPage(t *testing.T) {
	items := []string{"a", "b", "c", "d"}
	id := func(s string) string { return s }
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, items},
		{"a", 2, []string{"b", "c"}},
		{"bb", 0, []string{"c", "d"}},
		{"d", 0, nil},
		{"z", 1, nil},
	}
	for _, tt := range tests {
		if got := Page(items, id, tt.after, tt.limit); !slices.Equal(got, tt.want) {
			t.Errorf("Page(%q, %d) = %q, want %q", tt.after, tt.limit, got, tt.want)
		}
	}
}
