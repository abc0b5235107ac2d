package server_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// This is the wiring of a vendor's terminal-management server: trust the
// root, publish a release directory from `release pack`, and mount the
// handler beside the vendor's own routes.
func Example() {
	ctx := context.Background()
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
	srv, err := server.New(server.Config{
		Keys:          keys,
		Enrollment:    os.Getenv("UPKEEP_ENROLLMENT"),
		OperatorToken: os.Getenv("UPKEEP_OPERATOR_TOKEN"),
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
	log.Fatal(http.ListenAndServeTLS(":8443", "tls.crt", "tls.key", mux))
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
