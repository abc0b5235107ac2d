package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// parseDuration parses a positive duration: Go's syntax (720h, 1h30m) or a
// whole number of days (90d).
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 720h or 90d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

// durationFlag is a flag.Value for parseDuration.
type durationFlag struct{ d time.Duration }

func (f *durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	f.d = d
	return nil
}

func (f *durationFlag) String() string {
	if f == nil {
		return ""
	}
	if day := 24 * time.Hour; f.d%day == 0 && f.d != 0 {
		return fmt.Sprintf("%dd", f.d/day)
	}
	return f.d.String()
}

// splitList splits s at sep, trims each item and drops empty ones.
func splitList(s, sep string) []string {
	var out []string
	for _, item := range strings.Split(s, sep) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// listFlag is a repeatable flag.Value; each value may hold several items
// separated by sep.
type listFlag struct {
	sep   string
	items []string
}

func (f *listFlag) Set(s string) error {
	f.items = append(f.items, splitList(s, f.sep)...)
	return nil
}

func (f *listFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(f.items, f.sep)
}

// requiresFlag is a repeatable flag.Value of requirements. Each value
// lists them separated by ',' or ';', each a component name and a version
// constraint ("firmware>=1.4", "params ^3"). An item that starts with an
// operator (= ! < > ~ ^) continues the constraint before it in the same
// ';'-separated group, so "firmware>=1.4, <2.0.0, params>=3" is two
// requirements. The constraints themselves are checked with the manifest.
type requiresFlag struct {
	items []verify.Requirement
}

func (f *requiresFlag) Set(s string) error {
	for _, group := range strings.Split(s, ";") {
		start := len(f.items)
		for _, item := range strings.Split(group, ",") {
			item = strings.TrimSpace(item)
			switch {
			case item == "":
				continue
			case strings.ContainsRune("=!<>~^", rune(item[0])):
				if len(f.items) == start {
					return fmt.Errorf("%q: want a component before the constraint, e.g. firmware>=1.4", item)
				}
				f.items[len(f.items)-1].Version += ", " + item
				continue
			}
			end := strings.IndexFunc(item, func(r rune) bool {
				return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-", r))
			})
			if end < 0 || strings.TrimSpace(item[end:]) == "" {
				return fmt.Errorf("%q: want a component and a version constraint, e.g. firmware>=1.4", item)
			}
			f.items = append(f.items, verify.Requirement{Component: item[:end], Version: strings.TrimSpace(item[end:])})
		}
	}
	return nil
}

func (f *requiresFlag) String() string {
	if f == nil {
		return ""
	}
	return requirements(f.items)
}

// requirements lists reqs as the -requires flag takes them.
func requirements(reqs []verify.Requirement) string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.String()
	}
	return strings.Join(out, "; ")
}
