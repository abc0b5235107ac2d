package sign

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// Sign signs payload as payloadType with key, over [verify.SignedBytes], and
// returns the envelope. key must be valid (see [PrivateKey.Validate]): Sign
// panics otherwise, as crypto/ed25519 does. [CertifyKey], [SignManifest]
// and [Pack] check their key first and return an error instead.
func Sign(key PrivateKey, payloadType string, payload []byte) verify.Envelope {
	sig := ed25519.Sign(key.Key, verify.SignedBytes(payloadType, payload))
	return verify.Envelope{
		PayloadType: payloadType,
		Payload:     payload,
		Signatures:  []verify.Signature{{KeyID: key.ID, Sig: sig}},
	}
}

// CertifyKey has root vouch for the signing key from issued until expires:
// it returns a [verify.PayloadSigningKey] envelope over a [verify.KeyCert],
// which goes into every bundle the signing key signs. Times are kept to the
// second, in UTC.
func CertifyKey(root PrivateKey, signing verify.PublicKey, issued, expires time.Time) (verify.Envelope, error) {
	if err := root.Validate(); err != nil {
		return verify.Envelope{}, fmt.Errorf("root key: %w", err)
	}
	pub, err := verify.NewPublicKey(signing.Key)
	if err != nil {
		return verify.Envelope{}, err
	}
	if pub.ID != signing.ID {
		return verify.Envelope{}, fmt.Errorf("%w: signing key id %.40q is not the key's (%s)", ErrKeyMismatch, signing.ID, pub.ID)
	}
	if pub.ID == root.ID {
		return verify.Envelope{}, configError("a root key does not certify itself: use a separate signing key")
	}
	c := verify.KeyCert{
		KeyID:     pub.ID,
		Algorithm: verify.AlgEd25519,
		Public:    pub.Key,
		Issued:    issued.UTC().Truncate(time.Second),
		Expires:   expires.UTC().Truncate(time.Second),
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return verify.Envelope{}, configError("signing-key certificate: %v", err)
	}
	// Check what we wrote the way a terminal will read it.
	if _, err := verify.ParseKeyCert(payload); err != nil {
		return verify.Envelope{}, err
	}
	return Sign(root, verify.PayloadSigningKey, payload), nil
}

// SignManifest validates m and signs it with key.
func SignManifest(key PrivateKey, m *verify.Manifest) (verify.Envelope, error) {
	if err := key.Validate(); err != nil {
		return verify.Envelope{}, fmt.Errorf("signing key: %w", err)
	}
	if err := m.Validate(); err != nil {
		return verify.Envelope{}, err
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return verify.Envelope{}, configError("manifest %s: %v", m.ID(), err)
	}
	// A manifest that does not survive its own encoding (a time JSON
	// cannot carry, say) must fail here, not on every terminal.
	if _, err := verify.ParseManifest(payload); err != nil {
		return verify.Envelope{}, err
	}
	return Sign(key, verify.PayloadManifest, payload), nil
}

// NewBundle puts a signed manifest and the certificates of the keys that
// signed it together, as terminals receive them. Encode it with
// [verify.MarshalBundle].
func NewBundle(manifest verify.Envelope, certs ...verify.Envelope) *verify.Bundle {
	return &verify.Bundle{Manifest: manifest, Keys: append([]verify.Envelope{}, certs...)}
}
