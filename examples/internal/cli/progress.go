package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar draws a download's progress: a bar redrawn in place on a terminal,
// a line every tenth otherwise (a log file, CI).
type Bar struct {
	w       io.Writer
	tty     bool
	mu      sync.Mutex
	lastPct int
	drawn   bool
}

// NewBar draws on w, in place when w is a terminal.
func NewBar(w io.Writer) *Bar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &Bar{w: w, tty: tty, lastPct: -10}
}

// Update draws done of total bytes at rate bytes per second, eta left.
func (b *Bar) Update(label string, done, total int64, rate float64, eta time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	const width = 30
	fill := width * pct / 100
	line := fmt.Sprintf("%s [%s%s] %3d%% %s of %s  %s/s", label, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		pct, Bytes(done), Bytes(total), Bytes(int64(rate)))
	if eta > 0 {
		line += fmt.Sprintf("  ETA %s", eta.Round(time.Second))
	}
	switch {
	case b.tty:
		fmt.Fprintf(b.w, "\r%-100s", line)
		b.drawn = true
	case pct/10 != b.lastPct/10 || pct == 100 && b.lastPct != 100:
		fmt.Fprintln(b.w, line)
	}
	b.lastPct = pct
}

// Done ends the bar's line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// Bytes formats a byte count in binary units.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
