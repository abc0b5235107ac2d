package gate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxWindowText bounds the text ParseWindow and ParseFreeze read.
const maxWindowText = 100

// Window is a weekly maintenance window in the terminal's local time, such
// as "mon-fri 01:00-05:00", "sat,sun 00:00-06:00" or "daily 22:00-02:00".
// A window whose end is before its start crosses midnight and belongs to
// the day it starts: "fri 22:00-02:00" is open from Friday 22:00 to
// Saturday 02:00. "24:00" ends a window at midnight.
//
// The zero Window never opens; make Windows with [ParseWindow].
type Window struct {
	days       uint8 // bit i is time.Weekday(i)
	start, end int   // minutes after midnight; end ≤ start crosses midnight
	text       string
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseWindow reads a window: days, a space, then start-end in 24-hour
// local time (H:MM or HH:MM). Days are "daily", or a comma-separated list
// of days ("mon" ... "sun") and ranges of days ("mon-fri", or "fri-mon"
// across the weekend). The start may not equal the end; "00:00-24:00" is
// the whole day. Case and surrounding spaces do not matter. A window that
// cannot be read is a [*WindowError].
func ParseWindow(s string) (Window, error) {
	bad := func(format string, args ...any) (Window, error) {
		return Window{}, &WindowError{Input: cut(s), Reason: fmt.Sprintf(format, args...)}
	}
	if len(s) > maxWindowText {
		return bad("longer than %d bytes", maxWindowText)
	}
	fields := strings.Fields(strings.ToLower(s))
	if len(fields) != 2 {
		return bad(`want days and times, as in "mon-fri 01:00-05:00"`)
	}
	days, err := parseDays(fields[0])
	if err != nil {
		return bad("%v", err)
	}
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return bad(`want start-end times, as in "01:00-05:00"`)
	}
	start, err := parseClock(from, false)
	if err != nil {
		return bad("start: %v", err)
	}
	end, err := parseClock(to, true)
	if err != nil {
		return bad("end: %v", err)
	}
	if start == end {
		return bad("starts when it ends (00:00-24:00 is the whole day)")
	}
	w := Window{days: days, start: start, end: end}
	w.text = fields[0] + " " + clock(start) + "-" + clock(end)
	return w, nil
}

