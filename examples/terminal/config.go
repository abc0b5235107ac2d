package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/terminal"
	"github.com/upkeephq/upkeep/internal/bounded"
	"github.com/upkeephq/upkeep/update/gate"
)

// config is the terminal's update policy file (-config FILE), JSON:
//
//	{
//	  "time_zone": "Europe/Berlin",
//	  "download_windows": ["daily 00:00-24:00"],
//	  "install_windows": ["mon-fri 01:00-05:00", "sat,sun 02:00-06:00"],
//	  "freezes": ["2026-12-24..2026-12-26"],
//	  "beats": 2, "idle": "30m",
//	  "lease_ttl": "2m",
//	  "min_battery": 30,
//	  "wifi_only_above_mib": 20,
//	  "metered_budget_mib": 100, "budget_period": "24h",
//	  "sensors": "sensors.json",
//	  "prompt": true, "max_deferrals": 3, "defer_for": "1h", "notice_ahead": "1m"
//	}
//
// Every field may be left out. The sensors file stands for the terminal's
// hardware and payment app, read again at every gate: {"battery": 80,
// "mains": false, "network": "wifi", "unsettled": false}. Edit it while
// the terminal runs to see the gates hold an update back and say why.
type config struct {
	TimeZone         string   `json:"time_zone"`
	DownloadWindows  []string `json:"download_windows"`
	InstallWindows   []string `json:"install_windows"`
	Freezes          []string `json:"freezes"`
	Beats            *int     `json:"beats"`
	Idle             duration `json:"idle"`
	LeaseTTL         duration `json:"lease_ttl"`
	MinBattery       int      `json:"min_battery"`
	WiFiOnlyAboveMiB int64    `json:"wifi_only_above_mib"`
	MeteredBudgetMiB int64    `json:"metered_budget_mib"`
	BudgetPeriod     duration `json:"budget_period"`
	Sensors          string   `json:"sensors"`
	Prompt           bool     `json:"prompt"`
	MaxDeferrals     int      `json:"max_deferrals"`
	DeferFor         duration `json:"defer_for"`
	NoticeAhead      duration `json:"notice_ahead"`
}

// duration is a time.Duration written as "30m" in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want a non-negative duration such as \"30m\"", s)
	}
	*d = duration(v)
	return nil
}

// sensors is what the sensors file says.
type sensors struct {
	Battery   *int   `json:"battery"`
	Mains     *bool  `json:"mains"`
	Network   string `json:"network"`
	Unsettled bool   `json:"unsettled"`
}

func readConfig(path string) (*config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := bounded.Read(f, 64<<10, path, errors.New("config file too large"))
	if err != nil {
		return nil, err
	}
	var c config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Sensors != "" && !filepath.IsAbs(c.Sensors) {
		c.Sensors = filepath.Join(filepath.Dir(path), c.Sensors)
	}
	return &c, nil
}

// policy turns the file into the terminal's gates. stateDir keeps the
// merchant's deferrals across restarts; prompts are asked on in and out.
func (c *config) policy(beats int, stateDir string, in io.Reader, out io.Writer) (terminal.Policy, error) {
	p := terminal.Policy{MinBeats: beats, Idle: time.Duration(c.Idle)}
	if c.Beats != nil {
		p.MinBeats = *c.Beats
	}
	loc := time.Local
	if c.TimeZone != "" {
		l, err := time.LoadLocation(c.TimeZone)
		if err != nil {
			return p, fmt.Errorf("time_zone: %w", err)
		}
		loc = l
	}
	p.Windows.Location = loc
	for _, list := range []struct {
		in  []string
		out *[]gate.Window
	}{{c.DownloadWindows, &p.Windows.Download}, {c.InstallWindows, &p.Windows.Install}} {
		for _, s := range list.in {
			w, err := gate.ParseWindow(s)
			if err != nil {
				return p, err
			}
			*list.out = append(*list.out, w)
		}
	}
	for _, s := range c.Freezes {
		f, err := gate.ParseFreeze(s)
		if err != nil {
			return p, err
		}
		p.Windows.Freezes = append(p.Windows.Freezes, f)
	}
	p.MinBattery = c.MinBattery
	if c.WiFiOnlyAboveMiB > 0 {
		p.LinkRules = []gate.LinkRule{{MinSize: c.WiFiOnlyAboveMiB << 20, Links: []gate.Link{gate.LinkWiFi, gate.LinkEthernet}}}
	}
	if c.MeteredBudgetMiB > 0 {
		p.Budget = &gate.Budget{Limit: c.MeteredBudgetMiB << 20, Period: time.Duration(c.BudgetPeriod)}
	}
	if c.Sensors != "" {
		p.Power = func(ctx context.Context) (gate.Power, error) {
			s, err := readSensors(c.Sensors)
			pw := gate.Power{Percent: 100, OnMains: true}
			if s.Battery != nil {
				pw.Percent, pw.OnMains = *s.Battery, false
			}
			if s.Mains != nil {
				pw.OnMains = *s.Mains
			}
			return pw, err
		}
		p.Network = func(ctx context.Context) (gate.Link, error) {
			s, err := readSensors(c.Sensors)
			if s.Network == "" {
				return gate.LinkEthernet, err
			}
			return gate.Link(s.Network), err
		}
		p.Settled = func(ctx context.Context) (bool, error) {
			s, err := readSensors(c.Sensors)
			return !s.Unsettled, err
		}
	}
	if c.Prompt {
		p.Prompt = &gate.PromptConfig{
			Ask:          stdinPrompt(in, out),
			MaxDeferrals: c.MaxDeferrals, DeferFor: time.Duration(c.DeferFor), NoticeAhead: time.Duration(c.NoticeAhead),
			Notice: func(ctx context.Context, n gate.NoticeRequest) error {
				fmt.Fprintf(out, "NOTICE: %s installs at %s; tell customers the terminal will be unavailable for a few minutes\n",
					n.Manifest.ID(), n.At.Format("15:04:05"))
				return nil
			},
			StatePath: filepath.Join(stateDir, "deferrals.json"),
		}
	}
	return p, nil
}

// readSensors reads the sensors file; a missing file means mains, Ethernet
// and settled.
func readSensors(path string) (sensors, error) {
	var s sensors
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return sensors{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// stdinPrompt asks the merchant on the terminal's "screen": a line on out,
// the answer from in ("y" installs now, anything else defers).
func stdinPrompt(in io.Reader, out io.Writer) func(ctx context.Context, req gate.PromptRequest) (gate.Answer, error) {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return func(ctx context.Context, req gate.PromptRequest) (gate.Answer, error) {
		deadline := ""
		if !req.Deadline.IsZero() {
			deadline = fmt.Sprintf(", required from %s", req.Deadline.Format(time.DateTime))
		}
		// Whatever was typed before the question is not an answer to it.
		for drained := false; !drained; {
			select {
			case _, ok := <-lines:
				drained = !ok
			default:
				drained = true
			}
		}
		fmt.Fprintf(out, "PROMPT: install %s now? [y = now, n = later; %d deferrals left%s] ", req.Manifest.ID(), req.Left, deadline)
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "(no answer)")
			return gate.AnswerNone, nil
		case l, ok := <-lines:
			if !ok {
				return gate.AnswerNone, nil
			}
			if strings.EqualFold(strings.TrimSpace(l), "y") {
				return gate.AnswerNow, nil
			}
			return gate.AnswerLater, nil
		}
	}
}
