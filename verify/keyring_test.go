package verify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

func TestKeyRingOpen(t *testing.T) {
	p := newPKI(t, 1)
	stranger := newPKI(t, 2) // another root and its own signing key
	rogue := genKey(t, 50)   // a key nobody certified
	m := validManifest(t)
	env := func(t *testing.T, signer sign.PrivateKey) verify.Envelope {
		e, err := sign.SignManifest(signer, m)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	tests := []struct {
		name    string
		bundle  func(t *testing.T) []byte
		now     time.Time
		wantErr []error // every one must match; nil: success
	}{
		{"valid", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, p.cert)
		}, t0, nil},
		{"valid at the last instant", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, p.cert)
		}, m.Expires.Add(-time.Nanosecond), nil},
		{"valid at the issue time of the certificate", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, p.cert)
		}, t0.Add(-day), nil},
		{"tampered payload", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.Payload = bytes.Replace(e.Payload, []byte(`"2.1.0"`), []byte(`"9.1.0"`), 1)
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrSignature}},
		{"tampered payload type", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.PayloadType = verify.PayloadSigningKey
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrMalformed}},
		{"tampered signature", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.Signatures[0].Sig[0] ^= 1
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrSignature}},
		{"truncated signature", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.Signatures[0].Sig = e.Signatures[0].Sig[:10]
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrSignature}},
		{"forged signature beside a valid one", func(t *testing.T) []byte {
			e := env(t, p.signing)
			forged := verify.Signature{KeyID: p.signing.ID, Sig: make([]byte, 64)}
			e.Signatures = append(e.Signatures, forged)
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrSignature}},
		{"unknown signature beside a valid one", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.Signatures = append([]verify.Signature{env(t, rogue).Signatures[0]}, e.Signatures...)
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, nil},
		{"unsigned manifest", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.Signatures = nil
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrSignature}},
		{"signed by an unknown key", func(t *testing.T) []byte {
			return signedBundle(t, m, rogue, p.cert)
		}, t0, []error{verify.ErrUnknownKey}},
		{"signed by an unknown key with no certificates", func(t *testing.T) []byte {
			return signedBundle(t, m, rogue)
		}, t0, []error{verify.ErrUnknownKey}},
		{"signing key certified by another root", func(t *testing.T) []byte {
			return signedBundle(t, m, stranger.signing, stranger.cert)
		}, t0, []error{verify.ErrUnknownKey}},
		{"signing key certified by itself", func(t *testing.T) []byte {
			self := sign.Sign(rogue, verify.PayloadSigningKey, certPayload(t, rogue))
			return signedBundle(t, m, rogue, self)
		}, t0, []error{verify.ErrUnknownKey}},
		{"signing key certified by a signing key", func(t *testing.T) []byte {
			sub := sign.Sign(p.signing, verify.PayloadSigningKey, certPayload(t, rogue))
			return signedBundle(t, m, rogue, p.cert, sub)
		}, t0, []error{verify.ErrUnknownKey}},
		{"manifest signed by the root itself", func(t *testing.T) []byte {
			return signedBundle(t, m, p.root, p.cert)
		}, t0, []error{verify.ErrUnknownKey}},
		{"certificate for another key than the manifest's signer", func(t *testing.T) []byte {
			return signedBundle(t, m, rogue, certify(t, p.root, p.signing, t0.Add(-day), t0.Add(day)))
		}, t0, []error{verify.ErrUnknownKey}},
		{"certificate tampered to name another key", func(t *testing.T) []byte {
			c := p.cert
			c.Payload = certPayload(t, rogue)
			return signedBundle(t, m, rogue, c)
		}, t0, []error{verify.ErrUnknownKey, verify.ErrSignature}},
		{"certificate with a manifest's payload type", func(t *testing.T) []byte {
			c := sign.Sign(p.root, verify.PayloadManifest, p.cert.Payload)
			return signedBundle(t, m, p.signing, c)
		}, t0, []error{verify.ErrUnknownKey, verify.ErrMalformed}},
		{"manifest offered as a certificate", func(t *testing.T) []byte {
			e := env(t, p.signing)
			return marshalBundle(t, sign.NewBundle(e, e))
		}, t0, []error{verify.ErrUnknownKey, verify.ErrMalformed}},
		{"expired certificate", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, certify(t, p.root, p.signing, t0.Add(-2*day), t0.Add(-day)))
		}, t0, []error{verify.ErrExpired, verify.ErrUnknownKey}},
		{"certificate expiring right now", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, certify(t, p.root, p.signing, t0.Add(-day), t0))
		}, t0, []error{verify.ErrExpired}},
		{"certificate not yet valid", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, certify(t, p.root, p.signing, t0.Add(time.Hour), t0.Add(day)))
		}, t0, []error{verify.ErrExpired, verify.ErrUnknownKey}},
		{"expired certificate beside a valid one", func(t *testing.T) []byte {
			old := certify(t, p.root, p.signing, t0.Add(-2*day), t0.Add(-day))
			return signedBundle(t, m, p.signing, old, p.cert)
		}, t0, nil},
		{"expired manifest", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, p.cert)
		}, m.Expires.Add(time.Second), []error{verify.ErrExpired}},
		{"manifest expiring right now", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, p.cert)
		}, m.Expires, []error{verify.ErrExpired}},
		{"signed manifest that breaks the rules", func(t *testing.T) []byte {
			bad := *m
			bad.Schema = 2
			payload, _ := json.Marshal(&bad)
			return marshalBundle(t, sign.NewBundle(sign.Sign(p.signing, verify.PayloadManifest, payload), p.cert))
		}, t0, []error{verify.ErrMalformed}},
		{"signed payload that is not JSON", func(t *testing.T) []byte {
			return marshalBundle(t, sign.NewBundle(sign.Sign(p.signing, verify.PayloadManifest, []byte("hello")), p.cert))
		}, t0, []error{verify.ErrMalformed}},
		{"certificate payload that is not a certificate", func(t *testing.T) []byte {
			junk := sign.Sign(p.root, verify.PayloadSigningKey, []byte(`{"keyid":"x"}`))
			return signedBundle(t, m, p.signing, junk)
		}, t0, []error{verify.ErrUnknownKey, verify.ErrMalformed}},
		{"unsigned certificate", func(t *testing.T) []byte {
			c := p.cert
			c.Signatures = nil
			return signedBundle(t, m, p.signing, c)
		}, t0, []error{verify.ErrSignature}},
		{"too many certificates", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, slices.Repeat([]verify.Envelope{p.cert}, verify.MaxKeyCerts+1)...)
		}, t0, []error{verify.ErrMalformed}},
		{"as many certificates as allowed", func(t *testing.T) []byte {
			return signedBundle(t, m, p.signing, slices.Repeat([]verify.Envelope{p.cert}, verify.MaxKeyCerts)...)
		}, t0, nil},
		{"too many signatures", func(t *testing.T) []byte {
			e := env(t, p.signing)
			e.Signatures = slices.Repeat(e.Signatures, verify.MaxSignatures+1)
			return marshalBundle(t, sign.NewBundle(e, p.cert))
		}, t0, []error{verify.ErrMalformed}},
		{"unknown field", func(t *testing.T) []byte {
			b := signedBundle(t, m, p.signing, p.cert)
			return bytes.Replace(b, []byte(`"manifest"`), []byte(`"extra": 1, "manifest"`), 1)
		}, t0, []error{verify.ErrMalformed}},
		{"trailing data", func(t *testing.T) []byte {
			return append(signedBundle(t, m, p.signing, p.cert), "{}"...)
		}, t0, []error{verify.ErrMalformed}},
		{"not JSON", func(t *testing.T) []byte { return []byte("manifest") }, t0, []error{verify.ErrMalformed}},
		{"empty object", func(t *testing.T) []byte { return []byte("{}") }, t0, []error{verify.ErrSignature}},
		{"too large", func(t *testing.T) []byte {
			return bytes.Repeat([]byte(" "), verify.MaxBundleSize+1)
		}, t0, []error{verify.ErrTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.ring.Open(tt.bundle(t), tt.now)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Open() = %v, want success", err)
				}
				if got.ID() != m.ID() || got.Artifact.Digest != m.Artifact.Digest {
					t.Errorf("opened %s %s, want %s %s", got.ID(), got.Artifact.Digest, m.ID(), m.Artifact.Digest)
				}
				return
			}
			if err == nil {
				t.Fatalf("Open() succeeded, want %v", tt.wantErr)
			}
			if got != nil {
				t.Errorf("Open() returned a manifest with error %v", err)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Open() = %v, does not match %v", err, want)
				}
			}
		})
	}
}

