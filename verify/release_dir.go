package verify

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/durable"
)

// ManifestFile is the name of the signed bundle in a release directory.
const ManifestFile = "manifest.json"

// ReleaseDir is a release directory, as `release pack` writes it: the
// signed bundle in [ManifestFile] and the artifact beside it under the name
// the manifest gives.
type ReleaseDir struct {
	Dir      string
	Bundle   []byte    // the raw signed bundle
	Manifest *Manifest // verified
}

// ArtifactPath returns the path of the artifact file.
func (r *ReleaseDir) ArtifactPath() string {
	return filepath.Join(r.Dir, r.Manifest.Artifact.Name)
}

// OpenReleaseDir verifies a release directory at time now: the bundle's
// signatures and expiry, then every chunk of the artifact on disk (with
// newHash, or [NewHash] when nil). It is the same verification a download
// gets, for packages that arrive on local storage.
//
// The bundle and the artifact must be regular files; anything else there
// (a named pipe, a device, a directory) is [ErrMalformed], refused without
// ever being opened in a way that could block. Symlinks to regular files
// are followed: a release copied onto a USB stick or unpacked by a tool may
// hold them, and following one cannot weaken the check, since what it
// points to is verified like any file.
func OpenReleaseDir(ctx context.Context, dir string, ring *KeyRing, now time.Time, newHash func() hash.Hash) (*ReleaseDir, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bundle, err := durable.ReadFile(durable.OS{}, filepath.Join(dir, ManifestFile), MaxBundleSize, ErrTooLarge)
	if err != nil {
		return nil, releaseFileError(err)
	}
	m, err := ring.Open(bundle, now)
	if err != nil {
		return nil, err
	}
	r := &ReleaseDir{Dir: dir, Bundle: bundle, Manifest: m}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := durable.Open(durable.OS{}, r.ArtifactPath())
	if err != nil {
		return nil, releaseFileError(err)
	}
	defer f.Close()
	if err := VerifyChunks(ctx, f, &m.Artifact, newHash); err != nil {
		return nil, err
	}
	return r, nil
}

// releaseFileError makes a file of a release directory that is not a
// regular file [ErrMalformed]; other errors pass through (a missing file
// matches fs.ErrNotExist).
func releaseFileError(err error) error {
	var nr *durable.NotRegularError
	if errors.As(err, &nr) {
		return malformed("%s is a %s, not a regular file", nr.Path, nr.Kind)
	}
	return err
}

// VerifyChunks reads r from its start and checks every chunk of a, and that
// r holds nothing beyond a.Size. The first bad chunk is reported as a
// [*DigestMismatchError]; a short file as [ErrMalformed].
func VerifyChunks(ctx context.Context, r io.Reader, a *Artifact, newHash func() hash.Hash) error {
	d := NewDigester(newHash)
	buf := make([]byte, readBufferSize)
	for i, c := range a.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.Reset()
		n, err := io.CopyBuffer(d, io.LimitReader(onlyReader{r}, c.Size), buf)
		if err != nil {
			return err
		}
		if n != c.Size {
			return malformed("artifact is %d bytes, want %d", c.Offset+n, a.Size)
		}
		if got := d.Digest(); got != c.Digest {
			return &DigestMismatchError{What: "chunk", Index: i, Offset: c.Offset, Want: c.Digest, Got: got}
		}
	}
	if n, _ := io.ReadFull(r, buf[:1]); n != 0 {
		return fmt.Errorf("%w: artifact is longer than the %d bytes announced", ErrTooLarge, a.Size)
	}
	return nil
}
