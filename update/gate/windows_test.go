package gate

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update"
)

func TestWindowsGate(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	berlin := mustLoad(t, "Europe/Berlin")
	m := manifest("payment-app@2.1.0", 1<<20)
	local := WindowsConfig{
		Location: ny,
		Install:  []Window{mustWindow(t, "mon-fri 01:00-05:00")},
	}
	withPolicy := func(stage update.Stage, download, install []string) update.GateRequest {
		req := update.GateRequest{Stage: stage, Manifest: m}
		req.Policy.DownloadWindows, req.Policy.InstallWindows = download, install
		return req
	}
	friday := time.Date(2026, 6, 5, 21, 40, 0, 0, ny)
	for _, tc := range []struct {
		name   string
		cfg    WindowsConfig
		at     time.Time
		req    update.GateRequest
		after  time.Duration // 0: go
		reason string
	}{
		{
			name: "outside", cfg: local, at: time.Date(2026, 6, 4, 21, 40, 0, 0, ny), req: install(m),
			after: time.Hour, reason: "outside the install window (mon-fri 01:00-05:00 America/New_York); opens in 3h20m",
		},
		{
			name: "over the weekend", cfg: local, at: friday, req: install(m),
			after: time.Hour, reason: "outside the install window (mon-fri 01:00-05:00 America/New_York); opens in 2d4h",
		},
		{
			name: "soon", cfg: local, at: time.Date(2026, 6, 5, 0, 59, 30, 0, ny), req: install(m),
			after: 30 * time.Second, reason: "outside the install window (mon-fri 01:00-05:00 America/New_York); opens in 30s",
		},
		{name: "inside", cfg: local, at: time.Date(2026, 6, 5, 1, 0, 0, 0, ny), req: install(m)},
		{name: "downloads any time", cfg: local, at: friday, req: download(m)},
		{name: "other stages", cfg: local, at: friday, req: update.GateRequest{Stage: update.StageProbation}},
		{
			name: "two windows", at: friday, req: install(m),
			cfg: WindowsConfig{Location: ny, MaxWait: 10 * time.Minute, Install: []Window{
				mustWindow(t, "mon-fri 01:00-05:00"), mustWindow(t, "sat,sun 00:00-06:00"),
			}},
			after: 10 * time.Minute, reason: "outside the install windows (mon-fri 01:00-05:00, sat,sun 00:00-06:00 America/New_York); opens in 2h20m",
		},
		{
			name: "server window", cfg: local, at: friday, req: withPolicy(update.StageInstall, nil, []string{"daily 22:00-23:00"}),
			after: 20 * time.Minute, reason: "outside the install window set by the server (daily 22:00-23:00 America/New_York); opens in 20m",
		},
		{name: "inside the server window", cfg: local, at: friday.Add(time.Hour), req: withPolicy(update.StageInstall, nil, []string{"daily 22:00-23:00"})},
		{
			name: "server download window", cfg: local, at: friday, req: withPolicy(update.StageDownload, []string{"sat 00:00-24:00"}, nil),
			after: time.Hour, reason: "outside the download window set by the server (sat 00:00-24:00 America/New_York); opens in 2h20m",
		},
		{
			name: "unreadable server window, the terminal's apply", cfg: local, at: friday,
			req:   withPolicy(update.StageInstall, nil, []string{"daily 22:00-23:00", "nightly 1-5"}),
			after: time.Hour,
			reason: "outside the install window (mon-fri 01:00-05:00 America/New_York); opens in 2d4h; " +
				`the server's install windows cannot be read (gate: bad maintenance window "nightly 1-5": unknown day "nightly": ` +
				`want "daily" or mon, tue, wed, thu, fri, sat, sun), so the terminal's apply`,
		},
		{
			name: "unreadable server window inside the terminal's", cfg: local, at: time.Date(2026, 6, 5, 2, 0, 0, 0, ny),
			req: withPolicy(update.StageInstall, nil, []string{"nightly 1-5"}),
		},
		{
			name: "unreadable server window and none of the terminal's", cfg: local, at: friday,
			req:   withPolicy(update.StageDownload, []string{"mon 9-5"}, nil),
			after: time.Hour,
			reason: `the server's download windows cannot be read (gate: bad maintenance window "mon 9-5": start: "9" is not a time: want HH:MM) ` +
				"and the terminal has none of its own",
		},
		{
			name: "freeze", at: time.Date(2026, 12, 25, 3, 0, 0, 0, berlin), req: install(m),
			cfg: WindowsConfig{Location: berlin, Install: []Window{mustWindow(t, "daily 01:00-05:00")},
				Freezes: []Freeze{mustFreeze(t, "2026-12-24..2026-12-26")}},
			after: time.Hour, reason: "install freeze 2026-12-24..2026-12-26 (Europe/Berlin); opens in 46h",
		},
		{
			name: "freeze without windows", at: time.Date(2026, 12, 25, 3, 0, 0, 0, berlin), req: download(m),
			cfg:   WindowsConfig{Location: berlin, Freezes: []Freeze{mustFreeze(t, "2026-12-24..2026-12-26")}},
			after: time.Hour, reason: "download freeze 2026-12-24..2026-12-26 (Europe/Berlin); opens in 45h",
		},
		{
			name: "freeze under a server window", at: time.Date(2026, 12, 25, 12, 30, 0, 0, berlin),
			req:   withPolicy(update.StageInstall, nil, []string{"daily 12:00-13:00"}),
			cfg:   WindowsConfig{Location: berlin, Freezes: []Freeze{mustFreeze(t, "2026-12-24..2026-12-26")}},
			after: time.Hour, reason: "install freeze 2026-12-24..2026-12-26 (Europe/Berlin); opens in 47h30m",
		},
		{
			name: "never", at: time.Date(2026, 12, 25, 3, 0, 0, 0, berlin), req: install(m),
			cfg: WindowsConfig{Location: berlin, Install: []Window{mustWindow(t, "daily 01:00-05:00")},
				Freezes: []Freeze{mustFreeze(t, "2026-01-01..2030-01-01")}},
			after: time.Hour, reason: "install freeze 2026-01-01..2030-01-01 (Europe/Berlin); no install window opens within a year",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, err := NewWindows(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				sleepUntil(tc.at)
				a := ask(t, g, tc.req)
				if tc.after == 0 {
					wantGo(t, a)
					return
				}
				wantWait(t, a, tc.after, tc.reason)
			})
		})
	}
}

