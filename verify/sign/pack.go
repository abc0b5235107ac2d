package sign

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/verify"
)

// DefaultExpiry is how long a packed manifest is valid when its template
// names no expiry.
const DefaultExpiry = 90 * 24 * time.Hour

const (
	// packBufferSize is the copy buffer: large reads keep the per-call
	// overhead of the file and the hashes negligible.
	packBufferSize = 1 << 20
	// progressStep is how often, in bytes, Pack reports progress.
	progressStep = 4 << 20
)

// PackConfig says what [Pack] packs and how.
type PackConfig struct {
	// In is the path of the artifact file. Required.
	In string

	// Out is the release directory to write. It must not exist (it is
	// created, with its parents) or be an empty directory. Required.
	Out string

	// Name is the artifact's file name in Out. Empty means In's base name
	// with every byte outside [A-Za-z0-9._-] replaced by '_' and a leading
	// '.' made '_'. It may not be [verify.ManifestFile].
	Name string

	// Manifest is the release's manifest; Pack fills in its Artifact
	// (anything there is replaced). A zero Schema means
	// [verify.ManifestSchema]; a zero Issued means the current time; a
	// zero Expires means Issued plus [DefaultExpiry]. The rest is checked
	// by [verify.Manifest.Validate] before any byte is copied.
	Manifest verify.Manifest

	// ChunkSize is the size of the artifact's chunks; 0 means
	// [verify.DefaultChunkSize].
	ChunkSize int64

	// Key signs the manifest. Required.
	Key PrivateKey

	// Certs are the certificates of Key, put in the bundle so that
	// terminals trusting their root accept the signature. Usually one;
	// more while terminals trust different roots.
	Certs []verify.Envelope

	// KeyRing, when set, opens the signed bundle at the manifest's issue
	// time before it is written, so a release that terminals trusting
	// these roots would refuse (a certificate from another root, one not
	// yet valid or expired) is never written. Nil means no such check.
	KeyRing *verify.KeyRing

	// NewHash makes the chunk and artifact hashes; nil means
	// [verify.NewHash].
	NewHash func() hash.Hash

	// Progress, when set, is called as the artifact is copied with the
	// bytes done and the total expected (the input's size when Pack
	// started), at most every few MiB and once at the end. It runs on
	// Pack's goroutine and should return quickly.
	Progress func(done, total int64)

	// Now returns the current time, for a zero Manifest.Issued; nil means
	// time.Now.
	Now func() time.Time
}

// Packed is a release directory Pack wrote.
type Packed struct {
	// Dir is the release directory.
	Dir string
	// Manifest is the signed manifest.
	Manifest *verify.Manifest
	// Bundle is the signed bundle, as written to Dir/manifest.json.
	Bundle []byte
}

// ArtifactPath returns the path of the artifact in the release directory.
func (p *Packed) ArtifactPath() string { return filepath.Join(p.Dir, p.Manifest.Artifact.Name) }