func parseDays(s string) (uint8, error) {
	if s == "daily" {
		return 0x7f, nil
	}
	var days uint8
	for item := range strings.SplitSeq(s, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, err := parseDay(from)
		if err != nil {
			return 0, err
		}
		b := a
		if isRange {
			if b, err = parseDay(to); err != nil {
				return 0, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days |= 1 << d
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (int, error) {
	for i, n := range dayNames {
		if s == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf(`unknown day %.12q: want "daily" or mon, tue, wed, thu, fri, sat, sun`, s)
}

// parseClock reads H:MM or HH:MM as minutes after midnight; 24:00 only as
// an end.
func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 || !digits(hh) || !digits(mm) {
		return 0, fmt.Errorf("%.12q is not a time: want HH:MM", s)
	}
	h, _ := strconv.Atoi(hh)
	m, _ := strconv.Atoi(mm)
	switch {
	case m > 59 || h > 24 || h == 24 && m != 0:
		return 0, fmt.Errorf("%s is not a time of day", s)
	case h == 24 && !end:
		return 0, fmt.Errorf("24:00 can only end a window")
	}
	return h*60 + m, nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func clock(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

// String returns the window as ParseWindow reads it, normalised: lower
// case, single space, two-digit hours.
func (w Window) String() string {
	if w.text == "" {
		return "never"
	}
	return w.text
}

// on reports whether the window starts on weekday d.
func (w Window) on(d time.Weekday) bool { return w.days&(1<<d) != 0 }

// bounds returns the window that starts on date d, in loc: [start, end).
func (w Window) bounds(d Date, loc *time.Location) (start, end time.Time) {
	start = wallTime(d, w.start, loc)
	if w.end > w.start {
		return start, wallTime(d, w.end, loc)
	}
	return start, wallTime(d.AddDays(1), w.end, loc)
}

// wallTime returns the first instant at which the clock in loc reads date
// d, minutes after midnight, or later. For a wall time that exists once
// that is the time itself; for one that exists twice (the hour repeated
// when clocks go back) it is the first of the two; for one that never
// exists (the hour skipped when clocks go forward) it is the moment the
// clock jumps over it.
//
// time.Date is not used alone because what it does with such times is
// unspecified, and differs between zones: in 2026 it reads New York's
// skipped 02:30 as 01:30 EST but Berlin's as 03:30 CEST, and Berlin's
// repeated 02:30 as the second one.
func wallTime(d Date, minutes int, loc *time.Location) time.Time {
	w := time.Date(d.Year, d.Month, d.Day, 0, minutes, 0, 0, time.UTC)
	// The wall time read as UTC, less each offset the zone has about then:
	// any instant showing that wall time is one of these.
	var first time.Time
	for _, probe := range [...]time.Duration{-36 * time.Hour, 0, 36 * time.Hour} {
		_, off := w.Add(probe).In(loc).Zone()
		u := w.Add(-time.Duration(off) * time.Second)
		if sameWall(u.In(loc), w) && (first.IsZero() || u.Before(first)) {
			first = u
		}
	}
	if !first.IsZero() {
		return first.In(loc)
	}
	// Skipped: time.Date lands on one side of the jump or the other.
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, loc)
	zs, ze := t.ZoneBounds()
	if wallBefore(t, w) {
		if !ze.IsZero() {
			return ze
		}
	} else if !zs.IsZero() {
		return zs
	}
	return t
}

func sameWall(t, w time.Time) bool {
	y, m, d := t.Date()
	wy, wm, wd := w.Date()
	return y == wy && m == wm && d == wd && t.Hour() == w.Hour() && t.Minute() == w.Minute() && t.Second() == w.Second()
}

// wallBefore reports whether t's wall clock reads earlier than w's.
func wallBefore(t, w time.Time) bool {
	y, m, d := t.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.UTC).Before(w)
}

// Date is a calendar date, in whatever time zone it is read.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns t's date in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// AddDays returns the date n days after d (before, for negative n).
func (d Date) AddDays(n int) Date {
	y, m, dd := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC).Date()
	return Date{y, m, dd}
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

// Compare returns -1, 0 or +1 as d is before, the same as, or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmpInt(d.Year, e.Year)
	case d.Month != e.Month:
		return cmpInt(int(d.Month), int(e.Month))
	}
	return cmpInt(d.Day, e.Day)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String returns the date as 2006-01-02.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Freeze is a period of local dates, inclusive, on which nothing is
// downloaded or installed: a holiday, a peak trading week.
type Freeze struct {
	From, To Date
}

// ParseFreeze reads a freeze period: one date ("2026-12-24") or an
// inclusive range ("2026-12-24..2026-12-26", or with "/" between the
// dates). A period that cannot be read is a [*FreezeError].
func ParseFreeze(s string) (Freeze, error) {
	bad := func(format string, args ...any) (Freeze, error) {
		return Freeze{}, &FreezeError{Input: cut(s), Reason: fmt.Sprintf(format, args...)}
	}
	if len(s) > maxWindowText {
		return bad("longer than %d bytes", maxWindowText)
	}
	t := strings.TrimSpace(s)
	from, to, isRange := strings.Cut(t, "..")
	if !isRange {
		from, to, isRange = strings.Cut(t, "/")
	}
	if !isRange {
		to = from
	}
	a, err := parseDate(strings.TrimSpace(from))
	if err != nil {
		return bad("%v", err)
	}
	b, err := parseDate(strings.TrimSpace(to))
	if err != nil {
		return bad("%v", err)
	}
	if b.Compare(a) < 0 {
		return bad("ends (%s) before it starts (%s)", b, a)
	}
	return Freeze{From: a, To: b}, nil
}

func parseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%.16q is not a date: want YYYY-MM-DD", s)
	}
	y, m, d := t.Date()
	return Date{y, m, d}, nil
}

// Contains reports whether d is one of the freeze's dates.
func (f Freeze) Contains(d Date) bool { return d.Compare(f.From) >= 0 && d.Compare(f.To) <= 0 }

// String returns the period as ParseFreeze reads it: "2026-12-24" or
// "2026-12-24..2026-12-26".
func (f Freeze) String() string {
	if f.From == f.To {
		return f.From.String()
	}
	return f.From.String() + ".." + f.To.String()
}

func (f Freeze) valid() bool {
	ok := func(d Date) bool {
		return d.Month >= 1 && d.Month <= 12 && d.Day >= 1 && d.AddDays(0) == d
	}
	return ok(f.From) && ok(f.To) && f.From.Compare(f.To) <= 0
}

// scheduleHorizon is how far ahead [Schedule.Next] looks.
const scheduleHorizon = 371 // days: a year and a week

// Schedule is when the terminal may act: inside one of its windows, in
// its location's local time, and on none of its freeze dates.
//
// A window's bounds are the first instants at which the local clock reads
// its start and its end, and it is open from the first (included) to the
// second (excluded). So across a daylight-saving change a window keeps its
// wall-clock times: "daily 01:00-05:00" lasts three hours on the night
// clocks go forward and five on the night they go back. A start or end in
// the skipped hour falls on the moment the clock jumps (a window wholly
// inside that hour does not open that night); in the repeated hour the
// first reading counts (a window that ends inside it closes the first
// time round).
//
// A freeze covers every instant of its dates, and every window that starts
// on one of them, even where it runs past midnight into a day that is not
// frozen.
type Schedule struct {
	// Location is the terminal's time zone (an IANA zone from
	// time.LoadLocation); nil means time.Local.
	Location *time.Location
	// Windows are when the terminal may act; none means at any time.
	Windows []Window
	// Freezes are dates on which it may not.
	Freezes []Freeze
}

func (s *Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.Local
	}
	return s.Location
}

