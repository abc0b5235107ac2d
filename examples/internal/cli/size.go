package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize parses a byte count: an integer, optionally followed by K, M
// or G (also KB, KiB, MB, MiB, GB, GiB, any case), all binary: 64K is
// 65536. Counts above max are refused.
func ParseSize(s string, max int64) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > max/mult {
		return 0, fmt.Errorf("invalid size %q: want bytes, or a number with K, M or G (binary), at most %s", s, FormatSize(max))
	}
	return n * mult, nil
}

// FormatSize writes n in the largest binary unit that divides it, as
// ParseSize reads it back: 1GiB, 64KiB, 1000.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// Size is a flag.Value holding a byte count read by ParseSize, at most
// Max (0 means no limit short of the type's).
type Size struct {
	N, Max int64
}

func (f *Size) Set(s string) error {
	max := f.Max
	if max <= 0 {
		max = 1<<63 - 1
	}
	n, err := ParseSize(s, max)
	if err != nil {
		return err
	}
	f.N = n
	return nil
}

func (f *Size) String() string {
	if f == nil {
		return ""
	}
	return FormatSize(f.N)
}
