package sign_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

var allKeyFiles = []string{sign.RootKeyFile, sign.RootPublicFile, sign.SigningKeyFile, sign.SigningPublicFile, sign.SigningCertFile}

func newKeyDir(t *testing.T, n byte) (string, *sign.KeyDir) {
	t.Helper()
	kd, err := sign.NewKeyDir(seeded(n), t0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	if err := sign.WriteKeyDir(dir, kd); err != nil {
		t.Fatal(err)
	}
	return dir, kd
}

func TestKeyDirRoundTrip(t *testing.T) {
	dir, kd := newKeyDir(t, 1)
	perms := map[string]os.FileMode{
		sign.RootKeyFile: 0o600, sign.SigningKeyFile: 0o600,
		sign.RootPublicFile: 0o644, sign.SigningPublicFile: 0o644, sign.SigningCertFile: 0o644,
	}
	for name, want := range perms {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", name, got, want)
		}
	}
	got, err := sign.ReadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasRoot() || got.Root.ID != kd.Root.ID || got.RootPublic.ID != kd.RootPublic.ID ||
		got.Signing.ID != kd.Signing.ID || !bytes.Equal(got.Cert.Payload, kd.Cert.Payload) {
		t.Errorf("ReadKeyDir() = %+v, want %+v", got, kd)
	}
	c, err := got.KeyCert()
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != kd.Signing.ID || !c.Issued.Equal(t0) || !c.Expires.Equal(t0.Add(365*24*time.Hour)) {
		t.Errorf("certificate = %+v", c)
	}
	// root.pub alone is what a terminal holds: it must verify the cert.
	pub, err := os.ReadFile(filepath.Join(dir, sign.RootPublicFile))
	if err != nil {
		t.Fatal(err)
	}
	root, err := verify.ParsePublicKey(pub)
	if err != nil || root.ID != kd.Root.ID {
		t.Fatalf("root.pub = %v, %v", root.ID, err)
	}
}

func TestWriteKeyDirRefusesOverwrite(t *testing.T) {
	for _, name := range allKeyFiles {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			old := []byte("precious")
			if err := os.WriteFile(filepath.Join(dir, name), old, 0o600); err != nil {
				t.Fatal(err)
			}
			kd, err := sign.NewKeyDir(seeded(1), t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := sign.WriteKeyDir(dir, kd); !errors.Is(err, sign.ErrKeyExists) {
				t.Fatalf("WriteKeyDir() = %v, want ErrKeyExists", err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("WriteKeyDir left %d files, want only the existing one", len(entries))
			}
			if b, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(b, old) {
				t.Errorf("%s was overwritten", name)
			}
		})
	}
}

func TestReadKeyDirWithoutRoot(t *testing.T) {
	dir, kd := newKeyDir(t, 1)
	if err := os.Remove(filepath.Join(dir, sign.RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, sign.SigningPublicFile)); err != nil {
		t.Fatal(err)
	}
	got, err := sign.ReadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.HasRoot() || got.RootPublic.ID != kd.RootPublic.ID || got.Signing.ID != kd.Signing.ID {
		t.Errorf("ReadKeyDir() = %+v", got)
	}
	if _, _, err := sign.RotateKeyDir(dir, seeded(9), t0, time.Hour); !errors.Is(err, sign.ErrNoRootKey) {
		t.Errorf("RotateKeyDir without root.key = %v, want ErrNoRootKey", err)
	}
	// Written back without a root, root.key stays absent.
	out := filepath.Join(t.TempDir(), "k")
	if err := sign.WriteKeyDir(out, got); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, sign.RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root.key written for a key dir without root: %v", err)
	}
}

