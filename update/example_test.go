package update_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/fileinstall"
	"github.com/upkeephq/upkeep/verify"
)

// This is the wiring of a terminal's software: the protocol client, the
// root key, an installer, what to back up, the checks after install, a
// gate, then the heartbeat and the agent run side by side.
func Example() {
	ctx := context.Background()
	logger := slog.Default()

	client, err := httptransport.New(httptransport.Config{
		BaseURL: "https://tms.example.com",
		Token:   os.Getenv("DEVICE_TOKEN"), // from registration, kept on the terminal
		Logger:  logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	rootPub, err := os.ReadFile("/etc/upkeep/root.pub") // from `release keygen`
	if err != nil {
		log.Fatal(err)
	}
	root, err := verify.ParsePublicKey(rootPub)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := verify.NewKeyRing(root)
	if err != nil {
		log.Fatal(err)
	}
	posData, err := backup.NewFiles("pos-data", "/data/pos/journal", "/data/pos/esign")
	if err != nil {
		log.Fatal(err)
	}
	beats := &heartbeat.Counter{}
	agent, err := update.New(update.Config{
		Source:    client,
		Keys:      keys,
		Installer: &fileinstall.Installer{Path: "/opt/pos/payment-app"},
		StateDir:  "/data/upkeep",
		Device:    update.Device{Model: "P300", HardwareRevision: "B"},
		Installed: map[string]string{"payment-app": "3.2.0"},
		Backups:   []backup.Hook{posData},
		Checks: []verify.Check{
			{Name: "sign-in", Run: func(ctx context.Context) error { return nil /* 签到 with the host */ }},
		},
		Gate: func(ctx context.Context, req update.GateRequest) error {
			if beats.Count() < 2 {
				return update.NotNow(30*time.Second, "two heartbeats since boot")
			}
			return nil
		},
		Logger: logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return heartbeat.Run(ctx, heartbeat.Config{
			Sender: client, Status: agent.Heartbeat, Counter: beats, Logger: logger,
			OnDirective: func(ctx context.Context, d transport.Directive) {
				if d == transport.DirectiveCheck {
					agent.CheckNow()
				}
			},
		})
	})
	g.Go(func() error { return agent.Run(ctx) })
	log.Fatal(g.Wait())
}

// One pass of the agent against an in-memory server: the release is
// verified, downloaded chunk by chunk, installed and committed.
func ExampleAgent_Update() {
	ctx := context.Background()
	srv := transporttest.NewServer(transporttest.Config{})
	keys, _ := transporttest.NewKeys(transporttest.DefaultIssued(), transporttest.DefaultExpires())
	rel, _ := keys.NewRelease(verify.Manifest{Component: "payment-app", Version: "3.3.0"}, make([]byte, 100_000))
	srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{})
	client := srv.Client()
	client.Register(ctx, &transport.RegisterRequest{Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "P300"})

	ring, _ := keys.KeyRing()
	state, _ := os.MkdirTemp("", "agent")
	defer os.RemoveAll(state)
	agent, err := update.New(update.Config{
		Source: client, Keys: ring, StateDir: state,
		Installer: &fileinstall.Installer{Path: state + "/payment-app"},
		Device:    update.Device{Model: "P300"},
		Installed: map[string]string{"payment-app": "3.2.0"},
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := agent.Update(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Release, res.From, "→", res.To, res.Outcome)
	fmt.Println(srv.Reports()[0].Outcome, srv.Reports()[0].Reason)
	// Output:
	// payment-app@3.3.0 3.2.0 → 3.3.0 committed
	// committed ok
}
