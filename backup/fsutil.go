package backup

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/internal/bounded"
	"github.com/upkeephq/upkeep/verify"
)

// copyBufferSize is the buffer of copyCtx: big enough to keep per-call
// overhead low, small enough for a terminal's memory.
const copyBufferSize = 64 << 10

// copyCtx copies src to dst, checking ctx between reads.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufferSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			w, werr := dst.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// digestRegular hashes the regular file at path. A path that is not a
// regular file (a symlink, a directory) fails with ErrUnsupported.
func digestRegular(ctx context.Context, path string, newHash func() hash.Hash) (verify.Digest, int64, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	d := verify.NewDigester(newHash)
	if _, err := copyCtx(ctx, d, f); err != nil {
		return "", 0, err
	}
	return d.Digest(), d.Size(), nil
}

// openRegular opens path for reading if it is a regular file, and not a
// symlink to one: a backup never follows a symlink out of the tree it owns.
// Anything else fails with ErrUnsupported, without ever being opened in a
// way that could block (a named pipe) or have side effects (a device).
func openRegular(path string) (durable.File, error) {
	f, err := durable.OpenNoFollow(durable.OS{}, path)
	var nr *durable.NotRegularError
	if errors.As(err, &nr) {
		return nil, fmt.Errorf("%w: %s is a %s, not a regular file", ErrUnsupported, nr.Path, nr.Kind)
	}
	return f, err
}

// readLimited reads the regular file at path, refusing more than limit
// bytes with ErrTooLarge.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bounded.Read(f, limit, path, ErrTooLarge)
}

// writeSynced creates path with data and fsyncs it.
func writeSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
