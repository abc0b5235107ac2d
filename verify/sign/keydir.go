package sign

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/verify"
)

// The files of a key directory. See the package documentation.
const (
	RootKeyFile       = "root.key"
	RootPublicFile    = "root.pub"
	SigningKeyFile    = "signing.key"
	SigningPublicFile = "signing.pub"
	SigningCertFile   = "signing.cert.json"
)

// maxCertFileSize bounds a certificate file: one small envelope.
const maxCertFileSize = 64 << 10

// KeyDir is the content of a key directory.
type KeyDir struct {
	// Root is the root private key; its Key is nil when the directory
	// holds no root.key (the root kept offline). See [KeyDir.HasRoot].
	Root PrivateKey
	// RootPublic is the root public key, the one terminals trust.
	RootPublic verify.PublicKey
	// Signing is the key that signs manifests.
	Signing PrivateKey
	// Cert is Signing's certificate, signed by the root.
	Cert verify.Envelope
}

// HasRoot reports whether kd holds the root private key.
func (kd *KeyDir) HasRoot() bool { return len(kd.Root.Key) != 0 }

// KeyCert returns the payload of kd's signing-key certificate.
func (kd *KeyDir) KeyCert() (*verify.KeyCert, error) {
	return verify.ParseKeyCert(kd.Cert.Payload)
}

// KeyRing returns a key ring trusting kd's root: what a terminal holds.
func (kd *KeyDir) KeyRing() (*verify.KeyRing, error) {
	return verify.NewKeyRing(kd.RootPublic)
}

// Check reports whether kd's keys belong together: the root private key (if
// present) is RootPublic's, and Cert is signed by the root and certifies
// Signing. It does not look at the certificate's validity period.
func (kd *KeyDir) Check() error {
	if err := kd.Signing.Validate(); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	root, err := verify.NewPublicKey(kd.RootPublic.Key)
	if err != nil {
		return fmt.Errorf("root public key: %w", err)
	}
	if root.ID != kd.RootPublic.ID {
		return fmt.Errorf("%w: root public key id %.40q is not the key's (%s)", ErrKeyMismatch, kd.RootPublic.ID, root.ID)
	}
	if kd.HasRoot() {
		if err := kd.Root.Validate(); err != nil {
			return fmt.Errorf("root key: %w", err)
		}
		if kd.Root.ID != root.ID {
			return fmt.Errorf("%w: root private key %s, root public key %s", ErrKeyMismatch, kd.Root.ID, root.ID)
		}
	}
	if root.ID == kd.Signing.ID {
		return fmt.Errorf("%w: the signing key is the root key", ErrKeyMismatch)
	}
	_, err = checkCert(kd.Cert, root, kd.Signing.ID)
	return err
}

// checkCert checks that env is a signing-key certificate for want, signed
// by root, and returns its payload.
func checkCert(env verify.Envelope, root verify.PublicKey, want verify.KeyID) (*verify.KeyCert, error) {
	if env.PayloadType != verify.PayloadSigningKey {
		return nil, malformed("certificate payload type %.80q, want %s", env.PayloadType, verify.PayloadSigningKey)
	}
	signed := false
	msg := verify.SignedBytes(env.PayloadType, env.Payload)
	for _, s := range env.Signatures {
		if s.KeyID == root.ID && ed25519.Verify(root.Key, msg, s.Sig) {
			signed = true
		}
	}
	if !signed {
		return nil, fmt.Errorf("%w: certificate carries no valid signature by root %s", ErrKeyMismatch, root.ID)
	}
	c, err := verify.ParseKeyCert(env.Payload)
	if err != nil {
		return nil, err
	}
	if c.KeyID != want {
		return nil, fmt.Errorf("%w: certificate is for key %s, signing key is %s", ErrKeyMismatch, c.KeyID, want)
	}
	return c, nil
}

// NewKeyDir generates a root key and a signing key from rand (crypto/rand
// when nil) and certifies the signing key from issued for validity.
func NewKeyDir(rand io.Reader, issued time.Time, validity time.Duration) (*KeyDir, error) {
	if validity <= 0 {
		return nil, configError("certificate validity %s", validity)
	}
	root, err := GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	signing, err := GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	cert, err := CertifyKey(root, signing.Public(), issued, issued.Add(validity))
	if err != nil {
		return nil, err
	}
	return &KeyDir{Root: root, RootPublic: root.Public(), Signing: signing, Cert: cert}, nil
}

// WriteKeyDir writes kd's files into dir, creating dir (mode 0700) if
// needed. Private keys get mode 0600. It refuses with [ErrKeyExists] if any
// of the files is already there, and removes what it wrote if it fails.
// root.key is written only when kd holds the root private key.
func WriteKeyDir(dir string, kd *KeyDir) error {
	if err := kd.Check(); err != nil {
		return err
	}
	files, err := kd.files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
			return fmt.Errorf("%w: %s", ErrKeyExists, filepath.Join(dir, f.name))
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.perm); err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			return err
		}
		written = append(written, path)
	}
	return (durable.OS{}).SyncDir(dir)
}

type keyFile struct {
	name string
	data []byte
	perm os.FileMode
}

// files encodes kd's files, root.key first when present.
func (kd *KeyDir) files() ([]keyFile, error) {
	var files []keyFile
	if kd.HasRoot() {
		b, err := MarshalPrivateKey(kd.Root)
		if err != nil {
			return nil, err
		}
		files = append(files, keyFile{RootKeyFile, b, 0o600})
	}
	rootPub, err := verify.MarshalPublicKey(kd.RootPublic)
	if err != nil {
		return nil, err
	}
	signing, err := kd.signingFiles()
	if err != nil {
		return nil, err
	}
	return append(append(files, keyFile{RootPublicFile, rootPub, 0o644}), signing...), nil
}

