package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

func verifyCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify", "-keys KEYS DIR",
		"Verifies the release directory DIR as a terminal does, trusting only\n"+
			"KEYS/root.pub: the bundle's signatures, the signing key's certificate,\n"+
			"the manifest's expiry, and every chunk of the artifact.\n")
	keys := fs.String("keys", "", "the key directory, or its root.pub file (required)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := requireFlags([2]string{"keys", *keys}); err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one release directory, got %d arguments", len(pos))
	}
	dir := pos[0]
	root, err := readRootPublic(*keys)
	if err != nil {
		return err
	}
	ring, err := verify.NewKeyRing(root)
	if err != nil {
		return err
	}
	r, err := verify.OpenReleaseDir(ctx, dir, ring, e.clock(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	m := r.Manifest
	a := m.Artifact
	fmt.Fprintf(e.stdout, "ok         %s\n", m.ID())
	fmt.Fprintf(e.stdout, "kind       %s\n", m.Kind)
	fmt.Fprintf(e.stdout, "models     %s\n", listOrAny(m.Models, ", "))
	fmt.Fprintf(e.stdout, "hardware   %s\n", listOrAny(m.HardwareRevisions, ", "))
	fmt.Fprintf(e.stdout, "from       %s\n", listOrAny(m.From, "; "))
	if m.Category != "" {
		fmt.Fprintf(e.stdout, "category   %s\n", m.Category)
	}
	if len(m.Requires) > 0 {
		fmt.Fprintf(e.stdout, "requires   %s\n", requirements(m.Requires))
	}
	if m.Floor != "" {
		fmt.Fprintf(e.stdout, "floor      %s\n", m.Floor)
	}
	if m.Downgrade {
		fmt.Fprintf(e.stdout, "downgrade  allowed\n")
	}
	fmt.Fprintf(e.stdout, "size       %d bytes in %d chunks\n", a.Size, len(a.Chunks))
	fmt.Fprintf(e.stdout, "artifact   %s\n", r.ArtifactPath())
	fmt.Fprintf(e.stdout, "digest     %s\n", a.Digest)
	fmt.Fprintf(e.stdout, "issued     %s\n", formatTime(m.Issued))
	fmt.Fprintf(e.stdout, "expires    %s\n", formatTime(m.Expires))
	return nil
}

// readRootPublic reads root.pub from the key directory keys, or keys itself
// when it is a file.
func readRootPublic(keys string) (verify.PublicKey, error) {
	path := keys
	if st, err := os.Stat(keys); err == nil && st.IsDir() {
		path = filepath.Join(keys, sign.RootPublicFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return verify.PublicKey{}, err
	}
	defer f.Close()
	// A public key file is small; read one byte past the limit so
	// ParsePublicKey reports an oversized file rather than a cut one.
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return verify.PublicKey{}, err
	}
	k, err := verify.ParsePublicKey(b)
	if err != nil {
		return verify.PublicKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func listOrAny(items []string, sep string) string {
	if len(items) == 0 {
		return "any"
	}
	return strings.Join(items, sep)
}
