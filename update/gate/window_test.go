package gate

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests' zones, whatever the machine has
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustWindow(t testing.TB, s string) Window {
	t.Helper()
	w, err := ParseWindow(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustFreeze(t testing.TB, s string) Freeze {
	t.Helper()
	f, err := ParseFreeze(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		days     []time.Weekday
		err      string
	}{
		{in: "mon-fri 01:00-05:00", want: "mon-fri 01:00-05:00", days: []time.Weekday{1, 2, 3, 4, 5}},
		{in: "  SAT,Sun   0:00-6:00 ", want: "sat,sun 00:00-06:00", days: []time.Weekday{6, 0}},
		{in: "daily 22:00-02:00", want: "daily 22:00-02:00", days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}},
		{in: "fri-mon 23:30-24:00", want: "fri-mon 23:30-24:00", days: []time.Weekday{5, 6, 0, 1}},
		{in: "wed 00:00-24:00", want: "wed 00:00-24:00", days: []time.Weekday{3}},
		{in: "mon-wed,fri 12:00-12:01", want: "mon-wed,fri 12:00-12:01", days: []time.Weekday{1, 2, 3, 5}},
		{in: "", err: "want days and times"},
		{in: "daily", err: "want days and times"},
		{in: "daily 01:00-05:00 extra", err: "want days and times"},
		{in: "weekdays 01:00-05:00", err: "unknown day"},
		{in: "mon- 01:00-05:00", err: "unknown day"},
		{in: ",mon 01:00-05:00", err: "unknown day"},
		{in: "mon 01:00", err: "want start-end"},
		{in: "mon 1-5", err: "not a time"},
		{in: "mon 01:60-05:00", err: "not a time of day"},
		{in: "mon 25:00-05:00", err: "not a time of day"},
		{in: "mon 24:00-05:00", err: "24:00 can only end"},
		{in: "mon 24:30-05:00", err: "not a time of day"},
		{in: "mon 05:00-05:00", err: "starts when it ends"},
		{in: "mon 00:00-00:00", err: "starts when it ends"},
		{in: "mon +1:00-05:00", err: "not a time"},
		{in: "mon 001:00-05:00", err: "not a time"},
		{in: "mon 01:00-05:00-06:00", err: "not a time"},
		{in: "daily 01:00-05:00" + string(make([]byte, 100)), err: "longer than"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			w, err := ParseWindow(tc.in)
			if tc.err != "" {
				var we *WindowError
				if !errors.As(err, &we) || !errors.Is(err, ErrBadWindow) || !strings.Contains(we.Reason, tc.err) {
					t.Fatalf("ParseWindow(%q) = %v, want a *WindowError saying %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.String() != tc.want {
				t.Errorf("String() = %q, want %q", w, tc.want)
			}
			for d := time.Sunday; d <= time.Saturday; d++ {
				want := false
				for _, x := range tc.days {
					want = want || x == d
				}
				if w.on(d) != want {
					t.Errorf("on(%s) = %v, want %v", d, w.on(d), want)
				}
			}
			again, err := ParseWindow(w.String())
			if err != nil || again != w {
				t.Errorf("ParseWindow(String()) = %v, %v; want the same window", again, err)
			}
		})
	}
}

func TestParseFreeze(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "2026-12-24", want: "2026-12-24"},
		{in: "2026-12-24..2026-12-26", want: "2026-12-24..2026-12-26"},
		{in: " 2026-12-24 / 2026-12-26 ", want: "2026-12-24..2026-12-26"},
		{in: "2026-12-31..2027-01-01", want: "2026-12-31..2027-01-01"},
		{in: "2026-12-26..2026-12-24", err: "before it starts"},
		{in: "2026-02-30", err: "not a date"},
		{in: "24.12.2026", err: "not a date"},
		{in: "", err: "not a date"},
		{in: "2026-12-24..", err: "not a date"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			f, err := ParseFreeze(tc.in)
			if tc.err != "" {
				var fe *FreezeError
				if !errors.As(err, &fe) || !errors.Is(err, ErrBadFreeze) || !strings.Contains(fe.Reason, tc.err) {
					t.Fatalf("ParseFreeze(%q) = %v, want a *FreezeError saying %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || f.String() != tc.want || !f.valid() {
				t.Fatalf("ParseFreeze(%q) = %v, %v; want %s", tc.in, f, err, tc.want)
			}
		})
	}
}

// TestScheduleDST checks windows on the nights clocks change, at fixed
// instants: 2026's changes are on 8 March and 1 November in New York, 29
// March and 25 October in Berlin; Shanghai has none.
func TestScheduleDST(t *testing.T) {
	ny, berlin, shanghai := mustLoad(t, "America/New_York"), mustLoad(t, "Europe/Berlin"), mustLoad(t, "Asia/Shanghai")
	type probe struct {
		at   time.Time // UTC
		open bool
		next time.Time // zero: at itself when open
	}
	for _, tc := range []struct {
		name   string
		loc    *time.Location
		window string
		probes []probe
	}{
		{
			// Clocks jump from 01:59:59 EST (06:59:59 UTC) to 03:00 EDT: the
			// window lasts three hours, 06:00 to 09:00 UTC.
			name: "NY spring forward across the gap", loc: ny, window: "daily 01:00-05:00",
			probes: []probe{
				{at: utc(2026, 3, 8, 5, 59), next: utc(2026, 3, 8, 6, 0)},
				{at: utc(2026, 3, 8, 6, 0), open: true},
				{at: time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC), open: true},
				{at: utc(2026, 3, 8, 7, 0), open: true}, // 03:00 EDT
				{at: utc(2026, 3, 8, 8, 59), open: true},
				{at: utc(2026, 3, 8, 9, 0), next: utc(2026, 3, 9, 5, 0)}, // 05:00 EDT; next night 01:00 EDT
			},
		},
		{
			// 02:00 does not exist: the window opens when the clock jumps.
			name: "NY window starting in the skipped hour", loc: ny, window: "daily 02:00-04:00",
			probes: []probe{
				{at: utc(2026, 3, 8, 6, 30), next: utc(2026, 3, 8, 7, 0)}, // 01:30 EST
				{at: utc(2026, 3, 8, 7, 0), open: true},                   // 03:00 EDT
				{at: utc(2026, 3, 8, 8, 0), next: utc(2026, 3, 9, 6, 0)},  // 04:00 EDT
				{at: utc(2026, 3, 7, 7, 0), open: true},                   // the night before: 02:00 EST
				{at: utc(2026, 3, 7, 8, 59), open: true},
			},
		},
		{
			// Wholly inside the skipped hour: it does not open that night.
			name: "NY window inside the skipped hour", loc: ny, window: "daily 02:10-02:50",
			probes: []probe{
				{at: utc(2026, 3, 8, 5, 0), next: utc(2026, 3, 9, 6, 10)},
				{at: utc(2026, 3, 8, 7, 10), next: utc(2026, 3, 9, 6, 10)}, // 03:10 EDT
				{at: utc(2026, 3, 8, 6, 10), next: utc(2026, 3, 9, 6, 10)}, // 01:10 EST
				{at: utc(2026, 3, 7, 7, 10), open: true},                   // 02:10 EST the night before
			},
		},
		{
			// 01:00-02:00 is read twice: 05:00 to 06:00 UTC (EDT), then 06:00
			// to 07:00 UTC (EST). The window holds both.
			name: "NY fall back containing the repeated hour", loc: ny, window: "daily 01:00-02:00",
			probes: []probe{
				{at: utc(2026, 11, 1, 4, 59), next: utc(2026, 11, 1, 5, 0)},
				{at: utc(2026, 11, 1, 5, 0), open: true},
				{at: utc(2026, 11, 1, 6, 30), open: true}, // 01:30 EST, second time round
				{at: utc(2026, 11, 1, 7, 0), next: utc(2026, 11, 2, 6, 0)},
			},
		},
		{
			// Ends at the first 01:30 (EDT); the second pass is outside.
			name: "NY fall back ending in the repeated hour", loc: ny, window: "daily 00:00-01:30",
			probes: []probe{
				{at: utc(2026, 11, 1, 4, 0), open: true},
				{at: utc(2026, 11, 1, 5, 29), open: true},
				{at: utc(2026, 11, 1, 5, 30), next: utc(2026, 11, 2, 5, 0)},
				{at: utc(2026, 11, 1, 6, 15), next: utc(2026, 11, 2, 5, 0)}, // 01:15 EST
			},
		},
		{
			// Clocks jump from 01:59:59 CET (00:59:59 UTC) to 03:00 CEST.
			name: "Berlin window starting in the skipped hour", loc: berlin, window: "daily 02:00-04:00",
			probes: []probe{
				{at: utc(2026, 3, 29, 0, 30), next: utc(2026, 3, 29, 1, 0)},
				{at: utc(2026, 3, 29, 1, 0), open: true},
				{at: utc(2026, 3, 29, 2, 0), next: utc(2026, 3, 30, 0, 0)},
			},
		},
		{
			name: "Berlin window inside the skipped hour", loc: berlin, window: "sun 02:15-02:45",
			probes: []probe{
				{at: utc(2026, 3, 28, 12, 0), next: utc(2026, 4, 5, 0, 15)},
				{at: utc(2026, 3, 29, 1, 15), next: utc(2026, 4, 5, 0, 15)}, // 03:15 CEST
				{at: utc(2026, 3, 22, 1, 15), open: true},                   // a week before, 02:15 CET
			},
		},
		{
			// 02:00-03:00 is read twice: 00:00 to 01:00 UTC (CEST), 01:00 to
			// 02:00 UTC (CET).
			name: "Berlin fall back containing the repeated hour", loc: berlin, window: "daily 02:00-03:00",
			probes: []probe{
				{at: utc(2026, 10, 24, 23, 59), next: utc(2026, 10, 25, 0, 0)},
				{at: utc(2026, 10, 25, 0, 0), open: true},
				{at: utc(2026, 10, 25, 1, 30), open: true},
				{at: utc(2026, 10, 25, 2, 0), next: utc(2026, 10, 26, 1, 0)},
			},
		},
		{
			name: "Berlin fall back ending in the repeated hour", loc: berlin, window: "daily 01:00-02:30",
			probes: []probe{
				{at: utc(2026, 10, 24, 23, 0), open: true},
				{at: utc(2026, 10, 25, 0, 29), open: true},
				{at: utc(2026, 10, 25, 0, 30), next: utc(2026, 10, 26, 0, 0)},
				{at: utc(2026, 10, 25, 1, 15), next: utc(2026, 10, 26, 0, 0)}, // 02:15 CET
			},
		},
		{
			name: "Shanghai has no changes", loc: shanghai, window: "daily 02:00-04:00",
			probes: []probe{
				{at: utc(2026, 3, 7, 18, 0), open: true},
				{at: utc(2026, 3, 7, 19, 59), open: true},
				{at: utc(2026, 3, 7, 20, 0), next: utc(2026, 3, 8, 18, 0)},
				{at: utc(2026, 3, 28, 18, 30), open: true},
				{at: utc(2026, 10, 24, 18, 30), open: true},
				{at: utc(2026, 10, 31, 20, 0), next: utc(2026, 11, 1, 18, 0)},
			},
		},
		{
			// Saturday 22:00 EST to Sunday 03:00 EDT: four hours, not five.
			name: "NY across midnight into the change", loc: ny, window: "sat 22:00-03:00",
			probes: []probe{
				{at: utc(2026, 3, 8, 2, 59), next: utc(2026, 3, 8, 3, 0)},
				{at: utc(2026, 3, 8, 3, 0), open: true},
				{at: utc(2026, 3, 8, 6, 59), open: true},
				{at: utc(2026, 3, 8, 7, 0), next: utc(2026, 3, 15, 2, 0)},
			},
		},
		{
			// A window across midnight belongs to the day it starts.
			name: "across midnight", loc: shanghai, window: "mon 22:00-02:00",
			probes: []probe{
				{at: time.Date(2026, 6, 1, 1, 0, 0, 0, shanghai), next: time.Date(2026, 6, 1, 22, 0, 0, 0, shanghai)}, // Monday 01:00
				{at: time.Date(2026, 6, 1, 22, 0, 0, 0, shanghai), open: true},
				{at: time.Date(2026, 6, 2, 1, 59, 0, 0, shanghai), open: true}, // Tuesday
				{at: time.Date(2026, 6, 2, 2, 0, 0, 0, shanghai), next: time.Date(2026, 6, 8, 22, 0, 0, 0, shanghai)},
			},
		},
		{
			name: "weekdays", loc: ny, window: "mon-fri 01:00-05:00",
			probes: []probe{
				{at: time.Date(2026, 6, 6, 3, 0, 0, 0, ny), next: time.Date(2026, 6, 8, 1, 0, 0, 0, ny)}, // Saturday
				{at: time.Date(2026, 6, 8, 4, 59, 0, 0, ny), open: true},
				{at: time.Date(2026, 6, 12, 5, 0, 0, 0, ny), next: time.Date(2026, 6, 15, 1, 0, 0, 0, ny)},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Schedule{Location: tc.loc, Windows: []Window{mustWindow(t, tc.window)}}
			for _, p := range tc.probes {
				if got := s.Open(p.at); got != p.open {
					t.Errorf("Open(%s) = %v, want %v", p.at.In(tc.loc), got, p.open)
				}
				want := p.next
				if p.open {
					want = p.at
				}
				if got := s.Next(p.at); !got.Equal(want) {
					t.Errorf("Next(%s) = %s, want %s", p.at.In(tc.loc), got.In(tc.loc), want.In(tc.loc))
				}
			}
		})
	}
}

