package server_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store/boltstore"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// This is the wiring of a vendor's terminal-management server: trust the
// root, keep the fleet in an embedded store, publish a release directory
// from `release pack`, mount the handler beside the vendor's own routes,
// and run the background work beside the HTTP server.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rootPub, err := os.ReadFile("keys/root.pub")
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
	fleet, err := boltstore.Open("data", boltstore.Options{}) // or pgstore.Open for replicas
	if err != nil {
		log.Fatal(err)
	}
	defer fleet.Close()
	srv, err := server.New(server.Config{
		Keys:       keys,
		Enrollment: os.Getenv("UPKEEP_ENROLLMENT"),
		Store:      fleet,
		Operators: map[string]server.Operator{
			os.Getenv("UPKEEP_ADMIN_TOKEN"):  {Name: "ops-lead", Role: server.RoleAdmin},
			os.Getenv("UPKEEP_VIEWER_TOKEN"): {Name: "helpdesk", Role: server.RoleViewer},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := srv.Publish(ctx, "releases/firmware-1.1.0", server.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	upkeep, err := srv.Handler()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", upkeep)
	// mux.Handle("/merchants/", vendorRoutes)...
	hs := &http.Server{Addr: ":8443", Handler: mux}

	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- srv.Run(runCtx) }()
	go func() {
		<-ctx.Done()
		hs.Shutdown(context.Background()) // stop taking requests first,
		stopRun()                         // then the background work
	}()
	if err := hs.ListenAndServeTLS("tls.crt", "tls.key"); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-ran
}

// Publish verifies a release directory before offering it.
func ExampleServer_Publish() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	keys, _ := sign.NewKeyDir(nil, time.Now().Add(-time.Hour), 24*time.Hour)
	os.WriteFile(filepath.Join(dir, "fw.bin"), make([]byte, 3<<20), 0o644)
	_, err := sign.Pack(ctx, sign.PackConfig{
		In: filepath.Join(dir, "fw.bin"), Out: filepath.Join(dir, "release"),
		Manifest: verify.Manifest{Component: "firmware", Version: "1.1.0", Kind: verify.KindFirmware, Models: []string{"P300"}},
		Key:      keys.Signing, Certs: []verify.Envelope{keys.Cert},
	})
	if err != nil {
		log.Fatal(err)
	}
	ring, _ := keys.KeyRing()
	srv, _ := server.New(server.Config{Keys: ring, Enrollment: "fleet-secret"})
	if _, err := srv.Publish(ctx, filepath.Join(dir, "release"), server.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	for _, r := range srv.Releases() {
		fmt.Println(r.ID, r.Kind, r.Channel, r.Models, r.Size)
	}
	// Output:
	// firmware@1.1.0 firmware stable [P300] 3145728
}

// A release goes to a pilot terminal first; the others are offered it once
// the pilot reports success. Reports move the rollout on by themselves.
func ExampleServer_CreateRollout() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	keys, _ := sign.NewKeyDir(nil, time.Now().Add(-time.Hour), 24*time.Hour)
	os.WriteFile(filepath.Join(dir, "fw.bin"), make([]byte, 1<<20), 0o644)
	sign.Pack(ctx, sign.PackConfig{
		In: filepath.Join(dir, "fw.bin"), Out: filepath.Join(dir, "release"),
		Manifest: verify.Manifest{Component: "firmware", Version: "1.1.0", Kind: verify.KindFirmware, Models: []string{"P300"}},
		Key:      keys.Signing, Certs: []verify.Envelope{keys.Cert},
	})
	ring, _ := keys.KeyRing()
	srv, _ := server.New(server.Config{Keys: ring, Enrollment: "fleet-secret"}) // Store: nil, in memory
	if _, err := srv.Publish(ctx, filepath.Join(dir, "release"), server.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	var ids []string
	for _, serial := range []string{"LAB-1", "SHOP-1", "SHOP-2"} {
		r, _ := srv.Register(ctx, &transport.RegisterRequest{Enrollment: "fleet-secret", Serial: serial, Model: "P300",
			Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
		ids = append(ids, r.DeviceID)
	}
	check := func(i int) string {
		resp, _ := srv.Check(ctx, ids[i], &transport.CheckRequest{Model: "P300",
			Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
		if len(resp.Offers) > 0 {
			return "offered"
		}
		return "not yet (" + string(resp.Reason) + ")"
	}

	alice := server.Operator{Name: "alice", Role: server.RoleAdmin}
	st, err := srv.CreateRollout(ctx, alice, server.RolloutSpec{ID: "fw-1.1.0", Release: "firmware@1.1.0",
		Pilot: ids[:1], Batches: []float64{100}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State, "stage", st.Stage, "of", len(st.Stages), "with", st.Total.Pending, "pending")
	fmt.Println("LAB-1:", check(0), " SHOP-1:", check(1))

	srv.Report(ctx, ids[0], &transport.ReportRequest{ID: "r1", Release: "firmware@1.1.0", To: "1.1.0",
		Outcome: transport.OutcomeCommitted, Reason: transport.ReasonOK, At: time.Now()})
	st, _ = srv.Rollout(ctx, "fw-1.1.0")
	fmt.Println(st.State, "stage", st.Stage, "installed", st.Total.Installed)
	fmt.Println("SHOP-1:", check(1), " SHOP-2:", check(2))
	// Output:
	// running stage 0 of 2 with 3 pending
	// LAB-1: offered  SHOP-1: not yet (no_release)
	// running stage 1 installed 1
	// SHOP-1: offered  SHOP-2: offered
}
