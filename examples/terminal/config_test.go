package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/update/gate"
	"github.com/upkeephq/upkeep/verify"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{"empty", `{}`, ""},
		{"everything", `{"time_zone": "Europe/Berlin", "download_windows": ["daily 00:00-24:00"],
			"install_windows": ["mon-fri 01:00-05:00", "sat,sun 02:00-06:00"], "freezes": ["2026-12-24..2026-12-26"],
			"beats": 3, "idle": "30m", "lease_ttl": "2m", "min_battery": 40, "wifi_only_above_mib": 20,
			"metered_budget_mib": 100, "budget_period": "24h", "sensors": "sensors.json",
			"prompt": true, "max_deferrals": 2, "defer_for": "1h", "notice_ahead": "1m"}`, ""},
		{"unknown field", `{"windows": []}`, "unknown field"},
		{"bad window", `{"install_windows": ["weekdays 1-5"]}`, "window"},
		{"bad zone", `{"time_zone": "Mars/Olympus"}`, "time_zone"},
		{"bad duration", `{"idle": "soon"}`, "duration"},
		{"negative duration", `{"idle": "-1m"}`, "duration"},
		{"bad freeze", `{"freezes": ["christmas"]}`, "freeze"},
		{"idle without beats", `{"beats": 0, "idle": "30m"}`, "MinBeats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "policy.json")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := readConfig(path)
			if err == nil {
				p, perr := c.policy(2, dir, strings.NewReader(""), io.Discard)
				err = perr
				if err == nil {
					// The gates are built as the terminal builds them.
					_, _, err = p.Gates(&heartbeat.Counter{}, &gate.Leases{})
				}
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSensors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	os.WriteFile(path, []byte(`{"sensors": "sensors.json"}`), 0o600)
	c, err := readConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.policy(2, dir, strings.NewReader(""), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// No sensors file: mains, Ethernet, settled.
	if pw, err := p.Power(ctx); err != nil || !pw.OnMains {
		t.Errorf("power without a sensors file: %+v, %v", pw, err)
	}
	os.WriteFile(filepath.Join(dir, "sensors.json"), []byte(`{"battery": 12, "network": "cellular", "unsettled": true}`), 0o600)
	pw, err := p.Power(ctx)
	if err != nil || pw.OnMains || pw.Percent != 12 {
		t.Errorf("power = %+v, %v", pw, err)
	}
	if l, err := p.Network(ctx); err != nil || l != gate.LinkCellular {
		t.Errorf("network = %q, %v", l, err)
	}
	if ok, err := p.Settled(ctx); err != nil || ok {
		t.Errorf("settled = %v, %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, "sensors.json"), []byte(`{"battery": `), 0o600)
	if _, err := p.Power(ctx); err == nil {
		t.Error("a broken sensors file read without an error")
	}
}

func TestStdinPrompt(t *testing.T) {
	in, typing := io.Pipe()
	asked := make(chan struct{}, 1)
	ask := stdinPrompt(in, writerFunc(func(b []byte) (int, error) {
		if strings.HasPrefix(string(b), "PROMPT") {
			asked <- struct{}{}
		}
		return len(b), nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := gate.PromptRequest{Manifest: &verify.Manifest{Component: "firmware", Version: "1.1.0"}}
	// "y" typed before the question is not consent.
	typing.Write([]byte("y\n"))       // returns once read
	time.Sleep(50 * time.Millisecond) // and the reader is waiting to hand it over
	for _, tt := range []struct {
		typed string
		want  gate.Answer
	}{{"n\n", gate.AnswerLater}, {"y\n", gate.AnswerNow}} {
		go func() { <-asked; typing.Write([]byte(tt.typed)) }()
		got, err := ask(ctx, req)
		if err != nil || got != tt.want {
			t.Fatalf("typed %q: answer %v, %v; want %v", tt.typed, got, err, tt.want)
		}
	}
	typing.Close()
	if got, _ := ask(ctx, req); got != gate.AnswerNone {
		t.Fatalf("after the input ended: %v, want no answer", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
