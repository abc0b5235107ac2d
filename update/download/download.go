package download

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// Defaults for zero Config fields.
const (
	DefaultParallel      = 4
	DefaultSegmentSize   = 16 << 20
	DefaultChunkAttempts = 3
	DefaultRetries       = 4
	// The backoff between attempts of a segment on one mirror.
	DefaultRetryWait    = time.Second
	DefaultMaxRetryWait = 30 * time.Second
	// MaxParallel bounds Parallel.
	MaxParallel = 64
)

// Source fetches bytes of an artifact; a transport.Client is one. The
// reader it returns should implement transport.ArtifactBody.
type Source interface {
	OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error)
}

// Config says what to fetch, where to, and how. Source and Artifact are
// required, and Path unless Discard.
type Config struct {
	Source Source
	// Mirrors lists where the artifact is, in the order to try them:
	// absolute URLs, or "" for the Source's own default (the update
	// server's artifact path). Nil means just "".
	Mirrors []string
	// Artifact is the signed chunk list: what the bytes must be.
	Artifact *verify.Artifact
	// Path is where the verified artifact is put; Path+".partial" holds it
	// meanwhile.
	Path string
	// FS is the filesystem Path is on; nil means durable.OS.
	FS durable.FS
	// Discard verifies the bytes without keeping them: to measure the
	// engine, or to check that a mirror serves the release.
	Discard bool
	// Buffered writes through the page cache. By default, on Linux and
	// where the filesystem allows it, whole aligned pieces are written
	// with O_DIRECT: a large download then neither evicts the payment
	// app's cached pages nor leaves the final fsync a file's worth of
	// dirty pages to write, and it costs less CPU. Either way the file is
	// fsynced before Fetch returns.
	Buffered bool
	// Parallel is how many requests run at once; 0 means DefaultParallel.
	Parallel int
	// SegmentSize is how many bytes one request asks for, rounded to whole
	// chunks; 0 means DefaultSegmentSize.
	SegmentSize int64
	// ChunkAttempts is how often a chunk whose hash differs is fetched
	// before the download fails; 0 means DefaultChunkAttempts.
	ChunkAttempts int
	// Retries is how often a segment is tried again on one mirror after a
	// network or server error before the next mirror is tried; 0 means
	// DefaultRetries.
	Retries int
	// RetryWait and MaxRetryWait bound the jittered exponential wait
	// between those tries; a server's Retry-After is obeyed instead. 0
	// means DefaultRetryWait and DefaultMaxRetryWait.
	RetryWait, MaxRetryWait time.Duration
	// RateLimit caps the bandwidth in bytes per second; 0 means none.
	RateLimit int64
	// Allow, if set, is asked before each chunk whether downloading may go
	// on (a metered link, a large payload off Wi-Fi). An error pauses the
	// download: Fetch returns a *PausedError wrapping it, keeping what was
	// fetched. It is called often and must be quick.
	Allow func(ctx context.Context) error
	// Progress, if set, is called a few times a second and once at the
	// end, from a goroutine of Fetch's. It must not block.
	Progress func(Progress)
	// NewHash returns the chunk hash; nil means verify.NewHash.
	NewHash func() hash.Hash
	// Logger receives retries and failovers; nil discards.
	Logger *slog.Logger
}

// Progress is how far a download is.
type Progress struct {
	Done       int64 // bytes verified, those found on disk included
	Total      int64
	Chunks     int // chunks verified
	ChunkTotal int
	Fetched    int64         // bytes received from the network by this Fetch
	Rate       float64       // bytes per second, recently
	ETA        time.Duration // -1 while unknown
}

// Result is what a Fetch did.
type Result struct {
	Path     string // the verified artifact; empty with Discard
	Size     int64
	Reused   int64 // bytes found verified on disk
	Fetched  int64 // bytes received from the network, wasted ones included
	Requests int
	Direct   int64 // bytes written with O_DIRECT, past the page cache
}

// errSequential says a server ignores Range: the rest is read as one stream.
var errSequential = errors.New("download: the server ignores Range")

// errRetryChunk says a chunk failed verification with attempts left.
var errRetryChunk = errors.New("download: chunk failed verification")

