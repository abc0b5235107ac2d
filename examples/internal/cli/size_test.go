package cli

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		max  int64
		want int64
		bad  bool
	}{
		{in: "4096", max: 1 << 40, want: 4096},
		{in: "64K", max: 1 << 40, want: 64 << 10},
		{in: "64k", max: 1 << 40, want: 64 << 10},
		{in: "64KiB", max: 1 << 40, want: 64 << 10},
		{in: "64KB", max: 1 << 40, want: 64 << 10},
		{in: "8MiB", max: 1 << 40, want: 8 << 20},
		{in: " 3 MB ", max: 1 << 40, want: 3 << 20},
		{in: "2G", max: 1 << 40, want: 2 << 30},
		{in: "256GiB", max: 256 << 30, want: 256 << 30},
		{in: "0", max: 1 << 40, want: 0},
		{in: "257GiB", max: 256 << 30, bad: true},
		{in: "1G", max: 64 << 20, bad: true},
		{in: "-1", max: 1 << 40, bad: true},
		{in: "1.5G", max: 1 << 40, bad: true},
		{in: "MiB", max: 1 << 40, bad: true},
		{in: "", max: 1 << 40, bad: true},
		{in: "99999999999999999M", max: 1<<63 - 1, bad: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in, tt.max)
		if tt.bad != (err != nil) || !tt.bad && got != tt.want {
			t.Errorf("ParseSize(%q, %d) = %d, %v; want %d, bad %v", tt.in, tt.max, got, err, tt.want, tt.bad)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1GiB", "8m", "0", "-1", "256GiB", "9223372036854775807K"} {
		f.Add(s)
	}
	const max = 256 << 30
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s, max)
		if err != nil {
			return
		}
		if n < 0 || n > max {
			t.Fatalf("ParseSize(%q) = %d, outside 0..%d", s, n, int64(max))
		}
		if back, err := ParseSize(FormatSize(n), max); err != nil || back != n {
			t.Fatalf("FormatSize(%d) = %q, which parses to %d, %v", n, FormatSize(n), back, err)
		}
	})
}
