package gate

import (
	"testing"
	"time"
)

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{
		"mon-fri 01:00-05:00", "sat,sun 00:00-06:00", "daily 22:00-02:00", "fri-mon 23:30-24:00",
		"wed 00:00-24:00", "MON 1:00-5:00", "mon 24:00-01:00", "daily", "mon-wed,fri 12:00-12:01", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s)
		if err != nil {
			if _, ok := err.(*WindowError); !ok {
				t.Fatalf("ParseWindow(%q) error %T, want *WindowError", s, err)
			}
			return
		}
		if w.days == 0 || w.start == w.end || w.start < 0 || w.start >= 24*60 || w.end < 0 || w.end > 24*60 {
			t.Fatalf("ParseWindow(%q) = %+v, an impossible window", s, w)
		}
		again, err := ParseWindow(w.String())
		if err != nil || again != w {
			t.Fatalf("ParseWindow(%q).String() = %q reads back as %+v, %v", s, w, again, err)
		}
	})
}

func FuzzParseFreeze(f *testing.F) {
	for _, s := range []string{"2026-12-24", "2026-12-24..2026-12-26", "2026-12-24/2026-12-26", "2026-02-30", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fr, err := ParseFreeze(s)
		if err != nil {
			if _, ok := err.(*FreezeError); !ok {
				t.Fatalf("ParseFreeze(%q) error %T, want *FreezeError", s, err)
			}
			return
		}
		if !fr.valid() {
			t.Fatalf("ParseFreeze(%q) = %v, not a valid range", s, fr)
		}
		again, err := ParseFreeze(fr.String())
		if err != nil || again != fr {
			t.Fatalf("ParseFreeze(%q).String() = %q reads back as %v, %v", s, fr, again, err)
		}
	})
}

// FuzzSchedule checks that Open and Next agree, in zones with and without
// daylight saving: Next(t) is t when open, otherwise a later instant at
// which the schedule is open, and nothing between t and it is open.
func FuzzSchedule(f *testing.F) {
	f.Add("daily 02:00-04:00", int64(1772953200), uint8(0)) // 2026-03-08 07:00 UTC
	f.Add("sat 22:00-03:00", int64(1772935200), uint8(0))
	f.Add("daily 02:10-02:50", int64(1774746000), uint8(1)) // 2026-03-29 01:00 UTC
	f.Add("daily 01:00-02:30", int64(1792890000), uint8(1)) // 2026-10-25
	f.Add("mon 22:00-02:00", int64(1780000000), uint8(2))
	zones := []string{"America/New_York", "Europe/Berlin", "Asia/Shanghai", "Australia/Lord_Howe", "America/Santiago"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		locs[i] = mustLoad(f, z)
	}
	freeze := Freeze{From: Date{2026, 12, 24}, To: Date{2026, 12, 26}}
	f.Fuzz(func(t *testing.T, window string, unix int64, zone uint8) {
		w, err := ParseWindow(window)
		if err != nil {
			return
		}
		// 2000 to 2040, where zone rules are known.
		at := time.Unix(946684800+(unix%(40*365*86400)+40*365*86400)%(40*365*86400), 0)
		s := Schedule{Location: locs[int(zone)%len(locs)], Windows: []Window{w}, Freezes: []Freeze{freeze}}
		next := s.Next(at)
		switch {
		case s.Open(at) && !next.Equal(at):
			t.Fatalf("open at %s but Next = %s", at, next)
		case next.IsZero():
			return // a window inside a skipped hour every week is possible in theory
		case next.Before(at):
			t.Fatalf("Next(%s) = %s, before it", at, next)
		case !s.Open(next):
			t.Fatalf("Next(%s) = %s, which is closed", at, next)
		}
		if !next.Equal(at) {
			// Nothing opens earlier: look at each minute boundary in
			// between (windows start and end on minutes) if it is close.
			if d := next.Sub(at); d < 48*time.Hour {
				for x := at.Truncate(time.Minute).Add(time.Minute); x.Before(next); x = x.Add(time.Minute) {
					if s.Open(x) {
						t.Fatalf("Next(%s) = %s, but open at %s", at, next, x)
					}
				}
			}
		}
	})
}