type engine struct {
	cfg Config
	a   *verify.Artifact
	fs  durable.FS
	f   durable.File // nil with Discard
	// direct is the partial file opened again with O_DIRECT, or nil;
	// directOff turns it off when the filesystem refuses such writes.
	direct    *os.File
	directOff atomic.Bool
	directN   atomic.Int64
	mirrors   []string

	have     []atomic.Bool
	failures []atomic.Int32 // verification failures per chunk
	// prefix holds, per chunk, the bytes a killed run had already written
	// (from the resume file), which a restart need not fetch again.
	prefix   []int64
	resume   *resumeFile // nil with Discard
	done     atomic.Int64
	chunks   atomic.Int64
	fetched  atomic.Int64
	requests atomic.Int64

	mu     sync.Mutex
	mirror int               // the mirror in use; earlier ones failed
	etags  map[string]string // first ETag each mirror served

	limit *limiter
	log   *slog.Logger
}

// Fetch downloads cfg.Artifact to cfg.Path and returns when every chunk is
// verified and the file synced and in place, or with the error that
// stopped it: ctx.Err() when ctx is done, a *PausedError, a *CorruptError,
// a *DiskFullError, ErrChanged, or the last network or server error once
// every mirror failed. Whatever was verified stays in the partial file
// for the next Fetch.
func Fetch(ctx context.Context, cfg Config) (*Result, error) {
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Size: e.a.Size}
	final, partial := cfg.Path, cfg.Path+".partial"
	if !cfg.Discard {
		if ok, err := e.alreadyThere(ctx, final); err != nil || ok {
			if ok {
				res.Path, res.Reused = final, e.a.Size
				e.report(e.progress(0, time.Now()))
			}
			return res, err
		}
		if e.f, err = e.fs.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return nil, err
		}
		defer func() {
			if e.f != nil {
				e.f.Close()
			}
		}()
		if !cfg.Buffered {
			if e.direct = openDirect(e.fs, partial); e.direct != nil {
				defer e.direct.Close()
			}
		}
		if err := e.prepare(ctx); err != nil {
			return res, err
		}
		if e.resume, err = openResume(e.fs, partial+".resume", e.a); err != nil {
			return res, err
		}
		defer func() {
			if e.resume != nil {
				e.resume.close()
			}
		}()
		e.prefix = e.resume.prefixes(e.have)
	}
	res.Reused = e.done.Load()

	err = e.run(ctx)
	res.Fetched, res.Requests, res.Direct = e.fetched.Load(), int(e.requests.Load()), e.directN.Load()
	if err != nil {
		if e.f != nil {
			// Keep what verified for the next Fetch, even across a power cut.
			e.f.Sync()
		}
		return res, err
	}
	if cfg.Discard {
		return res, nil
	}
	if err := e.f.Sync(); err != nil {
		return res, err
	}
	if err := e.f.Close(); err != nil {
		return res, err
	}
	e.f = nil
	if err := durable.Rename(e.fs, partial, final); err != nil {
		return res, err
	}
	e.resume.close()
	e.resume = nil
	e.fs.Remove(partial + ".resume")
	res.Path = final
	return res, nil
}

func newEngine(cfg Config) (*engine, error) {
	switch {
	case cfg.Source == nil:
		return nil, errors.New("download: Config.Source is required")
	case cfg.Artifact == nil:
		return nil, errors.New("download: Config.Artifact is required")
	case cfg.Path == "" && !cfg.Discard:
		return nil, errors.New("download: Config.Path is required")
	case cfg.Parallel < 0 || cfg.Parallel > MaxParallel || cfg.SegmentSize < 0 || cfg.ChunkAttempts < 0 ||
		cfg.Retries < 0 || cfg.RateLimit < 0 || cfg.RetryWait < 0 || cfg.MaxRetryWait < 0:
		return nil, fmt.Errorf("download: invalid config: limits out of range")
	}
	if err := cfg.Artifact.Validate(); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.Parallel, DefaultParallel)
	def(&cfg.ChunkAttempts, DefaultChunkAttempts)
	def(&cfg.Retries, DefaultRetries)
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = DefaultRetryWait
	}
	if cfg.MaxRetryWait == 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.NewHash == nil {
		cfg.NewHash = verify.NewHash
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &engine{
		cfg: cfg, a: cfg.Artifact, fs: durable.Or(cfg.FS), mirrors: cfg.Mirrors, log: cfg.Logger,
		have: make([]atomic.Bool, len(cfg.Artifact.Chunks)), failures: make([]atomic.Int32, len(cfg.Artifact.Chunks)),
		etags: map[string]string{},
	}
	if len(e.mirrors) == 0 {
		e.mirrors = []string{""}
	}
	if cfg.RateLimit > 0 {
		e.limit = newLimiter(cfg.RateLimit)
	}
	return e, nil
}