// certPayload returns a signing-key certificate payload for k, valid
// around t0, without signing it.
func certPayload(t *testing.T, k sign.PrivateKey) []byte {
	t.Helper()
	b, err := json.Marshal(verify.KeyCert{
		KeyID: k.ID, Algorithm: verify.AlgEd25519, Public: k.Public().Key,
		Issued: t0.Add(-day), Expires: t0.Add(day),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyRingRotation shows the point of the two-level trust: the release
// server replaces its signing key and terminals need no change.
func TestKeyRingRotation(t *testing.T) {
	p := newPKI(t, 1)
	m := validManifest(t)
	oldBundle := signedBundle(t, m, p.signing, p.cert)

	// Rotate: a new signing key, certified by the same root from t0 on;
	// the old certificate ends a week later.
	next := genKey(t, 77)
	nextCert := certify(t, p.root, next, t0, t0.Add(365*day))
	newBundle := signedBundle(t, m, next, nextCert)
	oldCertShort := certify(t, p.root, p.signing, t0.Add(-day), t0.Add(7*day))
	oldBundleShort := signedBundle(t, m, p.signing, oldCertShort)

	tests := []struct {
		name    string
		bundle  []byte
		now     time.Time
		wantErr error
	}{
		{"new key, same key ring", newBundle, t0.Add(time.Hour), nil},
		{"old key while its certificate lasts", oldBundle, t0.Add(time.Hour), nil},
		{"old key with a shortened certificate, before it ends", oldBundleShort, t0.Add(6 * day), nil},
		{"old key with a shortened certificate, after it ends", oldBundleShort, t0.Add(8 * day), verify.ErrExpired},
		{"new key before its certificate starts", newBundle, t0.Add(-time.Hour), verify.ErrExpired},
		{"new key with the old key's certificate", signedBundle(t, m, next, p.cert), t0, verify.ErrUnknownKey},
		{"both certificates, new key", signedBundle(t, m, next, p.cert, nextCert), t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.ring.Open(tt.bundle, tt.now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Open() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestKeyRingTwoRoots covers a fleet moving from one root to another: a
// terminal that trusts both accepts releases under either.
func TestKeyRingTwoRoots(t *testing.T) {
	a, b := newPKI(t, 1), newPKI(t, 2)
	m := validManifest(t)
	both, err := verify.NewKeyRing(a.root.Public(), b.root.Public())
	if err != nil {
		t.Fatal(err)
	}
	ids := both.Roots()
	slices.Sort(ids)
	want := []verify.KeyID{a.root.ID, b.root.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("Roots() = %v, want %v", ids, want)
	}
	underA := signedBundle(t, m, a.signing, a.cert)
	underB := signedBundle(t, m, b.signing, b.cert)
	// A signing key certified by both roots, for terminals on either.
	crossB := certify(t, b.root, a.signing, t0.Add(-day), t0.Add(day))
	underAandB := signedBundle(t, m, a.signing, a.cert, crossB)
	tests := []struct {
		name    string
		ring    *verify.KeyRing
		bundle  []byte
		wantErr error
	}{
		{"both roots, release under A", both, underA, nil},
		{"both roots, release under B", both, underB, nil},
		{"root A only, release under A", a.ring, underA, nil},
		{"root A only, release under B", a.ring, underB, verify.ErrUnknownKey},
		{"root B only, release under A", b.ring, underA, verify.ErrUnknownKey},
		{"root A only, cross-certified release", a.ring, underAandB, nil},
		{"root B only, cross-certified release", b.ring, underAandB, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ring.Open(tt.bundle, t0)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Open() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewKeyRing(t *testing.T) {
	k := genKey(t, 1).Public()
	tests := []struct {
		name    string
		roots   []verify.PublicKey
		wantErr error
	}{
		{"one root", []verify.PublicKey{k}, nil},
		{"same root twice", []verify.PublicKey{k, k}, nil},
		{"no roots", nil, verify.ErrUnknownKey},
		{"short key", []verify.PublicKey{{ID: k.ID, Key: k.Key[:31]}}, verify.ErrMalformed},
		{"wrong id", []verify.PublicKey{{ID: genKey(t, 2).ID, Key: k.Key}}, verify.ErrMalformed},
		{"no id", []verify.PublicKey{{Key: k.Key}}, verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring, err := verify.NewKeyRing(tt.roots...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("NewKeyRing() = %v, want %v", err, tt.wantErr)
			}
			if err == nil && len(ring.Roots()) != 1 {
				t.Errorf("Roots() = %v", ring.Roots())
			}
		})
	}
}

func TestOpenBundle(t *testing.T) {
	p := newPKI(t, 1)
	m := validManifest(t)
	b, err := verify.ParseBundle(signedBundle(t, m, p.signing, p.cert))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.ring.OpenBundle(b, t0)
	if err != nil || got.ID() != m.ID() {
		t.Fatalf("OpenBundle() = %v, %v", got, err)
	}
}

func TestPublicKeyFile(t *testing.T) {
	k := genKey(t, 1).Public()
	valid, err := verify.MarshalPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	other := genKey(t, 2).Public()
	file := func(id verify.KeyID, alg string, pub []byte) []byte {
		b, _ := json.Marshal(map[string]any{"keyid": id, "algorithm": alg, "public": pub})
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"valid", valid, nil},
		{"compact", file(k.ID, "ed25519", k.Key), nil},
		{"wrong id", file(other.ID, "ed25519", k.Key), verify.ErrMalformed},
		{"wrong algorithm", file(k.ID, "ecdsa", k.Key), verify.ErrMalformed},
		{"short key", file(k.ID, "ed25519", k.Key[:16]), verify.ErrMalformed},
		{"no key", file(k.ID, "ed25519", nil), verify.ErrMalformed},
		{"unknown field", bytes.Replace(valid, []byte(`"keyid"`), []byte(`"x":0,"keyid"`), 1), verify.ErrMalformed},
		{"trailing data", append(append([]byte{}, valid...), '1'), verify.ErrMalformed},
		{"empty", nil, verify.ErrMalformed},
		{"too large", append(append([]byte{}, valid...), bytes.Repeat([]byte(" "), 4096)...), verify.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verify.ParsePublicKey(tt.data)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ParsePublicKey() = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.ID != k.ID || !bytes.Equal(got.Key, k.Key)) {
				t.Errorf("parsed %s, want %s", got.ID, k.ID)
			}
		})
	}
}

func TestParseKeyCert(t *testing.T) {
	k := genKey(t, 1)
	cert := func(edit func(c *verify.KeyCert)) []byte {
		c := verify.KeyCert{KeyID: k.ID, Algorithm: verify.AlgEd25519, Public: k.Public().Key, Issued: t0, Expires: t0.Add(day)}
		edit(&c)
		b, _ := json.Marshal(c)
		return b
	}
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"valid", cert(func(*verify.KeyCert) {}), true},
		{"wrong id", cert(func(c *verify.KeyCert) { c.KeyID = genKey(t, 2).ID }), false},
		{"wrong algorithm", cert(func(c *verify.KeyCert) { c.Algorithm = "rsa" }), false},
		{"short key", cert(func(c *verify.KeyCert) { c.Public = c.Public[:5] }), false},
		{"no issued", cert(func(c *verify.KeyCert) { c.Issued = time.Time{} }), false},
		{"no expires", cert(func(c *verify.KeyCert) { c.Expires = time.Time{} }), false},
		{"expires when issued", cert(func(c *verify.KeyCert) { c.Expires = c.Issued }), false},
		{"expires before issued", cert(func(c *verify.KeyCert) { c.Expires = c.Issued.Add(-1) }), false},
		{"unknown field", []byte(`{"keyid":"","extra":true}`), false},
		{"not JSON", []byte(`cert`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := verify.ParseKeyCert(tt.data)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseKeyCert() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, verify.ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			if err == nil && c.KeyID != k.ID {
				t.Errorf("parsed %s", c.KeyID)
			}
		})
	}
}

func TestSignedBytes(t *testing.T) {
	// Length prefixes keep a payload type from bleeding into the payload:
	// these pairs concatenate to the same text.
	a := verify.SignedBytes("a b", []byte("c"))
	b := verify.SignedBytes("a", []byte("b c"))
	if bytes.Equal(a, b) {
		t.Error("SignedBytes is ambiguous")
	}
	got := string(verify.SignedBytes("t", []byte("payload")))
	if want := "UPKEEP-SIG-V1 1 t 7 payload"; got != want {
		t.Errorf("SignedBytes = %q, want %q", got, want)
	}
	if !strings.HasPrefix(string(verify.SignedBytes("", nil)), "UPKEEP-SIG-V1 0  0 ") {
		t.Errorf("SignedBytes of nothing = %q", verify.SignedBytes("", nil))
	}
}

func TestKeyIDOf(t *testing.T) {
	k := genKey(t, 1).Public()
	id := verify.KeyIDOf(k.Key)
	if len(id) != 32 || strings.Trim(string(id), "0123456789abcdef") != "" {
		t.Errorf("KeyIDOf = %q, want 32 lower-case hex digits", id)
	}
	if pk, err := verify.NewPublicKey(k.Key); err != nil || pk.ID != id {
		t.Errorf("NewPublicKey = %v, %v", pk.ID, err)
	}
	if _, err := verify.NewPublicKey(k.Key[:1]); !errors.Is(err, verify.ErrMalformed) {
		t.Errorf("NewPublicKey(short) = %v, want ErrMalformed", err)
	}
}
