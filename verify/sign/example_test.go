package sign_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// Pack a release with a fresh key directory and verify it the way a
// terminal does, with nothing but the root public key.
func ExamplePack() {
	work, err := os.MkdirTemp("", "upkeep-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	issued := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

	// Once: a root key (keep it offline) and a signing key it certifies.
	keys, err := sign.NewKeyDir(nil, issued, 2*365*24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	if err := sign.WriteKeyDir(filepath.Join(work, "keys"), keys); err != nil {
		log.Fatal(err)
	}

	// Per release: pack the artifact with the signing key and certificate.
	in := filepath.Join(work, "payment-app.apk")
	if err := os.WriteFile(in, make([]byte, 10<<10), 0o644); err != nil {
		log.Fatal(err)
	}
	p, err := sign.Pack(context.Background(), sign.PackConfig{
		In:  in,
		Out: filepath.Join(work, "release"),
		Manifest: verify.Manifest{
			Component: "payment-app",
			Version:   "1.4.0",
			Kind:      verify.KindApplication,
			Models:    []string{"A920"},
			Issued:    issued,
		},
		ChunkSize: 4 << 10,
		Key:       keys.Signing,
		Certs:     []verify.Envelope{keys.Cert},
	})
	if err != nil {
		log.Fatal(err)
	}

	// On the terminal: root.pub is all it needs.
	ring, err := verify.NewKeyRing(keys.RootPublic)
	if err != nil {
		log.Fatal(err)
	}
	r, err := verify.OpenReleaseDir(context.Background(), p.Dir, ring, issued.Add(time.Hour), nil)
	if err != nil {
		log.Fatal(err)
	}
	a := r.Manifest.Artifact
	fmt.Println(r.Manifest.ID(), r.Manifest.Kind, a.Name, a.Size, len(a.Chunks))
	// Output: payment-app@1.4.0 application payment-app.apk 10240 3
}