// alreadyThere reports whether path already holds the verified artifact
// (a Fetch that finished before a restart).
func (e *engine) alreadyThere(ctx context.Context, path string) (bool, error) {
	f, err := durable.OpenNoFollow(e.fs, path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != e.a.Size {
		return false, nil
	}
	have := make([]atomic.Bool, len(e.a.Chunks))
	if err := e.verifyOnDisk(ctx, f, have); err != nil {
		return false, err
	}
	for i := range have {
		if !have[i].Load() {
			e.log.Warn("download: the artifact on disk no longer verifies; fetching it again", "path", path, "chunk", i)
			return false, nil
		}
	}
	e.done.Store(e.a.Size)
	e.chunks.Store(int64(len(e.a.Chunks)))
	return true, nil
}

// prepare finds what the partial file already holds and reserves room for
// the rest.
func (e *engine) prepare(ctx context.Context) error {
	fi, err := e.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > 0 {
		if err := e.verifyOnDisk(ctx, e.f, e.have); err != nil {
			return err
		}
		for i := range e.have {
			if e.have[i].Load() {
				e.done.Add(e.a.Chunks[i].Size)
				e.chunks.Add(1)
			}
		}
	}
	switch {
	case fi.Size() > e.a.Size:
		err = e.f.Truncate(e.a.Size)
	case fi.Size() < e.a.Size || e.a.Size > 0:
		err = allocate(e.f, e.a.Size)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return &DiskFullError{Path: e.cfg.Path, Need: e.a.Size, Err: err}
		}
		return err
	}
	return nil
}

// verifyOnDisk hashes every chunk of f that is there, in parallel, and
// marks those that match.
func (e *engine) verifyOnDisk(ctx context.Context, f durable.File, have []atomic.Bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	g, ctx := errgroup.WithContext(ctx)
	next := atomic.Int64{}
	for range min(e.cfg.Parallel, max(1, len(e.a.Chunks))) {
		g.Go(func() error {
			buf := make([]byte, maxChunk(e.a))
			h := e.cfg.NewHash()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(e.a.Chunks) {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				c := e.a.Chunks[i]
				if c.Offset+c.Size > size {
					continue
				}
				b := buf[:c.Size]
				if _, err := f.ReadAt(b, c.Offset); err != nil && !(errors.Is(err, io.EOF) && c.Offset+c.Size == size) {
					return err
				}
				h.Reset()
				h.Write(b)
				have[i].Store(verify.NewDigest(h.Sum(nil)) == c.Digest)
			}
		})
	}
	return g.Wait()
}

// segment is a run of chunks [first, end) fetched with one request.
type segment struct{ first, end int }

// segments cuts the missing chunks into runs of at most SegmentSize bytes.
func (e *engine) segments() []segment {
	var segs []segment
	for i := 0; i < len(e.a.Chunks); {
		if e.have[i].Load() {
			i++
			continue
		}
		j, bytes := i, int64(0)
		for j < len(e.a.Chunks) && !e.have[j].Load() && (j == i || bytes+e.a.Chunks[j].Size <= e.cfg.SegmentSize && e.prefixOf(j) == 0) {
			bytes += e.a.Chunks[j].Size
			j++
		}
		segs = append(segs, segment{i, j})
		i = j
	}
	return segs
}

