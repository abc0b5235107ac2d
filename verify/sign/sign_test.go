package sign_test

import (
	"errors"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testManifest returns a valid manifest for a 5000-byte artifact.
func testManifest() *verify.Manifest {
	c, _ := verify.NewChunker(verify.MinChunkSize, nil)
	c.Write(make([]byte, 5000))
	a, _ := c.Artifact("app.bin")
	return &verify.Manifest{
		Schema:    verify.ManifestSchema,
		Component: "payment-app",
		Version:   "1.2.0",
		Kind:      verify.KindApplication,
		Models:    []string{"A920"},
		Issued:    t0,
		Expires:   t0.Add(90 * 24 * time.Hour),
		Artifact:  a,
	}
}

func TestSignVerifiesWithKeyRing(t *testing.T) {
	root, signing := mustKey(t, 1), mustKey(t, 2)
	cert, err := sign.CertifyKey(root, signing.Public(), t0, t0.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	m := testManifest()
	env, err := sign.SignManifest(signing, m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := verify.MarshalBundle(sign.NewBundle(env, cert))
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := verify.NewKeyRing(root.Public())
	got, err := ring.Open(b, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != m.ID() || got.Artifact.Digest != m.Artifact.Digest {
		t.Errorf("opened %s %s, want %s %s", got.ID(), got.Artifact.Digest, m.ID(), m.Artifact.Digest)
	}
}

func TestSign(t *testing.T) {
	k := mustKey(t, 1)
	env := sign.Sign(k, "text/plain", []byte("hello"))
	if env.PayloadType != "text/plain" || string(env.Payload) != "hello" {
		t.Errorf("envelope = %+v", env)
	}
	if len(env.Signatures) != 1 || env.Signatures[0].KeyID != k.ID {
		t.Fatalf("signatures = %+v, want one by %s", env.Signatures, k.ID)
	}
	again := sign.Sign(k, "text/plain", []byte("hello"))
	if string(again.Signatures[0].Sig) != string(env.Signatures[0].Sig) {
		t.Error("Ed25519 signatures are deterministic; two differ")
	}
	other := sign.Sign(k, "text/other", []byte("hello"))
	if string(other.Signatures[0].Sig) == string(env.Signatures[0].Sig) {
		t.Error("the payload type is not covered by the signature")
	}
}

func TestCertifyKey(t *testing.T) {
	root, signing := mustKey(t, 1), mustKey(t, 2)
	pub := signing.Public()
	tests := []struct {
		name    string
		root    sign.PrivateKey
		signing verify.PublicKey
		issued  time.Time
		expires time.Time
		wantErr error
	}{
		{"valid", root, pub, t0, t0.Add(time.Hour), nil},
		{"invalid root", sign.PrivateKey{}, pub, t0, t0.Add(time.Hour), sign.ErrMalformed},
		{"bad signing key", root, verify.PublicKey{ID: pub.ID, Key: pub.Key[:10]}, t0, t0.Add(time.Hour), verify.ErrMalformed},
		{"signing key id mismatch", root, verify.PublicKey{ID: root.ID, Key: pub.Key}, t0, t0.Add(time.Hour), sign.ErrKeyMismatch},
		{"root certifies itself", root, root.Public(), t0, t0.Add(time.Hour), sign.ErrConfig},
		{"expires before issued", root, pub, t0, t0.Add(-time.Hour), verify.ErrMalformed},
		{"expires within the issued second", root, pub, t0, t0.Add(time.Millisecond), verify.ErrMalformed},
		{"zero issued", root, pub, time.Time{}, t0, verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := sign.CertifyKey(tt.root, tt.signing, tt.issued, tt.expires)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CertifyKey() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if env.PayloadType != verify.PayloadSigningKey {
				t.Errorf("payload type %q", env.PayloadType)
			}
			c, err := verify.ParseKeyCert(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if c.KeyID != pub.ID || !c.Issued.Equal(tt.issued) || !c.Expires.Equal(tt.expires) {
				t.Errorf("cert = %+v", c)
			}
		})
	}
}

func TestSignManifest(t *testing.T) {
	k := mustKey(t, 2)
	tests := []struct {
		name    string
		key     sign.PrivateKey
		edit    func(m *verify.Manifest)
		wantErr error
	}{
		{"valid", k, func(*verify.Manifest) {}, nil},
		{"invalid key", sign.PrivateKey{ID: k.ID}, func(*verify.Manifest) {}, sign.ErrMalformed},
		{"invalid manifest", k, func(m *verify.Manifest) { m.Version = "one" }, verify.ErrMalformed},
		{"firmware for any model", k, func(m *verify.Manifest) { m.Kind, m.Models = verify.KindFirmware, nil }, verify.ErrMalformed},
		{"year JSON cannot carry", k, func(m *verify.Manifest) { m.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, sign.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManifest()
			tt.edit(m)
			env, err := sign.SignManifest(tt.key, m)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("SignManifest() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if env.PayloadType != verify.PayloadManifest {
				t.Errorf("payload type %q", env.PayloadType)
			}
			got, err := verify.ParseManifest(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID() != m.ID() {
				t.Errorf("signed %s, want %s", got.ID(), m.ID())
			}
		})
	}
}

func TestNewBundle(t *testing.T) {
	k := mustKey(t, 1)
	env := sign.Sign(k, verify.PayloadManifest, []byte("{}"))
	b := sign.NewBundle(env)
	if b.Keys == nil || len(b.Keys) != 0 {
		t.Errorf("NewBundle without certs: Keys = %#v, want empty", b.Keys)
	}
	certs := []verify.Envelope{sign.Sign(k, verify.PayloadSigningKey, []byte("a"))}
	b = sign.NewBundle(env, certs...)
	certs[0].PayloadType = "changed"
	if b.Keys[0].PayloadType != verify.PayloadSigningKey {
		t.Error("NewBundle shares the caller's certificate slice")
	}
}