// signingFiles encodes signing.key, signing.pub and signing.cert.json.
func (kd *KeyDir) signingFiles() ([]keyFile, error) {
	key, err := MarshalPrivateKey(kd.Signing)
	if err != nil {
		return nil, err
	}
	pub, err := verify.MarshalPublicKey(kd.Signing.Public())
	if err != nil {
		return nil, err
	}
	cert, err := marshalIndent(kd.Cert)
	if err != nil {
		return nil, err
	}
	return []keyFile{
		{SigningKeyFile, key, 0o600},
		{SigningPublicFile, pub, 0o644},
		{SigningCertFile, cert, 0o644},
	}, nil
}

// writeNew creates path with data, failing if it exists, and fsyncs it. A
// file it could not complete is removed.
func writeNew(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrKeyExists, path)
		}
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// ReadKeyDir reads a key directory and checks that its keys belong
// together ([KeyDir.Check]). root.pub, signing.key and signing.cert.json
// are required; root.key is optional (a root kept offline); signing.pub,
// when present, must match signing.key.
func ReadKeyDir(dir string) (*KeyDir, error) {
	var kd KeyDir
	b, err := durable.ReadFile(durable.OS{}, filepath.Join(dir, RootPublicFile), 4096, ErrMalformed)
	if err != nil {
		return nil, err
	}
	if kd.RootPublic, err = verify.ParsePublicKey(b); err != nil {
		return nil, fmt.Errorf("%s: %w", RootPublicFile, err)
	}
	b, err = durable.ReadFile(durable.OS{}, filepath.Join(dir, RootKeyFile), MaxPrivateKeySize, ErrMalformed)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if kd.Root, err = ParsePrivateKey(b); err != nil {
			return nil, fmt.Errorf("%s: %w", RootKeyFile, err)
		}
	}
	if b, err = durable.ReadFile(durable.OS{}, filepath.Join(dir, SigningKeyFile), MaxPrivateKeySize, ErrMalformed); err != nil {
		return nil, err
	}
	if kd.Signing, err = ParsePrivateKey(b); err != nil {
		return nil, fmt.Errorf("%s: %w", SigningKeyFile, err)
	}
	b, err = durable.ReadFile(durable.OS{}, filepath.Join(dir, SigningPublicFile), 4096, ErrMalformed)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		pub, err := verify.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SigningPublicFile, err)
		}
		if pub.ID != kd.Signing.ID {
			return nil, fmt.Errorf("%w: %s is key %s, %s is key %s", ErrKeyMismatch,
				SigningPublicFile, pub.ID, SigningKeyFile, kd.Signing.ID)
		}
	}
	if b, err = durable.ReadFile(durable.OS{}, filepath.Join(dir, SigningCertFile), maxCertFileSize, ErrMalformed); err != nil {
		return nil, err
	}
	if err := jsonwire.Unmarshal(b, &kd.Cert); err != nil {
		return nil, malformed("%s: %v", SigningCertFile, err)
	}
	if err := kd.Check(); err != nil {
		return nil, err
	}
	return &kd, nil
}

// RotateKeyDir replaces the signing key in dir: it generates a new key from
// rand (crypto/rand when nil), has the root in dir certify it from issued
// for validity, keeps the old signing.key, signing.pub and
// signing.cert.json as <name>.<old keyid>, then replaces them. Terminals
// need no change: the new certificate chains to the same root. It returns
// the new key directory and the old signing key's ID.
//
// The directory must hold root.key ([ErrNoRootKey] otherwise). Each file is
// replaced atomically; if RotateKeyDir is interrupted between files,
// [ReadKeyDir] reports the mismatch and the old files are in the archive.
func RotateKeyDir(dir string, rand io.Reader, issued time.Time, validity time.Duration) (*KeyDir, verify.KeyID, error) {
	if validity <= 0 {
		return nil, "", configError("certificate validity %s", validity)
	}
	old, err := ReadKeyDir(dir)
	if err != nil {
		return nil, "", err
	}
	if !old.HasRoot() {
		return nil, "", fmt.Errorf("%w: %s", ErrNoRootKey, filepath.Join(dir, RootKeyFile))
	}
	signing, err := GenerateKey(rand)
	if err != nil {
		return nil, "", err
	}
	cert, err := CertifyKey(old.Root, signing.Public(), issued, issued.Add(validity))
	if err != nil {
		return nil, "", err
	}
	kd := &KeyDir{Root: old.Root, RootPublic: old.RootPublic, Signing: signing, Cert: cert}
	if err := kd.Check(); err != nil {
		return nil, "", err
	}
	oldFiles, err := old.signingFiles()
	if err != nil {
		return nil, "", err
	}
	newFiles, err := kd.signingFiles()
	if err != nil {
		return nil, "", err
	}
	// Archive first, so that the old key survives whatever happens next.
	for _, f := range oldFiles {
		path := filepath.Join(dir, f.name+"."+string(old.Signing.ID))
		err := writeNew(path, f.data, f.perm)
		if errors.Is(err, ErrKeyExists) {
			// Left by an interrupted rotation: fine if it is the same file.
			if have, rerr := durable.ReadFile(durable.OS{}, path, maxCertFileSize, ErrMalformed); rerr == nil && bytes.Equal(have, f.data) {
				continue
			}
		}
		if err != nil {
			return nil, "", err
		}
	}
	if err := (durable.OS{}).SyncDir(dir); err != nil {
		return nil, "", err
	}
	for _, f := range newFiles {
		if err := durable.WriteFile(durable.OS{}, filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return nil, "", err
		}
	}
	return kd, old.Signing.ID, nil
}
