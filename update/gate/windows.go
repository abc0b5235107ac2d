package gate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// Window gate defaults and limits.
const (
	// DefaultWindowWait is WindowsConfig.MaxWait's default.
	DefaultWindowWait = time.Hour
	// MaxServerWindows bounds the windows an offer's policy may carry.
	MaxServerWindows = 32
)

// WindowsConfig configures [NewWindows]. The zero value lets the terminal
// download and install at any time, except where an offer's policy sets
// windows.
type WindowsConfig struct {
	// Location is the terminal's time zone, an IANA zone such as
	// "America/New_York" from time.LoadLocation: windows follow the
	// store's own clock, daylight saving included. Nil means time.Local.
	Location *time.Location
	// Download are the windows in which downloads may run; nil means at
	// any time. Downloads are paused when their window closes (the agent
	// asks the gate before every piece).
	Download []Window
	// Install are the windows in which installs may start; nil means at
	// any time.
	Install []Window
	// Freezes are dates on which nothing is downloaded or installed. They
	// apply whichever windows are used, the terminal's or the server's.
	Freezes []Freeze
	// MaxWait caps the wait the gate asks for outside its windows, so
	// that the terminal looks again at least this often (a new offer may
	// carry other windows, its clock may be set); 0 means
	// [DefaultWindowWait].
	MaxWait time.Duration
	// Logger receives a warning when an offer's windows cannot be read;
	// nil discards.
	Logger *slog.Logger
}

// NewWindows returns the maintenance-window gate: a stage may start only
// inside its schedule (see [Schedule] for the rules across daylight-saving
// changes and freezes). "outside the install window (mon-fri 01:00-05:00
// America/New_York); opens in 3h20m".
//
// An offer whose policy carries windows (transport.Policy.DownloadWindows
// or InstallWindows) replaces the terminal's own for that stage of that
// offer; the terminal's freezes still apply. If any of the server's
// windows cannot be read, none of them is used: the terminal's own windows
// apply, and the gate's reason says so while it waits. If the terminal has
// no windows of its own for that stage, the stage is held back instead:
// the server asked for a restriction the terminal does not understand, and
// acting at any time is not a safe reading of it.
func NewWindows(cfg WindowsConfig) (update.Gate, error) {
	for what, ws := range map[string][]Window{"Download": cfg.Download, "Install": cfg.Install} {
		for i, w := range ws {
			if w.days == 0 {
				return nil, invalid("windows: %s[%d] is the zero Window, which never opens (use ParseWindow)", what, i)
			}
		}
	}
	for i, f := range cfg.Freezes {
		if !f.valid() {
			return nil, invalid("windows: Freezes[%d] (%s) is not a valid range of dates", i, f)
		}
	}
	if err := checkDurations("windows", map[string]time.Duration{"MaxWait": cfg.MaxWait}); err != nil {
		return nil, err
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	maxWait := or(cfg.MaxWait, DefaultWindowWait)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req update.GateRequest) error {
		var local []Window
		var server []string
		switch req.Stage {
		case update.StageDownload:
			local, server = cfg.Download, req.Policy.DownloadWindows
		case update.StageInstall:
			local, server = cfg.Install, req.Policy.InstallWindows
		default:
			return nil
		}
		windows, by, note := local, "", ""
		if len(server) > 0 {
			parsed, err := parseWindows(server)
			switch {
			case err == nil:
				windows, by = parsed, " set by the server"
			case len(local) == 0:
				log.Warn("gate: the offer's windows cannot be read and the terminal has none; holding back",
					"stage", req.Stage, "err", err)
				return notNow(req, maxWait, "the server's %s windows cannot be read (%v) and the terminal has none of its own", req.Stage, err)
			default:
				log.Warn("gate: the offer's windows cannot be read; using the terminal's", "stage", req.Stage, "err", err)
				note = fmt.Sprintf("; the server's %s windows cannot be read (%v), so the terminal's apply", req.Stage, err)
			}
		}
		sched := Schedule{Location: loc, Windows: windows, Freezes: cfg.Freezes}
		now := time.Now()
		next := sched.Next(now)
		if next.Equal(now) {
			return nil
		}
		var why string
		if f, ok := sched.frozen(DateOf(now, loc)); ok {
			why = fmt.Sprintf("%s freeze %s (%s)", req.Stage, f, loc)
		} else {
			noun := "window"
			if len(windows) > 1 {
				noun = "windows"
			}
			why = fmt.Sprintf("outside the %s %s%s (%s %s)", req.Stage, noun, by, joinWindows(windows), loc)
		}
		if next.IsZero() {
			return notNow(req, maxWait, "%s; no %s window opens within a year%s", why, req.Stage, note)
		}
		wait := next.Sub(now)
		return notNow(req, min(wait, maxWait), "%s; opens in %s%s", why, formatDuration(wait), note)
	}, nil
}

func parseWindows(texts []string) ([]Window, error) {
	if len(texts) > MaxServerWindows {
		return nil, fmt.Errorf("%d windows, limit %d", len(texts), MaxServerWindows)
	}
	ws := make([]Window, len(texts))
	for i, s := range texts {
		w, err := ParseWindow(s)
		if err != nil {
			return nil, err
		}
		ws[i] = w
	}
	return ws, nil
}

func joinWindows(ws []Window) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ")
}