func TestScheduleFreezes(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	at := func(m time.Month, d, h, min int) time.Time { return time.Date(2026, m, d, h, min, 0, 0, berlin) }
	xmas := mustFreeze(t, "2026-12-24..2026-12-26")
	newYear := mustFreeze(t, "2027-01-01")
	for _, tc := range []struct {
		name    string
		windows []string
		at      time.Time
		open    bool
		next    time.Time
	}{
		{name: "before", windows: []string{"daily 01:00-05:00"}, at: at(12, 23, 2, 0), open: true},
		{name: "first frozen night", windows: []string{"daily 01:00-05:00"}, at: at(12, 24, 2, 0), next: at(12, 27, 1, 0)},
		{name: "last frozen night", windows: []string{"daily 01:00-05:00"}, at: at(12, 26, 4, 59), next: at(12, 27, 1, 0)},
		{name: "from outside", windows: []string{"daily 01:00-05:00"}, at: at(12, 23, 6, 0), next: at(12, 27, 1, 0)},
		{name: "after", windows: []string{"daily 01:00-05:00"}, at: at(12, 27, 1, 0), open: true},
		{name: "across midnight into a freeze", windows: []string{"daily 22:00-02:00"}, at: at(12, 23, 23, 0), open: true},
		{name: "cut at the frozen midnight", windows: []string{"daily 22:00-02:00"}, at: at(12, 24, 0, 30), next: at(12, 27, 22, 0)},
		{name: "starting on a frozen day", windows: []string{"daily 22:00-02:00"}, at: at(12, 26, 23, 0), next: at(12, 27, 22, 0)},
		{name: "belonging to a frozen day", windows: []string{"daily 22:00-02:00"}, at: at(12, 27, 0, 30), next: at(12, 27, 22, 0)},
		{name: "started before, cut", windows: []string{"wed 20:00-24:00"}, at: at(12, 23, 21, 0), open: true},
		{name: "no windows, frozen", at: at(12, 25, 12, 0), next: at(12, 27, 0, 0)},
		{name: "no windows, open", at: at(12, 27, 12, 0), open: true},
		{name: "second freeze", windows: []string{"fri 01:00-05:00"}, at: at(12, 28, 12, 0), next: time.Date(2027, 1, 8, 1, 0, 0, 0, berlin)},
		{name: "between freezes", windows: []string{"thu,fri 01:00-05:00"}, at: at(12, 28, 12, 0), next: at(12, 31, 1, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Schedule{Location: berlin, Freezes: []Freeze{xmas, newYear}}
			for _, w := range tc.windows {
				s.Windows = append(s.Windows, mustWindow(t, w))
			}
			if got := s.Open(tc.at); got != tc.open {
				t.Errorf("Open(%s) = %v, want %v", tc.at, got, tc.open)
			}
			want := tc.next
			if tc.open {
				want = tc.at
			}
			if got := s.Next(tc.at); !got.Equal(want) {
				t.Errorf("Next(%s) = %s, want %s", tc.at, got.In(berlin), want.In(berlin))
			}
		})
	}
}

func TestScheduleNever(t *testing.T) {
	loc := mustLoad(t, "Asia/Shanghai")
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, loc)
	long := Freeze{From: Date{2025, 12, 1}, To: Date{2028, 1, 1}}
	for _, s := range []Schedule{
		{Location: loc, Freezes: []Freeze{long}},
		{Location: loc, Windows: []Window{mustWindow(t, "daily 01:00-02:00")}, Freezes: []Freeze{long}},
		{Location: loc, Windows: []Window{{}}},
	} {
		if s.Open(at) || !s.Next(at).IsZero() {
			t.Errorf("%+v: Open = %v, Next = %v; want closed for ever", s, s.Open(at), s.Next(at))
		}
	}
}
