package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/upkeephq/upkeep/internal/jsonwire"
)

// Payload types name what an [Envelope] carries; the type is part of what
// is signed, so a signature over one kind of payload never validates
// another.
const (
	PayloadManifest   = "application/vnd.upkeep.manifest.v1+json"
	PayloadSigningKey = "application/vnd.upkeep.signing-key.v1+json"
)

// Limits on what [ParseBundle] accepts.
const (
	// MaxBundleSize bounds an encoded bundle.
	MaxBundleSize = 48 << 20
	// MaxSignatures bounds the signatures on one envelope.
	MaxSignatures = 8
	// MaxKeyCerts bounds the signing-key certificates in a bundle.
	MaxKeyCerts = 8
)

// Envelope is a signed payload. The signature covers [SignedBytes] of the
// payload type and the payload, never a re-encoding of it.
type Envelope struct {
	PayloadType string      `json:"payload_type"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one key's Ed25519 signature over an envelope.
type Signature struct {
	KeyID KeyID  `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// SignedBytes returns the bytes a signature covers: a domain-separated,
// length-prefixed encoding of the payload type and the payload.
func SignedBytes(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len(payloadType)+len(payload)+40)
	b = append(b, "UPKEEP-SIG-V1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// KeyID names a public key: the first 16 bytes of the SHA-256 of the raw
// Ed25519 key, in hex.
type KeyID string

// PublicKey is an Ed25519 public key and its ID.
type PublicKey struct {
	ID  KeyID
	Key ed25519.PublicKey
}

// NewPublicKey wraps an Ed25519 public key, computing its ID.
func NewPublicKey(k ed25519.PublicKey) (PublicKey, error) {
	if len(k) != ed25519.PublicKeySize {
		return PublicKey{}, malformed("ed25519 public key of %d bytes", len(k))
	}
	return PublicKey{ID: KeyIDOf(k), Key: k}, nil
}

// KeyIDOf computes the ID of an Ed25519 public key.
func KeyIDOf(k ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(k)
	return KeyID(hex.EncodeToString(sum[:16]))
}

// AlgEd25519 is the only signature algorithm upkeep accepts.
const AlgEd25519 = "ed25519"

// keyFile is the JSON form of a public key file.
type keyFile struct {
	KeyID     KeyID  `json:"keyid"`
	Algorithm string `json:"algorithm"`
	Public    []byte `json:"public"`
}

// MarshalPublicKey encodes k as a public key file.
func MarshalPublicKey(k PublicKey) ([]byte, error) {
	return marshalIndent(keyFile{KeyID: k.ID, Algorithm: AlgEd25519, Public: k.Key})
}

// ParsePublicKey decodes a public key file and checks that its ID matches
// the key.
func ParsePublicKey(data []byte) (PublicKey, error) {
	var f keyFile
	if len(data) > 4096 {
		return PublicKey{}, fmt.Errorf("%w: key file of %d bytes", ErrTooLarge, len(data))
	}
	if err := jsonwire.Unmarshal(data, &f); err != nil {
		return PublicKey{}, malformed("public key: %v", err)
	}
	return f.publicKey()
}

func (f keyFile) publicKey() (PublicKey, error) {
	if f.Algorithm != AlgEd25519 {
		return PublicKey{}, malformed("key algorithm %.40q, want %s", f.Algorithm, AlgEd25519)
	}
	k, err := NewPublicKey(ed25519.PublicKey(f.Public))
	if err != nil {
		return PublicKey{}, err
	}
	if k.ID != f.KeyID {
		return PublicKey{}, malformed("key id %.40q does not match the key (%s)", f.KeyID, k.ID)
	}
	return k, nil
}

// KeyCert is the payload of a signing-key certificate: a root key vouches
// for a signing key until Expires.
type KeyCert struct {
	KeyID     KeyID     `json:"keyid"`
	Algorithm string    `json:"algorithm"`
	Public    []byte    `json:"public"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires"`
}

// ParseKeyCert decodes and checks a signing-key certificate's payload.
func ParseKeyCert(data []byte) (*KeyCert, error) {
	var c KeyCert
	if err := jsonwire.Unmarshal(data, &c); err != nil {
		return nil, malformed("signing-key certificate: %v", err)
	}
	if _, err := (keyFile{KeyID: c.KeyID, Algorithm: c.Algorithm, Public: c.Public}).publicKey(); err != nil {
		return nil, err
	}
	if c.Issued.IsZero() || !c.Expires.After(c.Issued) {
		return nil, malformed("signing-key certificate %s: expires must follow issued", c.KeyID)
	}
	return &c, nil
}

// Bundle is what a terminal receives for a release: the signed manifest and
// the certificates of the signing keys that signed it.
type Bundle struct {
	Manifest Envelope   `json:"manifest"`
	Keys     []Envelope `json:"keys"`
}

// ParseBundle decodes a bundle strictly and checks its limits. It verifies
// nothing: use [KeyRing.Open] for that.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: bundle of %d bytes, limit %d", ErrTooLarge, len(data), MaxBundleSize)
	}
	var b Bundle
	if err := jsonwire.Unmarshal(data, &b); err != nil {
		return nil, malformed("bundle: %v", err)
	}
	if len(b.Keys) > MaxKeyCerts {
		return nil, malformed("bundle carries %d key certificates, limit %d", len(b.Keys), MaxKeyCerts)
	}
	for _, e := range append([]Envelope{b.Manifest}, b.Keys...) {
		if len(e.Signatures) == 0 {
			return nil, fmt.Errorf("%w: %s payload is unsigned", ErrSignature, e.PayloadType)
		}
		if len(e.Signatures) > MaxSignatures {
			return nil, malformed("%d signatures, limit %d", len(e.Signatures), MaxSignatures)
		}
	}
	return &b, nil
}

// MarshalBundle encodes b as indented JSON.
func MarshalBundle(b *Bundle) ([]byte, error) { return marshalIndent(b) }