// frozen returns the freeze that covers d, if one does.
func (s *Schedule) frozen(d Date) (Freeze, bool) {
	for _, f := range s.Freezes {
		if f.Contains(d) {
			return f, true
		}
	}
	return Freeze{}, false
}

// Open reports whether the schedule allows acting at t.
func (s *Schedule) Open(t time.Time) bool {
	loc := s.loc()
	today := DateOf(t, loc)
	if _, ok := s.frozen(today); ok {
		return false
	}
	if len(s.Windows) == 0 {
		return true
	}
	// A window that contains t started today or, across midnight,
	// yesterday.
	for _, d := range [...]Date{today.AddDays(-1), today} {
		if _, ok := s.frozen(d); ok {
			continue
		}
		for _, w := range s.Windows {
			if !w.on(d.Weekday()) {
				continue
			}
			if start, end := w.bounds(d, loc); !t.Before(start) && t.Before(end) {
				return true
			}
		}
	}
	return false
}

// Next returns the first instant at or after t at which the schedule is
// open: t itself if it is open at t, or the zero time if it does not open
// within a year (every window frozen, or no window at all).
func (s *Schedule) Next(t time.Time) time.Time {
	loc := s.loc()
	// unfreeze moves x past the freezes that cover it.
	unfreeze := func(x time.Time) time.Time {
		for range len(s.Freezes) + 1 {
			f, ok := s.frozen(DateOf(x, loc))
			if !ok {
				break
			}
			x = later(x, wallTime(f.To.AddDays(1), 0, loc))
		}
		return x
	}
	if len(s.Windows) == 0 {
		x := unfreeze(t)
		if _, ok := s.frozen(DateOf(x, loc)); ok || x.Sub(t) > scheduleHorizon*24*time.Hour {
			return time.Time{}
		}
		return x
	}
	var best time.Time
	first := DateOf(t, loc).AddDays(-1)
	for i := range scheduleHorizon + 1 {
		d := first.AddDays(i)
		if !best.IsZero() && wallTime(d, 0, loc).After(best) {
			break // windows starting on d or later open after best
		}
		if _, ok := s.frozen(d); ok {
			continue
		}
		for _, w := range s.Windows {
			if !w.on(d.Weekday()) {
				continue
			}
			start, end := w.bounds(d, loc)
			if !end.After(t) {
				continue
			}
			x := unfreeze(later(start, t))
			if x.Before(end) && (best.IsZero() || x.Before(best)) {
				best = x
			}
		}
	}
	return best
}
