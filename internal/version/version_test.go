package version

import (
	"errors"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0+build.5", "1.0.0", 0},
		{"2.0.0", "10.0.0", -1},
	}
	for _, tt := range tests {
		got, err := Compare(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, v := range []string{"", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0.0", "banana", strings.Repeat("1", 200) + ".0.0"} {
		if err := Check(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) = %v, want ErrInvalid", v, err)
		}
	}
	if _, err := Compare("1.0.0", "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compare with an invalid version: %v", err)
	}
}

func TestSatisfies(t *testing.T) {
	tests := []struct {
		v, c string
		want bool
	}{
		{"1.0.3", "~1.0", true},
		{"1.1.0", "~1.0", false},
		{"1.4.0", "^1.2", true},
		{"2.0.0", "^1.2", false},
		{"1.0.5", ">=1.0.0, <1.1.0", true},
		{"1.1.0", ">=1.0.0, <1.1.0", false},
		{"0.9.0", "~1.0 || ~0.9", true},
	}
	for _, tt := range tests {
		got, err := Satisfies(tt.v, tt.c)
		if err != nil || got != tt.want {
			t.Errorf("Satisfies(%s, %q) = %v, %v; want %v", tt.v, tt.c, got, err, tt.want)
		}
	}
	for _, c := range []string{"", "~~1", ">= banana", strings.Repeat(">=1.0.0,", 40)} {
		if err := CheckConstraint(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckConstraint(%q) = %v, want ErrInvalid", c, err)
		}
	}
}

func TestMax(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"", "1.0.0", "1.0.0"},
		{"1.2.0", "", "1.2.0"},
		{"1.2.0", "1.10.0", "1.10.0"},
		{"2.0.0", "1.10.0", "2.0.0"},
	}
	for _, tt := range tests {
		if got, err := Max(tt.a, tt.b); err != nil || got != tt.want {
			t.Errorf("Max(%q, %q) = %q, %v; want %q", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := Max("", "nope"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Max with an invalid version: %v", err)
	}
}

func FuzzSatisfies(f *testing.F) {
	f.Add("1.0.0", "~1.0")
	f.Add("1.2.3-rc.1+b", ">=1.0.0, <2.0.0 || ^3")
	f.Fuzz(func(t *testing.T, v, c string) {
		ok, err := Satisfies(v, c)
		if err != nil && ok {
			t.Fatal("satisfied with an error")
		}
	})
}