// TestWindowsGatePausesAndResumes follows a download across a window that
// closes and opens again, asking as the agent does, after each wait.
func TestWindowsGatePausesAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sh := mustLoad(t, "Asia/Shanghai")
		g, err := NewWindows(WindowsConfig{Location: sh, Download: []Window{mustWindow(t, "daily 01:00-05:00")}})
		if err != nil {
			t.Fatal(err)
		}
		sleepUntil(time.Date(2026, 6, 1, 4, 30, 0, 0, sh))
		m := manifest("fw@1.0.0", 1)
		wantGo(t, ask(t, g, download(m)))
		time.Sleep(30 * time.Minute)
		var asks int
		for {
			a := ask(t, g, download(m))
			if a.Go {
				break
			}
			asks++
			time.Sleep(a.After)
		}
		if now := time.Now().In(sh); now.Hour() != 1 || now.Minute() != 0 || asks != 20 {
			t.Errorf("resumed at %s after %d asks, want 01:00 after 20 (hourly)", now, asks)
		}
	})
}

func TestWindowsConfig(t *testing.T) {
	for _, cfg := range []WindowsConfig{
		{Install: []Window{{}}},
		{Download: []Window{mustWindow(t, "daily 01:00-02:00"), {}}},
		{Freezes: []Freeze{{From: Date{2026, 12, 26}, To: Date{2026, 12, 24}}}},
		{Freezes: []Freeze{{From: Date{2026, 2, 30}, To: Date{2026, 3, 1}}}},
		{Freezes: []Freeze{{}}},
		{MaxWait: -time.Second},
	} {
		if _, err := NewWindows(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewWindows(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