// run fetches every missing chunk.
func (e *engine) run(ctx context.Context) error {
	stop := make(chan struct{})
	reported := make(chan struct{})
	go e.reporter(stop, reported)
	defer func() {
		close(stop)
		<-reported
	}()

	segs := e.segments()
	if len(segs) == 0 {
		return nil
	}
	err := e.parallel(ctx, segs)
	if errors.Is(err, errSequential) && ctx.Err() == nil {
		e.log.Info("download: the server ignores Range; reading the artifact as one stream")
		err = e.sequential(ctx)
	}
	return err
}

func (e *engine) parallel(ctx context.Context, segs []segment) error {
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan segment)
	g.Go(func() error {
		defer close(queue)
		for _, s := range segs {
			select {
			case queue <- s:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for w := range min(e.cfg.Parallel, len(segs)) {
		g.Go(func() error {
			wk := e.newWorker(w)
			for s := range queue {
				if err := e.segment(gctx, s, wk); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// segment fetches the missing chunks of s, retrying and failing over.
func (e *engine) segment(ctx context.Context, s segment, wk *worker) error {
	tries := 0
	for {
		first := s.first
		for first < s.end && e.have[first].Load() {
			first++
		}
		if first == s.end {
			return nil
		}
		m := e.currentMirror()
		last := e.a.Chunks[s.end-1]
		start := e.a.Chunks[first].Offset + e.prefixOf(first)
		err := e.stream(ctx, m, start, last.Offset+last.Size-start, first, s.end, wk, false)
		switch {
		case err == nil:
			if e.f != nil && e.direct == nil {
				// Start flushing the segment now, so the Sync at the end
				// waits for the last segments only.
				head := e.a.Chunks[s.first].Offset
				durable.StartWriteback(e.f, head, last.Offset+last.Size-head)
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errRetryChunk):
			continue // fetch that chunk again at once
		case errors.Is(err, errSequential), isFinal(err):
			return err
		}
		tries++
		if tries > e.cfg.Retries || errors.Is(err, ErrChanged) || errors.Is(err, transport.ErrRange) ||
			errors.Is(err, transport.ErrNotFound) {
			if !e.failMirror(m, err) {
				return err
			}
			tries = 0
			continue
		}
		if err := e.wait(ctx, tries, err); err != nil {
			return err
		}
	}
}

// sequential reads the whole artifact as one stream, for servers that
// ignore Range: chunks already verified are read past, not written.
func (e *engine) sequential(ctx context.Context) error {
	// One stream from the start: the prefixes kept are of no use here.
	for i := range e.prefix {
		e.prefix[i] = 0
	}
	wk := e.newWorker(0)
	tries := 0
	for {
		m := e.currentMirror()
		err := e.stream(ctx, m, 0, -1, 0, len(e.a.Chunks), wk, true)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errRetryChunk):
			continue
		case isFinal(err):
			return err
		}
		tries++
		if tries > e.cfg.Retries || errors.Is(err, ErrChanged) || errors.Is(err, transport.ErrNotFound) {
			if !e.failMirror(m, err) {
				return err
			}
			tries = 0
			continue
		}
		if err := e.wait(ctx, tries, err); err != nil {
			return err
		}
	}
}

// pieceSize is how much a worker reads, hashes and writes at a time: the
// unit of progress a kill can lose.
const pieceSize = 256 << 10

// worker is one connection's buffer and its slot in the resume file.
type worker struct {
	id  int
	buf []byte
	h   hash.Hash
}

func (e *engine) newWorker(id int) *worker {
	return &worker{id: id, buf: alignedBuffer(int(min(maxChunk(e.a), pieceSize))), h: e.cfg.NewHash()}
}

func (e *engine) prefixOf(i int) int64 {
	if e.prefix == nil {
		return 0
	}
	return e.prefix[i]
}

// stream fetches length bytes from offset off of mirror m and processes
// chunks [first, end) from them; off may fall inside chunk first, after
// the prefix a killed run kept. whole says the whole artifact is asked
// for, without Range.
func (e *engine) stream(ctx context.Context, m string, off, length int64, first, end int, wk *worker, whole bool) error {
	e.mu.Lock()
	etag := e.etags[m]
	e.mu.Unlock()
	req := transport.ArtifactRequest{Digest: string(e.a.Digest), URL: m, Offset: off, Length: length}
	if !whole {
		req.IfRange = etag
	}
	e.requests.Add(1)
	body, err := e.cfg.Source.OpenArtifact(ctx, req)
	if err != nil {
		return err
	}
	defer body.Close()
	if ab, ok := body.(transport.ArtifactBody); ok {
		switch {
		case etag != "" && ab.ETag() != "" && ab.ETag() != etag:
			return fmt.Errorf("%w: mirror %q now serves ETag %s, not %s", ErrChanged, m, ab.ETag(), etag)
		case ab.Whole() && !whole:
			return errSequential
		}
		if etag == "" && ab.ETag() != "" {
			e.mu.Lock()
			if e.etags[m] == "" {
				e.etags[m] = ab.ETag()
			}
			e.mu.Unlock()
		}
	}
	for i := first; i < end; i++ {
		if err := e.chunk(ctx, body, i, wk, m); err != nil {
			return err
		}
	}
	return nil
}

// chunk reads chunk i from body, piece by piece: each piece is hashed and
// written at once (unverified bytes in the partial file are harmless) and
// the worker's position noted in the resume file, so that a kill loses at
// most a piece. Once the whole chunk is read, its hash decides.
func (e *engine) chunk(ctx context.Context, body io.Reader, i int, wk *worker, m string) error {
	c := e.a.Chunks[i]
	skip := e.have[i].Load() // read past: already verified (sequential mode)
	h := wk.h
	h.Reset()
	n := int64(0)
	if p := e.prefixOf(i); p > 0 && !skip {
		// What a killed run wrote of this chunk goes into the hash first.
		if err := e.hashPrefix(h, c, p, wk.buf); err != nil {
			return err
		}
		n = p
	}
	for n < c.Size {
		if e.cfg.Allow != nil {
			if err := e.cfg.Allow(ctx); err != nil {
				return &PausedError{Reason: err}
			}
		}
		b := wk.buf[:min(int64(len(wk.buf)), c.Size-n)]
		got, err := e.read(ctx, body, b)
		e.fetched.Add(int64(got))
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("download: reading chunk %d: %w", i, err)
		}
		if skip {
			n += int64(got)
			continue
		}
		h.Write(b)
		if e.f != nil {
			if err := e.writeAt(b, c.Offset+n); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					return &DiskFullError{Path: e.cfg.Path, Need: e.a.Size, Err: err}
				}
				return &finalError{fmt.Errorf("download: writing chunk %d: %w", i, err)}
			}
		}
		n += int64(got)
		e.resume.note(wk.id, i, n)
	}
	if skip {
		return nil
	}
	if got := verify.NewDigest(h.Sum(nil)); got != c.Digest {
		if e.prefixOf(i) > 0 {
			// The kept prefix was wrong (a power cut, not the server): fetch
			// the whole chunk, without counting it against the server.
			e.prefix[i] = 0
			return fmt.Errorf("%w: kept prefix of chunk %d did not verify", errRetryChunk, i)
		}
		mismatch := &verify.DigestMismatchError{What: "chunk", Index: i, Offset: c.Offset, Want: c.Digest, Got: got}
		tries := int(e.failures[i].Add(1))
		if tries >= e.cfg.ChunkAttempts {
			return &CorruptError{Chunk: i, Offset: c.Offset, Attempts: tries, Err: mismatch}
		}
		e.log.Warn("download: chunk failed verification, fetching it again", "chunk", i, "attempt", tries, "mirror", m)
		return fmt.Errorf("%w: %v", errRetryChunk, mismatch)
	}
	if e.prefix != nil {
		e.prefix[i] = 0
	}
	e.have[i].Store(true)
	e.done.Add(c.Size)
	e.chunks.Add(1)
	return nil
}

// hashPrefix feeds the first p bytes of chunk c, as on disk, into h.
func (e *engine) hashPrefix(h hash.Hash, c verify.Chunk, p int64, buf []byte) error {
	for off := int64(0); off < p; {
		b := buf[:min(int64(len(buf)), p-off)]
		if _, err := e.f.ReadAt(b, c.Offset+off); err != nil {
			return err
		}
		h.Write(b)
		off += int64(len(b))
	}
	return nil
}

// read fills b from r, in one piece, or in slices as the rate limit allows.
func (e *engine) read(ctx context.Context, r io.Reader, b []byte) (int, error) {
	if e.limit == nil {
		return io.ReadFull(r, b)
	}
	n := 0
	for n < len(b) {
		k := min(len(b)-n, e.limit.burst)
		if err := e.limit.wait(ctx, k); err != nil {
			return n, err
		}
		got, err := io.ReadFull(r, b[n:n+k])
		n += got
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// finalError marks an error no retry or mirror can help.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func isFinal(err error) bool {
	var f *finalError
	var c *CorruptError
	var d *DiskFullError
	var p *PausedError
	return errors.As(err, &f) || errors.As(err, &c) || errors.As(err, &d) || errors.As(err, &p)
}

func (e *engine) currentMirror() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mirrors[e.mirror]
}

// failMirror moves on from mirror m; it reports false when no mirror is
// left.
func (e *engine) failMirror(m string, err error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mirrors[e.mirror] == m {
		if e.mirror+1 >= len(e.mirrors) {
			return false
		}
		e.mirror++
		e.log.Warn("download: mirror failed, trying the next", "mirror", m, "next", e.mirrors[e.mirror], "err", err)
	}
	return true
}

// wait sleeps before try n: the server's Retry-After, or a jittered
// exponential backoff.
func (e *engine) wait(ctx context.Context, n int, err error) error {
	var d time.Duration
	var te *transport.Error
	if errors.As(err, &te) && te.RetryAfter > 0 {
		d = te.RetryAfter + mrand.N(te.RetryAfter/10+1)
	} else {
		ceiling := min(e.cfg.RetryWait<<min(n-1, 20), e.cfg.MaxRetryWait)
		d = ceiling/2 + mrand.N(ceiling/2+1)
	}
	e.log.Info("download: retrying", "in", d, "err", err)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (e *engine) progress(rate float64, now time.Time) Progress {
	p := Progress{
		Done: e.done.Load(), Total: e.a.Size, Chunks: int(e.chunks.Load()), ChunkTotal: len(e.a.Chunks),
		Fetched: e.fetched.Load(), Rate: rate, ETA: -1,
	}
	if rate > 0 {
		p.ETA = time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
	}
	if p.Done == p.Total {
		p.ETA = 0
	}
	return p
}

func (e *engine) report(p Progress) {
	if e.cfg.Progress != nil {
		e.cfg.Progress(p)
	}
}

// reporter calls Progress every 200ms while the download runs, and once
// when it stops.
func (e *engine) reporter(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if e.cfg.Progress == nil {
		<-stop
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last, lastBytes, rate := time.Now(), e.fetched.Load(), 0.0
	for {
		select {
		case <-stop:
			e.report(e.progress(rate, time.Now()))
			return
		case now := <-tick.C:
			got := e.fetched.Load()
			r := float64(got-lastBytes) / now.Sub(last).Seconds()
			if rate == 0 {
				rate = r
			} else {
				rate = 0.7*rate + 0.3*r
			}
			last, lastBytes = now, got
			e.report(e.progress(rate, now))
		}
	}
}

func maxChunk(a *verify.Artifact) int64 {
	var n int64
	for _, c := range a.Chunks {
		n = max(n, c.Size)
	}
	return n
}

// limiter is a token bucket shared by the workers.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	tokens float64
	last   time.Time
	burst  int
}

func newLimiter(rate int64) *limiter {
	burst := int(min(max(rate/10, 4<<10), 256<<10))
	return &limiter{rate: float64(rate), tokens: float64(burst), last: time.Now(), burst: burst}
}

// wait takes n bytes' worth of tokens, sleeping until there are enough.
func (l *limiter) wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, float64(l.burst))
		l.last = now
		// Rounding may leave the bucket a hair short after a wait: a byte's
		// deficit is let through rather than slept for again.
		if l.tokens+1 >= float64(n) {
			l.tokens -= float64(n)
			l.mu.Unlock()
			return nil
		}
		d := max(time.Duration((float64(n)-l.tokens)/l.rate*float64(time.Second)), time.Millisecond)
		l.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