// Pack makes a release directory from an artifact: it copies cfg.In into
// cfg.Out, computing its chunks and digest in the same pass, fsyncs it, signs
// the manifest with cfg.Key, and writes the bundle to
// Out/manifest.json atomically ([verify.ManifestFile]). [verify.OpenReleaseDir]
// with a key ring holding the certificates' root accepts the result.
//
// If Pack fails, or ctx is cancelled (it returns ctx.Err()), it removes
// what it created: Out itself if Pack created it, else the files it wrote.
func Pack(ctx context.Context, cfg PackConfig) (_ *Packed, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := cfg.template()
	if err != nil {
		return nil, err
	}
	chunker, err := verify.NewChunker(cfg.ChunkSize, cfg.NewHash)
	if err != nil {
		return nil, configError("chunk size: %v", err)
	}
	in, err := os.Open(cfg.In)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, configError("%s is not a regular file", cfg.In)
	}
	if st.Size() > verify.MaxArtifactSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", verify.ErrTooLarge, cfg.In, st.Size(), int64(verify.MaxArtifactSize))
	}
	// Refuse now what the chunk limit would refuse after the copy.
	if cs := m.Artifact.ChunkSize; st.Size() > verify.MaxChunks*cs {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d chunks of %d: use a larger chunk size",
			verify.ErrTooLarge, cfg.In, st.Size(), verify.MaxChunks, cs)
	}

	out, err := createOut(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			out.cleanup()
		}
	}()

	artifactPath := filepath.Join(cfg.Out, m.Artifact.Name)
	f, err := os.OpenFile(artifactPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	out.files = append(out.files, artifactPath)
	err = copyArtifact(ctx, f, in, chunker, st.Size(), cfg.Progress)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if m.Artifact, err = chunker.Artifact(m.Artifact.Name); err != nil {
		return nil, err
	}

	env, err := SignManifest(cfg.Key, &m)
	if err != nil {
		return nil, err
	}
	bundle, err := verify.MarshalBundle(NewBundle(env, cfg.Certs...))
	if err != nil {
		return nil, err
	}
	if cfg.KeyRing != nil {
		if _, err := cfg.KeyRing.Open(bundle, m.Issued); err != nil {
			return nil, fmt.Errorf("sign: terminals would refuse this release: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	manifestPath := filepath.Join(cfg.Out, verify.ManifestFile)
	out.files = append(out.files, manifestPath)
	if err := durable.WriteFile(durable.OS{}, manifestPath, bundle, 0o644); err != nil {
		return nil, err
	}
	if err := out.sync(); err != nil {
		return nil, err
	}
	return &Packed{Dir: cfg.Out, Manifest: &m, Bundle: bundle}, nil
}

// template checks cfg and returns its manifest with defaults filled in and
// a placeholder artifact, validated, so that a bad flag fails before
// gigabytes are copied.
func (cfg *PackConfig) template() (verify.Manifest, error) {
	if cfg.In == "" {
		return verify.Manifest{}, configError("no input artifact")
	}
	if cfg.Out == "" {
		return verify.Manifest{}, configError("no output directory")
	}
	if err := cfg.Key.Validate(); err != nil {
		return verify.Manifest{}, fmt.Errorf("signing key: %w", err)
	}
	name := cfg.Name
	if name == "" {
		name = SanitizeName(filepath.Base(cfg.In))
	}
	if name == verify.ManifestFile {
		return verify.Manifest{}, configError("artifact name %q is the manifest's: choose another name", name)
	}
	m := cfg.Manifest
	if m.Schema == 0 {
		m.Schema = verify.ManifestSchema
	}
	if m.Issued.IsZero() {
		now := time.Now
		if cfg.Now != nil {
			now = cfg.Now
		}
		m.Issued = now().UTC().Truncate(time.Second)
	}
	if m.Expires.IsZero() {
		m.Expires = m.Issued.Add(DefaultExpiry)
	}
	chunkSize := cfg.ChunkSize
	if chunkSize == 0 {
		chunkSize = verify.DefaultChunkSize
	}
	// A placeholder artifact with the real name and chunk size: every
	// other rule of the manifest is checked now.
	m.Artifact = verify.Artifact{Name: name, Digest: verify.DigestBytes(nil), ChunkSize: chunkSize}
	if err := m.Validate(); err != nil {
		return verify.Manifest{}, err
	}
	return m, nil
}

// SanitizeName makes s a plain file name that [verify.Artifact.Validate]
// accepts: bytes outside [A-Za-z0-9._-] become '_', a leading '.' becomes
// '_', and the result is cut to 255 bytes. An empty s gives "artifact".
func SanitizeName(s string) string {
	b := []byte(s)
	if len(b) > 255 {
		b = b[:255]
	}
	for i, c := range b {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' && i > 0
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "artifact"
	}
	return string(b)
}

// copyArtifact copies in to w and the chunker, checking ctx between
// buffers and reporting progress.
func copyArtifact(ctx context.Context, w io.Writer, in io.Reader, chunker *verify.Chunker, total int64, progress func(done, total int64)) error {
	dst := io.MultiWriter(w, chunker)
	buf := make([]byte, packBufferSize)
	var done, reported int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			if progress != nil && done-reported >= progressStep {
				progress(done, max(total, done))
				reported = done
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if progress != nil && (done != reported || done == 0) {
		progress(done, max(total, done))
	}
	return nil
}

// output tracks what Pack created, to remove it on failure.
type output struct {
	dir     string
	created string   // the topmost directory Pack created, or ""
	files   []string // files Pack created in an existing dir
}

// createOut creates dir with its parents, or accepts it if it is an empty
// directory.
func createOut(dir string) (*output, error) {
	st, err := os.Stat(dir)
	switch {
	case err == nil:
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: %s", ErrOutputExists, dir)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrOutputExists, dir)
		}
		return &output{dir: dir}, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	// Find the topmost missing ancestor: that is what a failure removes.
	top := filepath.Clean(dir)
	for {
		parent := filepath.Dir(top)
		if parent == top {
			break
		}
		if _, err := os.Stat(parent); err == nil {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &output{dir: dir, created: top}, nil
}

// sync makes the directory entries durable: Out's, and those of every
// directory Pack created on the way to it.
func (o *output) sync() error {
	if err := (durable.OS{}).SyncDir(o.dir); err != nil {
		return err
	}
	if o.created == "" {
		return nil
	}
	for d := filepath.Clean(o.dir); ; d = filepath.Dir(d) {
		if err := (durable.OS{}).SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
		if d == o.created || filepath.Dir(d) == d {
			return nil
		}
	}
}

func (o *output) cleanup() {
	if o.created != "" {
		os.RemoveAll(o.created)
		return
	}
	for _, f := range o.files {
		os.Remove(f)
	}
}
