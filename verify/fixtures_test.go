package verify_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// t0 is the tests' "now": every certificate and manifest is built around it.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// seeded returns deterministic bytes: the same n always gives the same keys
// and data.
func seeded(n byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{n}) }

func genKey(t testing.TB, n byte) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(seeded(n))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	seeded(byte(n)).Read(b)
	return b
}

// pki is a root key, a signing key it certifies for a year around t0, and
// a key ring trusting the root: what a release server and a terminal hold.
type pki struct {
	root, signing sign.PrivateKey
	cert          verify.Envelope
	ring          *verify.KeyRing
}

func newPKI(t testing.TB, n byte) *pki {
	t.Helper()
	p := &pki{root: genKey(t, n), signing: genKey(t, n+100)}
	p.cert = certify(t, p.root, p.signing, t0.Add(-day), t0.Add(365*day))
	ring, err := verify.NewKeyRing(p.root.Public())
	if err != nil {
		t.Fatal(err)
	}
	p.ring = ring
	return p
}

func certify(t testing.TB, root, signing sign.PrivateKey, issued, expires time.Time) verify.Envelope {
	t.Helper()
	env, err := sign.CertifyKey(root, signing.Public(), issued, expires)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// artifactFor chunks data with the smallest chunk size.
func artifactFor(t testing.TB, name string, data []byte) verify.Artifact {
	t.Helper()
	c, err := verify.NewChunker(verify.MinChunkSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(data)
	a, err := c.Artifact(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// validManifest returns a valid manifest, issued a day before t0 and
// expiring 30 days after, for a 3-chunk-and-a-bit artifact.
func validManifest(t testing.TB) *verify.Manifest {
	t.Helper()
	return &verify.Manifest{
		Schema:            verify.ManifestSchema,
		Component:         "payment-app",
		Version:           "2.1.0",
		Kind:              verify.KindApplication,
		Models:            []string{"A920", "A80"},
		HardwareRevisions: []string{"rev-b"},
		From:              []string{">=2.0.0, <2.1.0", "~1.9"},
		Floor:             "2.0.0",
		Issued:            t0.Add(-day),
		Expires:           t0.Add(30 * day),
		Artifact:          artifactFor(t, "app.apk", randomBytes(3*verify.MinChunkSize+10)),
	}
}

// signedBundle signs m with signer and bundles it with certs, encoded.
func signedBundle(t testing.TB, m *verify.Manifest, signer sign.PrivateKey, certs ...verify.Envelope) []byte {
	t.Helper()
	env, err := sign.SignManifest(signer, m)
	if err != nil {
		t.Fatal(err)
	}
	return marshalBundle(t, sign.NewBundle(env, certs...))
}

func marshalBundle(t testing.TB, b *verify.Bundle) []byte {
	t.Helper()
	data, err := verify.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
