package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/verify/sign"
)

// defaultCertValidity is how long a signing key's certificate lasts unless
// told otherwise: long enough to outlive a release cycle, short enough that
// a forgotten key dies on its own.
const defaultCertValidity = 2 * 365 * 24 * time.Hour

func keygen(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "keygen", "-dir KEYS [-cert-validity 730d]",
		"Creates KEYS with root.key, root.pub, signing.key, signing.pub and\n"+
			"signing.cert.json. Move root.key offline afterwards; install root.pub\n"+
			"on terminals. Existing keys are never overwritten.\n")
	dir := fs.String("dir", "", "the key directory to create (required)")
	validity := &durationFlag{defaultCertValidity}
	fs.Var(validity, "cert-validity", "how long the signing key's certificate is valid")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	if err := requireFlags([2]string{"dir", *dir}); err != nil {
		return err
	}
	now := e.clock()
	kd, err := sign.NewKeyDir(e.rand, now, validity.d)
	if err != nil {
		return err
	}
	if err := sign.WriteKeyDir(*dir, kd); err != nil {
		return err
	}
	c, err := kd.KeyCert()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "root key     %s\n", kd.Root.ID)
	fmt.Fprintf(e.stdout, "signing key  %s, certified until %s\n", kd.Signing.ID, formatTime(c.Expires))
	fmt.Fprintf(e.stdout, "wrote        %s\n", *dir)
	for _, f := range []struct{ name, what string }{
		{sign.RootKeyFile, "root private key: keep it offline, certify needs it"},
		{sign.RootPublicFile, "root public key: install it on terminals"},
		{sign.SigningKeyFile, "signing private key: pack needs it"},
		{sign.SigningPublicFile, "signing public key"},
		{sign.SigningCertFile, "the signing key's certificate"},
	} {
		fmt.Fprintf(e.stdout, "  %-18s %s\n", f.name, f.what)
	}
	return nil
}

func certify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "certify", "-keys KEYS [-validity 730d]",
		"Rotates the signing key in KEYS: a new signing.key, signing.pub and\n"+
			"signing.cert.json, certified by KEYS/root.key. The old files are kept\n"+
			"with the old key's ID appended. Terminals need no change.\n")
	keys := fs.String("keys", "", "the key directory, holding root.key (required)")
	validity := &durationFlag{defaultCertValidity}
	fs.Var(validity, "validity", "how long the new signing key's certificate is valid")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	if err := requireFlags([2]string{"keys", *keys}); err != nil {
		return err
	}
	kd, oldID, err := sign.RotateKeyDir(*keys, e.rand, e.clock(), validity.d)
	if err != nil {
		return err
	}
	c, err := kd.KeyCert()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signing key  %s, certified until %s\n", kd.Signing.ID, formatTime(c.Expires))
	fmt.Fprintf(e.stdout, "old key      %s, kept as %s.%s (and .pub, .cert.json)\n",
		oldID, filepath.Join(*keys, sign.SigningKeyFile), oldID)
	fmt.Fprintf(e.stdout, "             releases it signed verify until its certificate expires\n")
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
