package update

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// downloader fetches an artifact by Range into a .partial file, verifying
// every chunk against the signed manifest as it streams, and renames the
// file into place only when every chunk has matched. What a previous run
// left on disk is re-verified, and only missing or wrong chunks are fetched.
type downloader struct {
	fs       durable.FS
	src      Source
	newHash  func() hash.Hash
	attempts int
	progress func(Progress)
	log      *slog.Logger
}

// permanentError marks a download failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func artifactPaths(dir string, d verify.Digest) (final, partial string) {
	base := filepath.Join(dir, d.Hex())
	return base + ".bin", base + ".partial"
}

// fetch returns the path of the verified artifact.
func (d *downloader) fetch(ctx context.Context, m *verify.Manifest, url, dir string) (string, error) {
	a := &m.Artifact
	final, partial := artifactPaths(dir, a.Digest)
	if f, err := durable.OpenNoFollow(d.fs, final); err == nil {
		err = verify.VerifyChunks(ctx, f, a, d.newHash)
		f.Close()
		if err == nil {
			d.report(m, a.Size, len(a.Chunks))
			return final, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		d.log.Warn("update: downloaded artifact no longer verifies, fetching again", "path", final, "err", err)
		d.fs.Remove(final)
	}

	f, err := d.fs.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	have, err := d.verifiedChunks(ctx, f, a, info.Size())
	if err != nil {
		return "", err
	}
	if info.Size() != a.Size {
		if err := f.Truncate(a.Size); err != nil {
			return "", err
		}
	}
	done := int64(0)
	nchunks := 0
	for i, ok := range have {
		if ok {
			done += a.Chunks[i].Size
			nchunks++
		}
	}
	d.report(m, done, nchunks)

	buf := make([]byte, 0, maxChunk(a))
	for i := 0; i < len(a.Chunks); {
		if have[i] {
			i++
			continue
		}
		j := i
		for j < len(a.Chunks) && !have[j] {
			j++
		}
		// Fetch chunks i..j-1 in one Range request; when the stream
		// breaks, reopen it from the first chunk not yet verified.
		failures := 0
		for i < j {
			n, err := d.fetchRun(ctx, f, m, url, i, j, buf)
			for k := i; k < i+n; k++ {
				have[k] = true
				done += a.Chunks[k].Size
				nchunks++
			}
			if n > 0 {
				d.report(m, done, nchunks)
				failures = 0
			}
			i += n
			if err == nil {
				continue
			}
			var mismatch *verify.DigestMismatchError
			if !errors.As(err, &mismatch) {
				var perm *permanentError
				if failures++; failures >= d.attempts || ctx.Err() != nil || errors.As(err, &perm) {
					return "", err
				}
				d.log.Warn("update: download interrupted, resuming", "chunk", i, "err", err)
				continue
			}
			// A chunk arrived corrupted: fetch it alone, a bounded number
			// of times, before giving up on the download.
			if err := d.refetchChunk(ctx, f, m, url, i, buf); err != nil {
				return "", err
			}
			have[i] = true
			done += a.Chunks[i].Size
			nchunks++
			d.report(m, done, nchunks)
			i++
		}
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := durable.Rename(d.fs, partial, final); err != nil {
		return "", err
	}
	return final, nil
}

// verifiedChunks reads what a previous run left in f and reports which
// chunks already match their digests.
func (d *downloader) verifiedChunks(ctx context.Context, f durable.File, a *verify.Artifact, size int64) ([]bool, error) {
	have := make([]bool, len(a.Chunks))
	if size == 0 {
		return have, nil
	}
	h := verify.NewDigester(d.newHash)
	buf := make([]byte, 1<<20)
	for i, c := range a.Chunks {
		if c.Offset+c.Size > size {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h.Reset()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, c.Offset, c.Size), buf); err != nil {
			return nil, err
		}
		have[i] = h.Digest() == c.Digest
	}
	return have, nil
}

// fetchRun fetches chunks [from, to) in one request and writes each one
// that verifies. It returns how many chunks, from the first, it verified
// and wrote, and the error that stopped it (a *verify.DigestMismatchError
// for chunk from+n).
func (d *downloader) fetchRun(ctx context.Context, f durable.File, m *verify.Manifest, url string, from, to int, buf []byte) (int, error) {
	a := &m.Artifact
	start := a.Chunks[from].Offset
	end := a.Chunks[to-1].Offset + a.Chunks[to-1].Size
	body, err := d.src.OpenArtifact(ctx, transport.ArtifactRequest{
		Digest: string(a.Digest), URL: url, Offset: start, Length: end - start,
	})
	if err != nil {
		return 0, d.classify(err)
	}
	defer body.Close()
	for i := from; i < to; i++ {
		if err := d.readChunk(body, f, a, i, buf); err != nil {
			return i - from, err
		}
	}
	return to - from, nil
}

func (d *downloader) refetchChunk(ctx context.Context, f durable.File, m *verify.Manifest, url string, i int, buf []byte) error {
	var err error
	for attempt := 1; attempt < d.attempts; attempt++ {
		d.log.Warn("update: chunk failed verification, fetching it again", "chunk", i, "attempt", attempt+1)
		var n int
		n, err = d.fetchRun(ctx, f, m, url, i, i+1, buf)
		if n == 1 {
			return nil
		}
		var mismatch *verify.DigestMismatchError
		if !errors.As(err, &mismatch) {
			return err
		}
	}
	if err == nil {
		// attempts == 1: no refetch allowed.
		c := m.Artifact.Chunks[i]
		err = &verify.DigestMismatchError{What: "chunk", Index: i, Offset: c.Offset, Want: c.Digest}
	}
	return &permanentError{fmt.Errorf("chunk %d failed verification %d times: %w", i, d.attempts, err)}
}

// readChunk reads chunk i from r, verifies it and writes it at its offset.
func (d *downloader) readChunk(r io.Reader, f durable.File, a *verify.Artifact, i int, buf []byte) error {
	c := a.Chunks[i]
	buf = buf[:c.Size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("update: reading chunk %d: %w", i, err)
	}
	h := d.newHash()
	h.Write(buf)
	if got := verify.NewDigest(h.Sum(nil)); got != c.Digest {
		return &verify.DigestMismatchError{What: "chunk", Index: i, Offset: c.Offset, Want: c.Digest, Got: got}
	}
	if _, err := f.WriteAt(buf, c.Offset); err != nil {
		return fmt.Errorf("update: writing chunk %d: %w", i, err)
	}
	return nil
}

// classify marks errors from the server that will not go away on retry.
func (d *downloader) classify(err error) error {
	// A range the server cannot satisfy means its artifact is not the one
	// the manifest describes. Anything else (a 404 while a CDN catches up,
	// a server error) may pass; the release's expiry bounds how long we wait.
	if errors.Is(err, transport.ErrRange) {
		return &permanentError{err}
	}
	return err
}

func (d *downloader) report(m *verify.Manifest, done int64, chunks int) {
	if d.progress != nil {
		d.progress(Progress{Release: m.ID(), Done: done, Total: m.Artifact.Size, Chunks: chunks, ChunkTotal: len(m.Artifact.Chunks)})
	}
}

func maxChunk(a *verify.Artifact) int64 {
	var n int64
	for _, c := range a.Chunks {
		n = max(n, c.Size)
	}
	return n
}
