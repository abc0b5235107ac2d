package verify_test

import (
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// A terminal opens the bundle it received with the root keys it ships
// with. The release server's side (verify/sign) is shown only to make the
// bundle.
func ExampleKeyRing_Open() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	// Release server: a root certifies a signing key, which signs.
	root, _ := sign.GenerateKey(nil)
	signing, _ := sign.GenerateKey(nil)
	cert, _ := sign.CertifyKey(root, signing.Public(), now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
	c, _ := verify.NewChunker(0, nil)
	c.Write([]byte("the new payment app"))
	artifact, _ := c.Artifact("payment-app.apk")
	env, err := sign.SignManifest(signing, &verify.Manifest{
		Schema: verify.ManifestSchema, Component: "payment-app", Version: "1.4.0",
		Kind: verify.KindApplication, Models: []string{"A920"}, Floor: "1.2.0",
		Issued: now, Expires: now.AddDate(0, 3, 0), Artifact: artifact,
	})
	if err != nil {
		log.Fatal(err)
	}
	bundle, _ := verify.MarshalBundle(sign.NewBundle(env, cert))

	// Terminal: only the root's public key.
	ring, err := verify.NewKeyRing(root.Public())
	if err != nil {
		log.Fatal(err)
	}
	m, err := ring.Open(bundle, now.Add(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.ID(), m.Kind, m.Models, m.Artifact.Size, "bytes")
	fmt.Println("from 1.3.0:", verify.CheckVersion(m.Version, "1.3.0", "1.2.0", m.Downgrade))

	// The same bundle, once its manifest has expired.
	_, err = ring.Open(bundle, now.AddDate(1, 0, 0))
	fmt.Println(err != nil && strings.Contains(err.Error(), "expired"))
	// Output:
	// payment-app@1.4.0 application [A920] 19 bytes
	// from 1.3.0: <nil>
	// true
}

// A Chunker computes the chunk list of an artifact as it streams past.
func ExampleChunker() {
	c, err := verify.NewChunker(verify.MinChunkSize, nil)
	if err != nil {
		log.Fatal(err)
	}
	c.Write(make([]byte, 10000)) // 4096 + 4096 + 1808
	a, err := c.Artifact("params.bin")
	if err != nil {
		log.Fatal(err)
	}
	for i, ch := range a.Chunks {
		fmt.Println(i, ch.Offset, ch.Size)
	}
	fmt.Println("chunk holding byte 8191:", a.ChunkAt(8191))
	// Output:
	// 0 0 4096
	// 1 4096 4096
	// 2 8192 1808
	// chunk holding byte 8191: 1
}

func ExampleParseDigest() {
	_, err := verify.ParseDigest("sha256:E3B0C442")
	fmt.Println(err)
	d := verify.DigestBytes(nil)
	fmt.Println(d.Hex()[:16])
	// Output:
	// verify: malformed: digest "sha256:E3B0C442": want 64 hex digits
	// e3b0c44298fc1c14
}