func TestReadKeyDirMismatch(t *testing.T) {
	_, other := newKeyDir(t, 2)
	otherFile := func(name string) []byte {
		dir := t.TempDir()
		if err := sign.WriteKeyDir(dir, other); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		file    string
		data    []byte // nil removes the file
		wantErr error
	}{
		{"root.key of another root", sign.RootKeyFile, otherFile(sign.RootKeyFile), sign.ErrKeyMismatch},
		{"root.pub of another root", sign.RootPublicFile, otherFile(sign.RootPublicFile), sign.ErrKeyMismatch},
		{"signing.pub of another key", sign.SigningPublicFile, otherFile(sign.SigningPublicFile), sign.ErrKeyMismatch},
		{"signing.key of another key", sign.SigningKeyFile, otherFile(sign.SigningKeyFile), sign.ErrKeyMismatch},
		{"certificate from another root", sign.SigningCertFile, otherFile(sign.SigningCertFile), sign.ErrKeyMismatch},
		{"no root.pub", sign.RootPublicFile, nil, os.ErrNotExist},
		{"no signing.key", sign.SigningKeyFile, nil, os.ErrNotExist},
		{"no certificate", sign.SigningCertFile, nil, os.ErrNotExist},
		{"garbled signing.key", sign.SigningKeyFile, []byte("{"), sign.ErrMalformed},
		{"garbled root.key", sign.RootKeyFile, []byte("{"), sign.ErrMalformed},
		{"garbled root.pub", sign.RootPublicFile, []byte("{"), verify.ErrMalformed},
		{"garbled certificate", sign.SigningCertFile, []byte(`{"payload_type":1}`), sign.ErrMalformed},
		{"huge certificate", sign.SigningCertFile, bytes.Repeat([]byte(" "), 1<<20), sign.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := newKeyDir(t, 1)
			path := filepath.Join(dir, tt.file)
			var err error
			if tt.data == nil {
				err = os.Remove(path)
			} else {
				err = os.WriteFile(path, tt.data, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sign.ReadKeyDir(dir); !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadKeyDir() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestKeyDirCheck(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	_, other := newKeyDir(t, 2)
	tests := []struct {
		name    string
		edit    func(kd *sign.KeyDir)
		wantErr error
	}{
		{"valid", func(*sign.KeyDir) {}, nil},
		{"cert for another key", func(kd *sign.KeyDir) { kd.Cert = other.Cert }, sign.ErrKeyMismatch},
		{"cert of the wrong type", func(kd *sign.KeyDir) { kd.Cert.PayloadType = verify.PayloadManifest }, sign.ErrMalformed},
		{"unsigned cert", func(kd *sign.KeyDir) { kd.Cert.Signatures = nil }, sign.ErrKeyMismatch},
		{"cert signed by the signing key", func(kd *sign.KeyDir) {
			kd.Cert = sign.Sign(kd.Signing, verify.PayloadSigningKey, kd.Cert.Payload)
		}, sign.ErrKeyMismatch},
		{"signing key is the root", func(kd *sign.KeyDir) { kd.Signing = kd.Root }, sign.ErrKeyMismatch},
		{"root id mismatch", func(kd *sign.KeyDir) { kd.RootPublic.ID = other.RootPublic.ID }, sign.ErrKeyMismatch},
		{"no signing key", func(kd *sign.KeyDir) { kd.Signing = sign.PrivateKey{} }, sign.ErrMalformed},
		{"no root public key", func(kd *sign.KeyDir) { kd.RootPublic = verify.PublicKey{} }, verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *kd
			tt.edit(&c)
			err := c.Check()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Check() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if werr := sign.WriteKeyDir(t.TempDir(), &c); werr == nil {
					t.Error("WriteKeyDir wrote keys that do not match")
				}
			}
		})
	}
}

func TestNewKeyDirValidity(t *testing.T) {
	if _, err := sign.NewKeyDir(seeded(1), t0, 0); !errors.Is(err, sign.ErrConfig) {
		t.Errorf("NewKeyDir(validity 0) = %v, want ErrConfig", err)
	}
}

func TestRotateKeyDir(t *testing.T) {
	dir, kd := newKeyDir(t, 1)
	ring, err := kd.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	oldBundle := bundleFor(t, kd)

	later := t0.Add(24 * time.Hour)
	rotated, oldID, err := sign.RotateKeyDir(dir, seeded(5), later, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if oldID != kd.Signing.ID || rotated.Signing.ID == kd.Signing.ID || rotated.RootPublic.ID != kd.RootPublic.ID {
		t.Fatalf("rotation: old %s new %s root %s", oldID, rotated.Signing.ID, rotated.RootPublic.ID)
	}
	for _, name := range []string{sign.SigningKeyFile, sign.SigningPublicFile, sign.SigningCertFile} {
		if _, err := os.Stat(filepath.Join(dir, name+"."+string(oldID))); err != nil {
			t.Errorf("old %s not archived: %v", name, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, sign.SigningKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new signing.key: %v, %v", st.Mode(), err)
	}
	read, err := sign.ReadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if read.Signing.ID != rotated.Signing.ID {
		t.Errorf("ReadKeyDir after rotation: signing %s, want %s", read.Signing.ID, rotated.Signing.ID)
	}
	// The same root verifies both the old release and a new one.
	newBundle := bundleFor(t, read)
	for name, b := range map[string][]byte{"old": oldBundle, "new": newBundle} {
		if _, err := ring.Open(b, later.Add(time.Hour)); err != nil {
			t.Errorf("%s release after rotation: %v", name, err)
		}
	}
	c, _ := read.KeyCert()
	if !c.Issued.Equal(later) || !c.Expires.Equal(later.Add(30*24*time.Hour)) {
		t.Errorf("new certificate valid %s..%s", c.Issued, c.Expires)
	}

	// A second rotation archives the second key beside the first.
	third, _, err := sign.RotateKeyDir(dir, seeded(6), later, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, sign.SigningKeyFile+"."+string(rotated.Signing.ID))); err != nil {
		t.Errorf("second key not archived: %v", err)
	}
	if third.Signing.ID == rotated.Signing.ID {
		t.Error("second rotation kept the key")
	}
	if _, _, err := sign.RotateKeyDir(dir, nil, later, 0); !errors.Is(err, sign.ErrConfig) {
		t.Errorf("RotateKeyDir(validity 0) = %v, want ErrConfig", err)
	}
}

// bundleFor signs the test manifest with kd's signing key and returns the
// encoded bundle.
func bundleFor(t *testing.T, kd *sign.KeyDir) []byte {
	t.Helper()
	env, err := sign.SignManifest(kd.Signing, testManifest())
	if err != nil {
		t.Fatal(err)
	}
	b, err := verify.MarshalBundle(sign.NewBundle(env, kd.Cert))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
