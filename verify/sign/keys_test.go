package sign_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// seeded returns a deterministic source of key material: the same n always
// gives the same keys.
func seeded(n byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{n}) }

func mustKey(t testing.TB, n byte) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(seeded(n))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateKey(t *testing.T) {
	a, b := mustKey(t, 1), mustKey(t, 1)
	if a.ID != b.ID || !bytes.Equal(a.Key, b.Key) {
		t.Errorf("same seed gave different keys: %s, %s", a.ID, b.ID)
	}
	if c := mustKey(t, 2); c.ID == a.ID {
		t.Errorf("different seeds gave the same key %s", c.ID)
	}
	r, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("crypto/rand key: %v", err)
	}
	if _, err := sign.GenerateKey(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("GenerateKey with a short reader: no error")
	}
	pub := a.Public()
	if pub.ID != a.ID || len(pub.Key) != ed25519.PublicKeySize {
		t.Errorf("Public() = %s (%d bytes), want %s", pub.ID, len(pub.Key), a.ID)
	}
	if _, err := verify.NewKeyRing(pub); err != nil {
		t.Errorf("public key refused by NewKeyRing: %v", err)
	}
	if got := (sign.PrivateKey{}).Public(); got.ID != "" || got.Key != nil {
		t.Errorf("zero key's Public() = %+v, want zero", got)
	}
}

func TestPrivateKeyValidate(t *testing.T) {
	k := mustKey(t, 1)
	other := mustKey(t, 2)
	mixed := append(ed25519.PrivateKey{}, k.Key[:32]...)
	mixed = append(mixed, other.Key[32:]...)
	tests := []struct {
		name string
		key  sign.PrivateKey
		ok   bool
	}{
		{"valid", k, true},
		{"zero", sign.PrivateKey{}, false},
		{"short", sign.PrivateKey{ID: k.ID, Key: k.Key[:32]}, false},
		{"wrong id", sign.PrivateKey{ID: other.ID, Key: k.Key}, false},
		{"halves of two keys", sign.PrivateKey{ID: k.ID, Key: mixed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, sign.ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
		})
	}
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	k := mustKey(t, 7)
	b, err := sign.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"algorithm": "ed25519"`) || !strings.Contains(string(b), string(k.ID)) {
		t.Errorf("key file lacks algorithm or id:\n%s", b)
	}
	got, err := sign.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || !bytes.Equal(got.Key, k.Key) {
		t.Errorf("round trip gave %s, want %s", got.ID, k.ID)
	}
	if _, err := sign.MarshalPrivateKey(sign.PrivateKey{}); !errors.Is(err, sign.ErrMalformed) {
		t.Errorf("MarshalPrivateKey(zero) = %v, want ErrMalformed", err)
	}
}

func TestParsePrivateKey(t *testing.T) {
	k := mustKey(t, 3)
	seed := k.Key.Seed()
	file := func(id, alg string, priv []byte) string {
		b, _ := jsonMarshal(map[string]any{"keyid": id, "algorithm": alg, "private": priv})
		return string(b)
	}
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"valid", file(string(k.ID), "ed25519", seed), true},
		{"wrong id", file(string(mustKey(t, 4).ID), "ed25519", seed), false},
		{"empty id", file("", "ed25519", seed), false},
		{"wrong algorithm", file(string(k.ID), "rsa", seed), false},
		{"full private key instead of seed", file(string(k.ID), "ed25519", k.Key), false},
		{"short seed", file(string(k.ID), "ed25519", seed[:31]), false},
		{"no seed", file(string(k.ID), "ed25519", nil), false},
		{"unknown field", `{"keyid":"` + string(k.ID) + `","algorithm":"ed25519","private":"AAAA","extra":1}`, false},
		{"trailing data", file(string(k.ID), "ed25519", seed) + "{}", false},
		{"not base64", `{"keyid":"` + string(k.ID) + `","algorithm":"ed25519","private":"!!"}`, false},
		{"empty", "", false},
		{"null", "null", false},
		{"too large", file(string(k.ID), "ed25519", seed) + strings.Repeat(" ", sign.MaxPrivateKeySize), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sign.ParsePrivateKey([]byte(tt.data))
			if tt.ok != (err == nil) {
				t.Fatalf("ParsePrivateKey() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, sign.ErrMalformed) {
					t.Errorf("error %v does not match ErrMalformed", err)
				}
				return
			}
			if got.ID != k.ID || !bytes.Equal(got.Key, k.Key) {
				t.Errorf("parsed key %s, want %s", got.ID, k.ID)
			}
		})
	}
}
