package sign

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/verify"
	"golang.org/x/sync/errgroup"
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
	// writebackStep is how often, in bytes, the copy asks the kernel to
	// start writing what it wrote to the device.
	writebackStep = 8 << 20
	// packMemory bounds the copy's buffers: with many workers or large
	// chunks, fewer buffers, never fewer than two (two of the largest
	// chunks fit).
	packMemory = 128 << 20
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
	// [verify.NewHash]. It is called from several goroutines at once.
	NewHash func() hash.Hash

	// Workers is how many goroutines hash chunks while the artifact is
	// copied; 0 means runtime.GOMAXPROCS(0). Two more goroutines write the
	// copy and hash the whole artifact, while Pack's reads it. The result
	// does not depend on it. Pack's memory grows with it: 8 buffers per
	// worker, of about 1 MiB (one chunk, when chunks are larger), never
	// more than 128 MiB in all.
	Workers int

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
// cfg.Out, computing its digest and chunks as it goes (the chunks
// [verify.Chunker] gives, hashed on cfg.Workers goroutines), and fsyncs it;
// then it signs the manifest with cfg.Key and writes the bundle to
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
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	newHash := cfg.NewHash
	if newHash == nil {
		newHash = verify.NewHash
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
	c := &copier{
		chunkSize: m.Artifact.ChunkSize,
		newHash:   newHash,
		workers:   workers,
		// The file may grow while it is copied: these limits hold anyway.
		limit:    min(int64(verify.MaxArtifactSize), verify.MaxChunks*m.Artifact.ChunkSize),
		total:    st.Size(),
		progress: cfg.Progress,
		// Flush as the copy goes: the fsync below then waits for the tail
		// only, not for the whole artifact after the hashing.
		writeback: func(off, n int64) { durable.StartWriteback(f, off, n) },
	}
	a, err := c.copyArtifact(ctx, f, in)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	a.Name = m.Artifact.Name
	if err := a.Validate(); err != nil {
		return nil, err
	}
	m.Artifact = a

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
	if cfg.Workers < 0 {
		return verify.Manifest{}, configError("%d workers", cfg.Workers)
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

// copier copies an artifact into a release directory.
type copier struct {
	chunkSize int64            // valid
	newHash   func() hash.Hash // not nil
	workers   int              // > 0
	// limit is the most bytes it copies: more is an [verify.ErrTooLarge].
	limit    int64
	total    int64                   // the size expected, for progress
	progress func(done, total int64) // nil for none
	// writeback, when set, is called as the copy goes with ranges of
	// written bytes, at least writebackStep long, to start flushing them.
	writeback func(off, n int64)
}

// pool returns the size and number of copyArtifact's buffers, and how
// many workers to start. Buffers hold whole chunks, about packBufferSize
// (or one chunk when larger); there are enough of them that the consumers
// rarely wait for each other, but fewer, down to two, when they would take
// more than packMemory. Workers that would find no buffer to hash are not
// started.
func (c *copier) pool() (bufSize, n int64, workers int) {
	bufSize = max(1, packBufferSize/c.chunkSize) * c.chunkSize
	n = min(8*int64(c.workers), max(2, packMemory/bufSize))
	return bufSize, n, int(min(int64(c.workers), n))
}

// copyArtifact copies in to w and describes what it copied: its size,
// digest and chunks of c.chunkSize bytes, exactly as [verify.Chunker]
// would, but hashing on several cores.
//
// The calling goroutine reads in, in order, into buffers of whole chunks
// (but for the artifact's last) taken from a fixed pool. Each buffer goes to
// three consumers at once: a goroutine writing to w in order (and calling
// c.writeback every writebackStep bytes), one feeding the artifact's hash in
// order (inherently sequential), and whichever of the workers is free,
// which hashes the buffer's chunks. The last consumer done with a buffer
// returns it to the pool, so memory is the pool's whatever the artifact's
// size, and the reads wait for the slowest consumer. ctx is checked between
// buffers; progress is reported, on the calling goroutine, as buffers are
// read.
func (c *copier) copyArtifact(ctx context.Context, w io.Writer, in io.Reader) (verify.Artifact, error) {
	bufSize, nbuf, workers := c.pool()

	g, gctx := errgroup.WithContext(ctx)
	free := make(chan *packBuf, nbuf)
	for range nbuf {
		free <- &packBuf{data: make([]byte, bufSize)}
	}
	// consume starts a goroutine running f on every buffer received from
	// ch, then releasing it; after a failure, or once ctx is cancelled, it
	// only releases them. No send on ch blocks: it has room for every
	// buffer, as the pool has.
	consume := func(ch <-chan *packBuf, f func(b *packBuf) error) {
		g.Go(func() error {
			var err error
			for b := range ch {
				if err == nil && gctx.Err() == nil {
					err = f(b)
				}
				if b.refs.Add(-1) == 0 {
					free <- b
				}
			}
			return err
		})
	}
	writes, hashes, jobs := make(chan *packBuf, nbuf), make(chan *packBuf, nbuf), make(chan *packBuf, nbuf)
	var flushed int64 // how far writeback was asked for
	consume(writes, func(b *packBuf) error {
		if _, err := w.Write(b.data); err != nil {
			return err
		}
		if end := b.off + int64(len(b.data)); c.writeback != nil && end-flushed >= writebackStep {
			c.writeback(flushed, end-flushed)
			flushed = end
		}
		return nil
	})
	whole := verify.NewDigester(c.newHash)
	consume(hashes, func(b *packBuf) error { whole.Write(b.data); return nil })
	for range workers {
		h := c.newHash()
		consume(jobs, func(b *packBuf) error { hashChunks(h, b); return nil })
	}
	consumers := []chan<- *packBuf{writes, hashes, jobs}

	var parts [][]verify.Chunk // the chunks of each buffer, in order
	var done, reported int64
	rerr := func() error {
		defer func() {
			for _, ch := range consumers {
				close(ch)
			}
		}()
		for {
			var b *packBuf
			select {
			case b = <-free:
			case <-gctx.Done():
				return gctx.Err()
			}
			if err := gctx.Err(); err != nil {
				return err
			}
			n, err := io.ReadFull(in, b.data[:bufSize])
			if n == 0 {
				free <- b
			} else {
				if done+int64(n) > c.limit {
					return fmt.Errorf("%w: the artifact grew past %d bytes while being copied", verify.ErrTooLarge, c.limit)
				}
				b.fill(n, done, c.chunkSize)
				parts = append(parts, b.chunks)
				b.refs.Store(int32(len(consumers)))
				for _, ch := range consumers {
					ch <- b
				}
				done += int64(n)
				if c.progress != nil && done-reported >= progressStep {
					c.progress(done, max(c.total, done))
					reported = done
				}
			}
			switch err {
			case nil:
			case io.EOF, io.ErrUnexpectedEOF:
				return nil
			default:
				return err
			}
		}
	}()
	// A consumer's failure (a write's) is the cause of anything that
	// stopped the reads; then comes the caller's cancellation.
	if err := g.Wait(); err != nil {
		return verify.Artifact{}, err
	}
	if err := ctx.Err(); err != nil {
		return verify.Artifact{}, err
	}
	if rerr != nil {
		return verify.Artifact{}, rerr
	}
	if c.progress != nil && (done != reported || done == 0) {
		c.progress(done, max(c.total, done))
	}
	a := verify.Artifact{Size: whole.Size(), Digest: whole.Digest(), ChunkSize: c.chunkSize}
	if len(parts) > 0 { // an empty artifact has nil chunks, as the Chunker gives
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		a.Chunks = make([]verify.Chunk, 0, n)
		for _, p := range parts {
			a.Chunks = append(a.Chunks, p...)
		}
	}
	return a, nil
}

// packBuf is a buffer of copyArtifact's pool, and what it holds.
type packBuf struct {
	data   []byte         // whole chunks but for the artifact's last
	off    int64          // data's offset in the artifact
	chunks []verify.Chunk // data's chunks, whose digests a worker fills in
	refs   atomic.Int32   // consumers yet to finish with it
}

// fill sets b to hold the n bytes read into it, at offset off in the
// artifact, and lists their chunks, without digests.
func (b *packBuf) fill(n int, off, chunkSize int64) {
	b.data, b.off = b.data[:n], off
	b.chunks = make([]verify.Chunk, (int64(n)+chunkSize-1)/chunkSize)
	for i := range b.chunks {
		at := int64(i) * chunkSize
		b.chunks[i] = verify.Chunk{Offset: off + at, Size: min(chunkSize, int64(n)-at)}
	}
}

// hashChunks fills in the digests of b's chunks, using h.
func hashChunks(h hash.Hash, b *packBuf) {
	sum := make([]byte, 0, h.Size())
	for i := range b.chunks {
		c := &b.chunks[i]
		h.Reset()
		h.Write(b.data[c.Offset-b.off:][:c.Size])
		c.Digest = verify.NewDigest(h.Sum(sum))
	}
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
