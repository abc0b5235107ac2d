package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/upkeephq/upkeep/verify"
)

// chunkerArtifact is what the sequential verify.Chunker makes of data.
func chunkerArtifact(t *testing.T, data []byte, chunkSize int64) verify.Artifact {
	t.Helper()
	c, err := verify.NewChunker(chunkSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(data)
	a, err := c.Artifact("a.bin")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testCopier(chunkSize int64, workers int) *copier {
	return &copier{
		chunkSize: chunkSize,
		newHash:   verify.NewHash,
		workers:   workers,
		limit:     verify.MaxArtifactSize,
	}
}

// TestCopyArtifactMatchesChunker checks that the parallel copy describes an
// artifact byte for byte as the sequential Chunker does, whatever the chunk
// size, the worker count and how the reads fall.
func TestCopyArtifactMatchesChunker(t *testing.T) {
	const buf = packBufferSize
	chunkSizes := []int64{
		verify.MinChunkSize,
		4099,                    // not a power of two: buffers of 255 chunks
		verify.DefaultChunkSize, // one chunk per buffer
		3<<20 + 1,               // larger than the buffer size, odd
	}
	data := make([]byte, 4*(3<<20+1))
	rand.NewChaCha8([32]byte{7}).Read(data)
	for _, cs := range chunkSizes {
		sizes := []int64{0, 1, cs - 1, cs, cs + 1, 3 * cs, 3*cs + cs/2 + 1}
		if cs < buf {
			sizes = append(sizes, 2*buf, 2*buf+3)
		}
		for _, size := range sizes {
			want := chunkerArtifact(t, data[:size], cs)
			wantJSON, _ := json.Marshal(want)
			for _, workers := range []int{1, 3} {
				for _, short := range []bool{false, true} {
					t.Run(fmt.Sprintf("chunk=%d/size=%d/workers=%d/short=%v", cs, size, workers, short), func(t *testing.T) {
						var in io.Reader = bytes.NewReader(data[:size])
						if short {
							in = iotest.HalfReader(in)
						}
						var out bytes.Buffer
						got, err := testCopier(cs, workers).copyArtifact(context.Background(), &out, in)
						if err != nil {
							t.Fatal(err)
						}
						got.Name = want.Name
						if gotJSON, _ := json.Marshal(got); !bytes.Equal(gotJSON, wantJSON) {
							t.Errorf("artifact\n%s\nwant the Chunker's\n%s", gotJSON, wantJSON)
						}
						if !bytes.Equal(out.Bytes(), data[:size]) {
							t.Error("the copy differs from the input")
						}
					})
				}
			}
		}
	}
}

// failingReader yields n bytes of zeros, then err.
type failingReader struct {
	n   int64
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(int64(len(p)), r.n)
	clear(p[:k])
	r.n -= k
	return int(k), nil
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct {
	n   int64
	err error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.n {
		k := w.n
		w.n = 0
		return int(k), w.err
	}
	w.n -= int64(len(p))
	return len(p), nil
}

func TestCopyArtifactFailures(t *testing.T) {
	errRead := errors.New("disk read error")
	errWrite := errors.New("disk full")
	const mib = 1 << 20
	tests := []struct {
		name    string
		in      io.Reader
		w       io.Writer
		limit   int64
		wantErr error
	}{
		{"read error at once", &failingReader{0, errRead}, io.Discard, verify.MaxArtifactSize, errRead},
		{"read error mid-buffer", &failingReader{mib / 2, errRead}, io.Discard, verify.MaxArtifactSize, errRead},
		{"read error on a buffer's boundary", &failingReader{2 * mib, errRead}, io.Discard, verify.MaxArtifactSize, errRead},
		{"read error after many buffers", &failingReader{40*mib + 3, errRead}, io.Discard, verify.MaxArtifactSize, errRead},
		{"write error at once", bytes.NewReader(make([]byte, 8*mib)), &failingWriter{0, errWrite}, verify.MaxArtifactSize, errWrite},
		{"write error after many buffers", &failingReader{64 * mib, io.EOF}, &failingWriter{20*mib + 1, errWrite}, verify.MaxArtifactSize, errWrite},
		{"at the limit", &failingReader{3*mib + 5, io.EOF}, io.Discard, 3*mib + 5, nil},
		{"past the limit", &failingReader{3*mib + 6, io.EOF}, io.Discard, 3*mib + 5, verify.ErrTooLarge},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				c := testCopier(verify.MinChunkSize, workers)
				c.limit = tt.limit
				// The readers are stateful: run each case once per worker count.
				in := tt.in
				if fr, ok := in.(*failingReader); ok {
					cp := *fr
					in = &cp
				} else if br, ok := in.(*bytes.Reader); ok {
					br.Seek(0, io.SeekStart)
				}
				w := tt.w
				if fw, ok := w.(*failingWriter); ok {
					cp := *fw
					w = &cp
				}
				_, err := c.copyArtifact(context.Background(), w, in)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("copyArtifact() = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
}

// countingReader counts what it yields, and calls onRead after each read.
type countingReader struct {
	r      io.Reader
	n      int64
	onRead func(n int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.onRead != nil {
		r.onRead(r.n)
	}
	return n, err
}

// TestCopyArtifactCancel checks that no read follows the cancellation.
func TestCopyArtifactCancel(t *testing.T) {
	tests := []struct {
		name string
		at   int64 // cancel once this much is read
	}{
		{"before the first read", 0},
		{"within the first buffer", 1},
		{"after a few buffers", 5 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.at == 0 {
				cancel()
			}
			var cancelledAt int64 = -1
			in := &countingReader{r: &failingReader{64 << 20, io.EOF}}
			in.onRead = func(n int64) {
				if cancelledAt < 0 && n >= tt.at {
					cancel()
					cancelledAt = n
				}
			}
			_, err := testCopier(verify.MinChunkSize, 2).copyArtifact(ctx, io.Discard, in)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("copyArtifact() = %v, want context.Canceled", err)
			}
			if tt.at == 0 {
				cancelledAt = 0
			}
			if in.n != cancelledAt {
				t.Errorf("read %d bytes, %d after the cancellation", in.n, in.n-cancelledAt)
			}
		})
	}
}

// TestCopyArtifactProgress checks progress reports from a reader of
// unknown size: at every step, and once at the end.
func TestCopyArtifactProgress(t *testing.T) {
	const size = 9<<20 + 5
	c := testCopier(verify.MinChunkSize, 2)
	c.total = 1 << 20 // less than there is: total follows done
	var calls [][2]int64
	c.progress = func(done, total int64) { calls = append(calls, [2]int64{done, total}) }
	if _, err := c.copyArtifact(context.Background(), io.Discard, &failingReader{size, io.EOF}); err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{4 << 20, 4 << 20}, {8 << 20, 8 << 20}, {size, size}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("progress calls %v, want %v", calls, want)
	}
}

func TestCopierPool(t *testing.T) {
	tests := []struct {
		chunkSize   int64
		workers     int
		bufSize, n  int64
		wantWorkers int
	}{
		{verify.MinChunkSize, 1, 1 << 20, 8, 1},
		{verify.MinChunkSize, 2, 1 << 20, 16, 2},
		{4099, 2, 255 * 4099, 16, 2},
		{verify.DefaultChunkSize, 64, 1 << 20, 128, 64},
		{verify.DefaultChunkSize, 1000, 1 << 20, 128, 128},
		{3<<20 + 1, 2, 3<<20 + 1, 16, 2},
		{16 << 20, 4, 16 << 20, 8, 4},
		{verify.MaxChunkSize, 1, verify.MaxChunkSize, 2, 1},
		{verify.MaxChunkSize, 32, verify.MaxChunkSize, 2, 2},
	}
	for _, tt := range tests {
		c := testCopier(tt.chunkSize, tt.workers)
		bufSize, n, workers := c.pool()
		if bufSize != tt.bufSize || n != tt.n || workers != tt.wantWorkers {
			t.Errorf("chunk size %d, %d workers: %d buffers of %d and %d workers, want %d of %d and %d",
				tt.chunkSize, tt.workers, n, bufSize, workers, tt.n, tt.bufSize, tt.wantWorkers)
		}
		if bufSize%tt.chunkSize != 0 {
			t.Errorf("chunk size %d: buffers of %d do not hold whole chunks", tt.chunkSize, bufSize)
		}
		if n*bufSize > packMemory && n > 2 {
			t.Errorf("chunk size %d, %d workers: %d buffers of %d, above packMemory", tt.chunkSize, tt.workers, n, bufSize)
		}
	}
}

// TestCopyArtifactWriteback checks that writeback is asked for contiguous
// ranges of written bytes, from the start, every writebackStep or so.
func TestCopyArtifactWriteback(t *testing.T) {
	tests := []struct {
		name      string
		size      int64
		chunkSize int64
		want      [][2]int64
	}{
		{"less than a step", writebackStep - 1, verify.MinChunkSize, nil},
		{"exactly a step", writebackStep, verify.MinChunkSize, [][2]int64{{0, writebackStep}}},
		{"steps and a remainder", 2*writebackStep + 3, verify.MinChunkSize,
			[][2]int64{{0, writebackStep}, {writebackStep, writebackStep}}},
		{"buffers not dividing the step", 3*writebackStep + 3, 3<<20 + 1,
			[][2]int64{{0, 3 * (3<<20 + 1)}, {3 * (3<<20 + 1), 3 * (3<<20 + 1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w countingWriter
			var got [][2]int64
			c := testCopier(tt.chunkSize, 2)
			c.writeback = func(off, n int64) {
				if off+n > w.n {
					t.Errorf("writeback of [%d, %d) with %d bytes written", off, off+n, w.n)
				}
				got = append(got, [2]int64{off, n})
			}
			if _, err := c.copyArtifact(context.Background(), &w, &failingReader{tt.size, io.EOF}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("writeback of %v, want %v", got, tt.want)
			}
		})
	}
}

// countingWriter counts what is written to it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
