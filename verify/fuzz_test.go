package verify_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/verify"
)

// The parsers below read what arrives from outside: from the server, from
// a USB stick, from a file a technician copied. None may panic, and
// anything one accepts must be valid and survive its own encoding.

func FuzzParseBundle(f *testing.F) {
	p := newPKI(f, 1)
	m := validManifest(f)
	f.Add(signedBundle(f, m, p.signing, p.cert))
	f.Add(signedBundle(f, m, p.signing))
	f.Add(signedBundle(f, m, genKey(f, 9), p.cert, p.cert))
	f.Add([]byte(`{"manifest":{"payload_type":"x","payload":"","signatures":[{"keyid":"a","sig":""}]},"keys":[]}`))
	f.Add([]byte(`{"manifest":{"payload_type":"x","payload":null,"signatures":null},"keys":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"manifest":1}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := verify.ParseBundle(data)
		if err == nil {
			re, err := verify.MarshalBundle(b)
			if err != nil {
				t.Fatalf("accepted bundle does not encode: %v", err)
			}
			if _, err := verify.ParseBundle(re); err != nil {
				t.Fatalf("re-encoded bundle refused: %v\n%s", err, re)
			}
		}
		// Open must not panic either, and what it accepts must be valid.
		m, err := p.ring.Open(data, t0)
		if err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("Open accepted an invalid manifest: %v", err)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	valid, err := json.Marshal(validManifest(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	firmware := validManifest(f)
	firmware.Kind, firmware.Downgrade = verify.KindFirmware, true
	if b, err := json.Marshal(firmware); err == nil {
		f.Add(b)
	}
	empty := validManifest(f)
	empty.Artifact = artifactFor(f, "empty.bin", nil)
	empty.Models, empty.From, empty.Floor, empty.HardwareRevisions = nil, nil, "", nil
	if b, err := json.Marshal(empty); err == nil {
		f.Add(b)
	}
	catalog := validManifest(f)
	catalog.Category = verify.CategorySecurity
	catalog.Requires = []verify.Requirement{{Component: "firmware", Version: ">=1.4"}, {Component: "params", Version: "^3, <3.5"}}
	if b, err := json.Marshal(catalog); err == nil {
		f.Add(b)
		f.Add(bytes.Replace(b, []byte(`"firmware"`), []byte(`"payment-app"`), 1))
		f.Add(bytes.Replace(b, []byte(`"security"`), []byte(`"urgent"`), 1))
		f.Add(bytes.Replace(b, []byte(`"requires":[`), []byte(`"requires":[{},`), 1))
	}
	f.Add(bytes.Replace(valid, []byte(`Z"`), []byte(`+08:00"`), -1))
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := verify.ParseManifest(data)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted manifest does not validate: %v", err)
		}
		re, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		m2, err := verify.ParseManifest(re)
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v\n%s", err, re)
		}
		re2, _ := json.Marshal(m2)
		if !bytes.Equal(re, re2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", re, re2)
		}
		for off := int64(0); off < m.Artifact.Size && off < 1<<20; off += 997 {
			if i := m.Artifact.ChunkAt(off); i < 0 {
				t.Fatalf("ChunkAt(%d) = -1 inside a valid artifact", off)
			}
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	valid, err := verify.MarshalPublicKey(genKey(f, 1).Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"keyid":"","algorithm":"ed25519","public":"AAAA"}`))
	f.Add([]byte(`{"keyid":"x","algorithm":"rsa","public":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := verify.ParsePublicKey(data)
		if err != nil {
			return
		}
		if _, err := verify.NewKeyRing(k); err != nil {
			t.Fatalf("accepted key refused by NewKeyRing: %v", err)
		}
		re, err := verify.MarshalPublicKey(k)
		if err != nil {
			t.Fatalf("accepted key does not encode: %v", err)
		}
		k2, err := verify.ParsePublicKey(re)
		if err != nil || k2.ID != k.ID || !bytes.Equal(k2.Key, k.Key) {
			t.Fatalf("round trip: %v, %s -> %s", err, k.ID, k2.ID)
		}
	})
}

func FuzzParseKeyCert(f *testing.F) {
	p := newPKI(f, 1)
	f.Add(p.cert.Payload)
	f.Add(bytes.Replace(p.cert.Payload, []byte(`Z"`), []byte(`-05:00"`), -1))
	f.Add([]byte(`{"keyid":"","algorithm":"ed25519","public":"","issued":"2025-01-01T00:00:00Z","expires":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := verify.ParseKeyCert(data)
		if err != nil {
			return
		}
		if !c.Expires.After(c.Issued) || c.KeyID != verify.KeyIDOf(c.Public) {
			t.Fatalf("accepted an invalid certificate: %+v", c)
		}
		re, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("accepted certificate does not encode: %v", err)
		}
		if _, err := verify.ParseKeyCert(re); err != nil {
			t.Fatalf("re-encoded certificate refused: %v\n%s", err, re)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add(string(verify.DigestBytes(nil)))
	f.Add(string(verify.DigestBytes([]byte("x"))))
	f.Add("sha256:" + strings.Repeat("A", 64))
	f.Add("sha256:")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := verify.ParseDigest(s)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted %q does not validate: %v", s, err)
		}
		sum, err := hex.DecodeString(d.Hex())
		if err != nil || len(sum) != 32 {
			t.Fatalf("accepted %q: hex %q: %v", s, d.Hex(), err)
		}
		if verify.NewDigest(sum) != d || d.String() != s {
			t.Fatalf("accepted %q does not round-trip", s)
		}
	})
}
