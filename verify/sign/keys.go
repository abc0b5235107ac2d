package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/verify"
)

// MaxPrivateKeySize bounds an encoded private key file.
const MaxPrivateKeySize = 4096

// PrivateKey is an Ed25519 private key and the ID of its public half.
type PrivateKey struct {
	ID  verify.KeyID
	Key ed25519.PrivateKey
}

// GenerateKey makes a new key from rand's bytes, or from crypto/rand when
// rand is nil. The same 32 bytes of rand always give the same key, which is
// what tests want and what a production caller must never arrange.
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return PrivateKey{}, err
	}
	return PrivateKey{ID: verify.KeyIDOf(pub), Key: priv}, nil
}

// Public returns the key's public half. It returns the zero PublicKey when
// k is not a valid key.
func (k PrivateKey) Public() verify.PublicKey {
	if len(k.Key) != ed25519.PrivateKeySize {
		return verify.PublicKey{}
	}
	pub := k.Key.Public().(ed25519.PublicKey)
	return verify.PublicKey{ID: verify.KeyIDOf(pub), Key: pub}
}

// Validate reports whether k is a well-formed key whose ID is its public
// half's. Keys from [GenerateKey] and [ParsePrivateKey] always are.
func (k PrivateKey) Validate() error {
	if len(k.Key) != ed25519.PrivateKeySize {
		return malformed("ed25519 private key of %d bytes", len(k.Key))
	}
	// The private key carries its public half after the seed: a key
	// whose halves disagree would sign with one key and claim another.
	if !bytes.Equal(ed25519.NewKeyFromSeed(k.Key.Seed()), k.Key) {
		return malformed("ed25519 private key %s: public half does not match the seed", k.ID)
	}
	if id := verify.KeyIDOf(k.Key.Public().(ed25519.PublicKey)); id != k.ID {
		return malformed("private key id %.40q does not match the key (%s)", k.ID, id)
	}
	return nil
}

// privateKeyFile is the JSON form of a private key file.
type privateKeyFile struct {
	KeyID     verify.KeyID `json:"keyid"`
	Algorithm string       `json:"algorithm"`
	// Private is the 32-byte Ed25519 seed, base64 in JSON.
	Private []byte `json:"private"`
}

// MarshalPrivateKey encodes k as a private key file. Write it with mode
// 0600.
func MarshalPrivateKey(k PrivateKey) ([]byte, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return marshalIndent(privateKeyFile{KeyID: k.ID, Algorithm: verify.AlgEd25519, Private: k.Key.Seed()})
}

// ParsePrivateKey decodes a private key file, strictly, and checks that its
// ID is the key's.
func ParsePrivateKey(data []byte) (PrivateKey, error) {
	if len(data) > MaxPrivateKeySize {
		return PrivateKey{}, malformed("private key file of %d bytes, limit %d", len(data), MaxPrivateKeySize)
	}
	var f privateKeyFile
	if err := jsonwire.Unmarshal(data, &f); err != nil {
		return PrivateKey{}, malformed("private key: %v", err)
	}
	if f.Algorithm != verify.AlgEd25519 {
		return PrivateKey{}, malformed("private key algorithm %.40q, want %s", f.Algorithm, verify.AlgEd25519)
	}
	if len(f.Private) != ed25519.SeedSize {
		return PrivateKey{}, malformed("ed25519 seed of %d bytes, want %d", len(f.Private), ed25519.SeedSize)
	}
	k := ed25519.NewKeyFromSeed(f.Private)
	id := verify.KeyIDOf(k.Public().(ed25519.PublicKey))
	if id != f.KeyID {
		return PrivateKey{}, malformed("private key id %.40q does not match the key (%s)", f.KeyID, id)
	}
	return PrivateKey{ID: id, Key: k}, nil
}

func marshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
