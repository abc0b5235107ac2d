package verify

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// KeyRing holds the root keys a terminal trusts. Roots never sign releases:
// they certify signing keys (kept on the release server, rotated freely),
// and signing keys sign manifests. A KeyRing is immutable and safe for
// concurrent use.
type KeyRing struct {
	roots map[KeyID]ed25519.PublicKey
}

// NewKeyRing returns a key ring trusting roots. It needs at least one.
func NewKeyRing(roots ...PublicKey) (*KeyRing, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: a key ring needs at least one root key", ErrUnknownKey)
	}
	k := &KeyRing{roots: make(map[KeyID]ed25519.PublicKey, len(roots))}
	for _, r := range roots {
		if len(r.Key) != ed25519.PublicKeySize || KeyIDOf(r.Key) != r.ID {
			return nil, malformed("root key %s: bad key or id", r.ID)
		}
		k.roots[r.ID] = r.Key
	}
	return k, nil
}

// Roots returns the IDs of the trusted root keys.
func (k *KeyRing) Roots() []KeyID {
	ids := make([]KeyID, 0, len(k.roots))
	for id := range k.roots {
		ids = append(ids, id)
	}
	return ids
}

// Open verifies a bundle at time now and returns its manifest. It checks, in
// order: the bundle's form and limits; each signing-key certificate's root
// signature and validity period; the manifest's signature by a certified
// signing key; the manifest's form; and its expiry. Open does not check
// that the release suits a device: that is the caller's (see
// [CheckVersion] and the update/release package).
func (k *KeyRing) Open(data []byte, now time.Time) (*Manifest, error) {
	b, err := ParseBundle(data)
	if err != nil {
		return nil, err
	}
	return k.OpenBundle(b, now)
}

// OpenBundle is [KeyRing.Open] for a bundle already parsed.
func (k *KeyRing) OpenBundle(b *Bundle, now time.Time) (*Manifest, error) {
	signers := make(map[KeyID]ed25519.PublicKey, len(b.Keys))
	var certErr error
	for _, env := range b.Keys {
		pub, err := k.openCert(env, now)
		if err != nil {
			certErr = errors.Join(certErr, err)
			continue
		}
		signers[KeyIDOf(pub)] = pub
	}
	if err := verifyEnvelope(b.Manifest, PayloadManifest, signers); err != nil {
		if errors.Is(err, ErrUnknownKey) && certErr != nil {
			// The manifest's key was offered but not accepted: say why.
			return nil, fmt.Errorf("%w (signing key refused: %w)", err, certErr)
		}
		return nil, err
	}
	m, err := ParseManifest(b.Manifest.Payload)
	if err != nil {
		return nil, err
	}
	if !now.Before(m.Expires) {
		return nil, fmt.Errorf("%w: manifest %s expired at %s", ErrExpired, m.ID(), m.Expires.UTC().Format(time.RFC3339))
	}
	return m, nil
}

func (k *KeyRing) openCert(env Envelope, now time.Time) (ed25519.PublicKey, error) {
	if err := verifyEnvelope(env, PayloadSigningKey, k.roots); err != nil {
		return nil, err
	}
	c, err := ParseKeyCert(env.Payload)
	if err != nil {
		return nil, err
	}
	if now.Before(c.Issued) || !now.Before(c.Expires) {
		return nil, fmt.Errorf("%w: signing key %s is valid from %s to %s", ErrExpired, c.KeyID,
			c.Issued.UTC().Format(time.RFC3339), c.Expires.UTC().Format(time.RFC3339))
	}
	return ed25519.PublicKey(c.Public), nil
}

// verifyEnvelope checks that env carries payloadType and at least one valid
// signature by a key in keys. A signature by a known key that fails is
// ErrSignature even if another signature would pass: a forged signature is
// a reason to refuse, not to look further.
func verifyEnvelope(env Envelope, payloadType string, keys map[KeyID]ed25519.PublicKey) error {
	if env.PayloadType != payloadType {
		return malformed("payload type %.80q, want %s", env.PayloadType, payloadType)
	}
	if len(env.Signatures) == 0 {
		return fmt.Errorf("%w: %s payload is unsigned", ErrSignature, payloadType)
	}
	msg := SignedBytes(env.PayloadType, env.Payload)
	valid := false
	for _, s := range env.Signatures {
		pub, ok := keys[s.KeyID]
		if !ok {
			continue
		}
		if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, s.Sig) {
			return fmt.Errorf("%w: key %s on %s", ErrSignature, s.KeyID, payloadType)
		}
		valid = true
	}
	if !valid {
		ids := make([]KeyID, 0, len(env.Signatures))
		for _, s := range env.Signatures {
			ids = append(ids, s.KeyID)
		}
		return fmt.Errorf("%w: %s signed by %v, none trusted", ErrUnknownKey, payloadType, ids)
	}
	return nil
}

func marshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
