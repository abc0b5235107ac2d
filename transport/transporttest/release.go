package transporttest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// DefaultIssued is the start of the validity [NewKeys] and
// [Keys.NewRelease] give when told none, 1999-01-01 UTC: before both the
// real clock and synctest's (which starts at 2000-01-01 UTC).
func DefaultIssued() time.Time { return time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }

// DefaultExpires is the end of that validity, 2199-01-01 UTC.
func DefaultExpires() time.Time { return time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC) }

// Keys signs test releases the way a release server does, with nothing
// but crypto/ed25519 and the verify package: a root key certifies a
// signing key, and the signing key signs manifests. Trust it on a terminal
// with [Keys.KeyRing].
type Keys struct {
	Root    ed25519.PrivateKey
	Signing ed25519.PrivateKey
	// Cert is the root's certificate of the signing key, as bundles carry it.
	Cert verify.Envelope
}

// NewKeys generates a root and a signing key certified by it from issued
// to expires (zero times mean [DefaultIssued] and [DefaultExpires]).
func NewKeys(issued, expires time.Time) (*Keys, error) {
	if issued.IsZero() {
		issued = DefaultIssued()
	}
	if expires.IsZero() {
		expires = DefaultExpires()
	}
	_, root, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	signPub, signing, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	cert, err := json.Marshal(verify.KeyCert{
		KeyID:     verify.KeyIDOf(signPub),
		Algorithm: verify.AlgEd25519,
		Public:    signPub,
		Issued:    issued,
		Expires:   expires,
	})
	if err != nil {
		return nil, err
	}
	return &Keys{
		Root:    root,
		Signing: signing,
		Cert:    SignEnvelope(root, verify.PayloadSigningKey, cert),
	}, nil
}

// SignEnvelope signs payload as payloadType with key.
func SignEnvelope(key ed25519.PrivateKey, payloadType string, payload []byte) verify.Envelope {
	pub := key.Public().(ed25519.PublicKey)
	return verify.Envelope{
		PayloadType: payloadType,
		Payload:     payload,
		Signatures: []verify.Signature{{
			KeyID: verify.KeyIDOf(pub),
			Sig:   ed25519.Sign(key, verify.SignedBytes(payloadType, payload)),
		}},
	}
}

// RootKey returns the public root key.
func (k *Keys) RootKey() verify.PublicKey {
	pub := k.Root.Public().(ed25519.PublicKey)
	return verify.PublicKey{ID: verify.KeyIDOf(pub), Key: pub}
}

// KeyRing returns a key ring that trusts k's root.
func (k *Keys) KeyRing() (*verify.KeyRing, error) {
	return verify.NewKeyRing(k.RootKey())
}

// SignManifest signs m as it is, valid or not, and returns the bundle.
func (k *Keys) SignManifest(m *verify.Manifest) ([]byte, error) {
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return json.Marshal(verify.Bundle{
		Manifest: SignEnvelope(k.Signing, verify.PayloadManifest, payload),
		Keys:     []verify.Envelope{k.Cert},
	})
}

// Release is a signed release made by [Keys.NewRelease].
type Release struct {
	Manifest *verify.Manifest
	// Bundle is the signed bundle, compact JSON: byte for byte what an
	// Offer carries once it has travelled as JSON.
	Bundle   []byte
	Artifact []byte
}

// Digest returns the artifact's digest.
func (r *Release) Digest() string { return string(r.Manifest.Artifact.Digest) }

// NewRelease chunks artifact, describes it in m and signs m. The caller
// sets what the release is (Component, Version, Kind, Models, From,
// Floor...); NewRelease fills what is left zero: Schema, Kind
// (application), Issued and Expires ([DefaultIssued], [DefaultExpires]),
// Artifact.Name (component-version.bin) and Artifact.ChunkSize
// (verify.MinChunkSize, so that small test artifacts have several
// chunks). The manifest must then validate.
func (k *Keys) NewRelease(m verify.Manifest, artifact []byte) (*Release, error) {
	if m.Schema == 0 {
		m.Schema = verify.ManifestSchema
	}
	if m.Kind == "" {
		m.Kind = verify.KindApplication
	}
	if m.Issued.IsZero() {
		m.Issued = DefaultIssued()
	}
	if m.Expires.IsZero() {
		m.Expires = DefaultExpires()
	}
	name := m.Artifact.Name
	if name == "" {
		name = m.Component + "-" + m.Version + ".bin"
	}
	chunkSize := m.Artifact.ChunkSize
	if chunkSize == 0 {
		chunkSize = verify.MinChunkSize
	}
	ch, err := verify.NewChunker(chunkSize, nil)
	if err != nil {
		return nil, err
	}
	if _, err := ch.Write(artifact); err != nil {
		return nil, err
	}
	if m.Artifact, err = ch.Artifact(name); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("transporttest: release: %w", err)
	}
	bundle, err := k.SignManifest(&m)
	if err != nil {
		return nil, err
	}
	return &Release{Manifest: &m, Bundle: bundle, Artifact: bytes.Clone(artifact)}, nil
}
