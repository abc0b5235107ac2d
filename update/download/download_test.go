package download_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/download"
	"github.com/upkeephq/upkeep/verify"
)

// artifact returns n random bytes and their chunk list.
func artifact(t testing.TB, n int, chunk int64) ([]byte, *verify.Artifact) {
	t.Helper()
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n), byte(chunk >> 10)}).Read(data)
	c, err := verify.NewChunker(chunk, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(data)
	a, err := c.Artifact("app.bin")
	if err != nil {
		t.Fatal(err)
	}
	return data, &a
}

// server is an in-memory artifact server with fault knobs, standing for a
// CDN, nginx or the update server. Mirrors are URLs it knows.
type server struct {
	mu       sync.Mutex
	data     map[string][]byte // by mirror URL
	etag     map[string]string
	down     map[string]error // mirror → the error every request gets
	failNext int              // next requests fail with a network error
	retryIn  time.Duration    // ... as a 503 with this Retry-After
	corrupt  map[int64]int    // offset → how many more times to corrupt it
	noRanges bool
	requests []transport.ArtifactRequest
	sent     atomic.Int64
	// killAt, when set, cancels kill after that many bytes were sent.
	killAt int64
	kill   context.CancelFunc
}

func newServer(data []byte, mirrors ...string) *server {
	s := &server{data: map[string][]byte{}, etag: map[string]string{}, down: map[string]error{}, corrupt: map[int64]int{}}
	if len(mirrors) == 0 {
		mirrors = []string{""}
	}
	for _, m := range mirrors {
		s.data[m], s.etag[m] = data, `"v1"`
	}
	return s
}

func (s *server) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	if err := s.down[req.URL]; err != nil {
		return nil, err
	}
	if s.failNext > 0 {
		s.failNext--
		if s.retryIn > 0 {
			return nil, &transport.Error{Code: transport.CodeUnavailable, RetryAfter: s.retryIn}
		}
		return nil, errors.New("connection reset by peer")
	}
	data, ok := s.data[req.URL]
	if !ok {
		return nil, transport.Errorf(transport.CodeNotFound, "no %s", req.URL)
	}
	whole := s.noRanges || req.IfRange != "" && req.IfRange != s.etag[req.URL]
	end := int64(len(data))
	if req.Length >= 0 {
		end = req.Offset + req.Length
	}
	if req.Offset >= int64(len(data)) || end > int64(len(data)) {
		return nil, transport.Errorf(transport.CodeRange, "past the end")
	}
	b := bytes.Clone(data[req.Offset:end])
	for off, n := range s.corrupt {
		if n > 0 && off >= req.Offset && off < end {
			b[off-req.Offset] ^= 0xff
			s.corrupt[off] = n - 1
		}
	}
	if whole && req.Offset > 0 {
		s.sent.Add(req.Offset) // the head a server ignoring Range sends first
	}
	return &body{r: bytes.NewReader(b), s: s, ctx: ctx, etag: s.etag[req.URL], whole: whole}, nil
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

type body struct {
	r     *bytes.Reader
	s     *server
	ctx   context.Context
	etag  string
	whole bool
}

func (b *body) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if k := b.s.killAt; k > 0 {
		if left := k - b.s.sent.Load(); left <= 0 {
			b.s.kill()
			return 0, context.Canceled
		} else if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := b.r.Read(p)
	b.s.sent.Add(int64(n))
	return n, err
}

func (b *body) Close() error { return nil }
func (b *body) ETag() string { return b.etag }
func (b *body) Whole() bool  { return b.whole }

func readFile(t *testing.T, fsys durable.FS, path string) []byte {
	t.Helper()
	b, err := durable.ReadFile(fsys, path, 1<<30, errors.New("big"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func config(src download.Source, a *verify.Artifact, path string) download.Config {
	return download.Config{Source: src, Artifact: a, Path: path, RetryWait: time.Millisecond, MaxRetryWait: 5 * time.Millisecond}
}

func TestFetch(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		chunk    int64
		parallel int
		segment  int64
		buffered bool
		// direct is what goes past the page cache where the filesystem
		// takes O_DIRECT: whole 4 KiB-aligned pieces, never a chunk's
		// odd-sized tail.
		direct int64
	}{
		{"one chunk", 1000, verify.MinChunkSize, 4, 0, false, 0},
		{"many chunks, few workers", 300_000, verify.MinChunkSize, 2, 64 << 10, false, 300_000 / 4096 * 4096},
		{"chunks bigger than a piece", 3_000_000, 1 << 20, 4, 0, false, 2<<20 + 3*pieceSize},
		{"through the page cache", 3_000_000, 1 << 20, 4, 0, true, 0},
		{"one worker", 100_000, 8 << 10, 1, 16 << 10, false, 12 * 8 << 10},
		{"odd chunk size", 1_000_000, 10_000, 3, 0, false, 0},
		{"empty", 0, verify.MinChunkSize, 4, 0, false, 0},
	}
	directOK := directWritable(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, a := artifact(t, tt.size, tt.chunk)
			srv := newServer(data)
			path := filepath.Join(t.TempDir(), "app.bin")
			cfg := config(srv, a, path)
			cfg.Parallel, cfg.SegmentSize, cfg.Buffered = tt.parallel, tt.segment, tt.buffered
			var last download.Progress
			cfg.Progress = func(p download.Progress) { last = p }
			res, err := download.Fetch(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, durable.OS{}, path), data) {
				t.Fatal("downloaded bytes differ")
			}
			if res.Path != path || res.Fetched != int64(tt.size) || res.Reused != 0 {
				t.Errorf("Result %+v", res)
			}
			if want := map[bool]int64{true: tt.direct}[directOK]; res.Direct != want {
				t.Errorf("Direct = %d bytes, want %d (O_DIRECT usable here: %v)", res.Direct, want, directOK)
			}
			if last.Done != int64(tt.size) || last.Chunks != len(a.Chunks) || last.ETA != 0 {
				t.Errorf("last progress %+v", last)
			}
			for _, leftover := range []string{path + ".partial", path + ".partial.resume"} {
				if _, err := os.Stat(leftover); !os.IsNotExist(err) {
					t.Errorf("%s left behind", filepath.Base(leftover))
				}
			}
			// Fetching again finds it there.
			res, err = download.Fetch(context.Background(), cfg)
			if err != nil || res.Fetched != 0 || res.Reused != int64(tt.size) {
				t.Errorf("second Fetch: %+v, %v", res, err)
			}
		})
	}
}

// pieceSize is the engine's: the unit it reads, hashes and writes.
const pieceSize = 256 << 10

// TestKilledTenTimes kills the download at ten random points; it then
// completes having fetched no more than the artifact and ten chunks: a
// restart fetches only what is missing, resuming inside chunks.
func TestKilledTenTimes(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		data, a := artifact(t, 24<<20+12345, 1<<20)
		path := filepath.Join(t.TempDir(), "app.bin")
		rng := rand.New(rand.NewPCG(seed, 9))
		var total int64
		for kill := 0; kill < 10; kill++ {
			srv := newServer(data)
			ctx, cancel := context.WithCancel(context.Background())
			srv.killAt, srv.kill = 1+rng.Int64N(int64(len(data))/8), cancel
			res, err := download.Fetch(ctx, config(srv, a, path))
			cancel()
			if err == nil {
				t.Fatalf("seed %d kill %d: finished before the kill", seed, kill)
			}
			total += res.Fetched
		}
		srv := newServer(data)
		res, err := download.Fetch(context.Background(), config(srv, a, path))
		if err != nil {
			t.Fatal(err)
		}
		total += res.Fetched
		if !bytes.Equal(readFile(t, durable.OS{}, path), data) {
			t.Fatal("bytes differ after the kills")
		}
		if limit := int64(len(data)) + 10*(1<<20); total > limit {
			t.Errorf("seed %d: fetched %d bytes in all, want at most %d (the artifact and ten chunks)", seed, total, limit)
		}
	}
}

func TestCorruptChunk(t *testing.T) {
	data, a := artifact(t, 100_000, verify.MinChunkSize)
	t.Run("corrupted once, fetched again", func(t *testing.T) {
		srv := newServer(data)
		srv.corrupt[50_000] = 2
		path := filepath.Join(t.TempDir(), "app.bin")
		if _, err := download.Fetch(context.Background(), config(srv, a, path)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readFile(t, durable.OS{}, path), data) {
			t.Fatal("bytes differ")
		}
	})
	t.Run("always corrupt: typed error naming the chunk, verified chunks kept", func(t *testing.T) {
		srv := newServer(data)
		srv.corrupt[50_000] = 1 << 30
		path := filepath.Join(t.TempDir(), "app.bin")
		_, err := download.Fetch(context.Background(), config(srv, a, path))
		var ce *download.CorruptError
		if !errors.As(err, &ce) || ce.Chunk != 12 || ce.Attempts != download.DefaultChunkAttempts ||
			!errors.Is(err, verify.ErrDigestMismatch) {
			t.Fatalf("err = %v, want a CorruptError for chunk 12", err)
		}
		// The server is fixed: only the bad chunk's run is fetched again.
		srv = newServer(data)
		res, err := download.Fetch(context.Background(), config(srv, a, path))
		if err != nil {
			t.Fatal(err)
		}
		if res.Reused == 0 || res.Fetched >= int64(len(data)) {
			t.Errorf("after the fix: %+v, want most of it reused", res)
		}
	})
}

func TestServerIgnoringRange(t *testing.T) {
	data, a := artifact(t, 400_000, verify.MinChunkSize)
	srv := newServer(data)
	srv.noRanges = true
	path := filepath.Join(t.TempDir(), "app.bin")
	cfg := config(srv, a, path)
	cfg.SegmentSize = 16 << 10 // many segments: one stream must replace them
	res, err := download.Fetch(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, durable.OS{}, path), data) {
		t.Fatal("bytes differ")
	}
	if sent := srv.sent.Load(); sent > 2*int64(len(data)) {
		t.Errorf("sent %d bytes for %d: the server's whole answers were not read once", sent, len(data))
	}
	if res.Fetched > 2*int64(len(data)) {
		t.Errorf("fetched %d", res.Fetched)
	}
}

func TestChangedOnTheServer(t *testing.T) {
	data, a := artifact(t, 200_000, verify.MinChunkSize)
	t.Run("one mirror: ErrChanged", func(t *testing.T) {
		srv := newServer(data)
		path := filepath.Join(t.TempDir(), "app.bin")
		cfg := config(srv, a, path)
		cfg.Parallel, cfg.SegmentSize = 1, 16<<10
		n := 0
		cfg.Allow = func(context.Context) error {
			if n++; n == 8 {
				srv.mu.Lock()
				srv.etag[""] = `"v2"` // a new file was uploaded in place
				srv.mu.Unlock()
			}
			return nil
		}
		if _, err := download.Fetch(context.Background(), cfg); !errors.Is(err, download.ErrChanged) {
			t.Fatalf("err = %v, want ErrChanged", err)
		}
	})
	t.Run("two mirrors: the next one", func(t *testing.T) {
		srv := newServer(data, "https://cdn.example/app.bin", "")
		path := filepath.Join(t.TempDir(), "app.bin")
		cfg := config(srv, a, path)
		cfg.Mirrors = []string{"https://cdn.example/app.bin", ""}
		cfg.Parallel, cfg.SegmentSize = 1, 16<<10
		n := 0
		cfg.Allow = func(context.Context) error {
			if n++; n == 8 {
				srv.mu.Lock()
				srv.etag["https://cdn.example/app.bin"] = `"v2"`
				srv.mu.Unlock()
			}
			return nil
		}
		if _, err := download.Fetch(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readFile(t, durable.OS{}, path), data) {
			t.Fatal("bytes differ")
		}
	})
}

func TestMirrorFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data, a := artifact(t, 100_000, verify.MinChunkSize)
		srv := newServer(data, "https://cdn.example/app.bin", "")
		srv.down["https://cdn.example/app.bin"] = errors.New("connection refused")
		path := filepath.Join(t.TempDir(), "app.bin")
		cfg := download.Config{Source: srv, Artifact: a, Path: path, Mirrors: []string{"https://cdn.example/app.bin", ""}}
		start := time.Now()
		if _, err := download.Fetch(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readFile(t, durable.OS{}, path), data) {
			t.Fatal("bytes differ")
		}
		if waited := time.Since(start); waited > 2*time.Minute {
			t.Errorf("failover took %s", waited)
		}
		for _, r := range srv.requests[len(srv.requests)-1:] {
			if r.URL != "" {
				t.Errorf("last request to %q, want the update server", r.URL)
			}
		}
	})
	t.Run("every mirror down", func(t *testing.T) {
		data, a := artifact(t, 10_000, verify.MinChunkSize)
		srv := newServer(data)
		srv.down[""] = errors.New("connection refused")
		_, err := download.Fetch(context.Background(), config(srv, a, filepath.Join(t.TempDir(), "app.bin")))
		if err == nil || isTyped(err) {
			t.Fatalf("err = %v, want the network error", err)
		}
	})
}

func isTyped(err error) bool {
	var c *download.CorruptError
	var d *download.DiskFullError
	return errors.As(err, &c) || errors.As(err, &d) || errors.Is(err, download.ErrPaused)
}

func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data, a := artifact(t, 20_000, verify.MinChunkSize)
		srv := newServer(data)
		srv.failNext, srv.retryIn = 1, 7*time.Second
		cfg := download.Config{Source: srv, Artifact: a, Path: filepath.Join(t.TempDir(), "app.bin"), Parallel: 1}
		start := time.Now()
		if _, err := download.Fetch(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 7*time.Second || waited > 8*time.Second {
			t.Errorf("waited %s, want the server's 7s (jittered by at most a tenth)", waited)
		}
	})
}

func TestDiskFull(t *testing.T) {
	data, a := artifact(t, 100_000, verify.MinChunkSize)
	fsys := durabletest.NewCrashFS(1)
	fsys.Mkdir("/d", 0o755)
	fsys.SetCapacity(50_000)
	srv := newServer(data)
	cfg := config(srv, a, "/d/app.bin")
	cfg.FS = fsys
	_, err := download.Fetch(context.Background(), cfg)
	var df *download.DiskFullError
	if !errors.As(err, &df) || !errors.Is(err, syscall.ENOSPC) || df.Need != int64(len(data)) {
		t.Fatalf("err = %v, want a DiskFullError", err)
	}
	if n := srv.count(); n != 0 {
		t.Errorf("%d requests before finding the disk full", n)
	}
}

func TestPause(t *testing.T) {
	data, a := artifact(t, 200_000, verify.MinChunkSize)
	srv := newServer(data)
	path := filepath.Join(t.TempDir(), "app.bin")
	cfg := config(srv, a, path)
	var chunks atomic.Int32
	offWiFi := errors.New("on cellular: waiting for Wi-Fi")
	cfg.Allow = func(context.Context) error {
		if chunks.Add(1) > 20 {
			return offWiFi
		}
		return nil
	}
	res, err := download.Fetch(context.Background(), cfg)
	if !errors.Is(err, download.ErrPaused) || !errors.Is(err, offWiFi) {
		t.Fatalf("err = %v, want paused for Wi-Fi", err)
	}
	first := res.Fetched
	cfg.Allow = nil
	res, err = download.Fetch(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused == 0 || first+res.Fetched > int64(len(data))+4*verify.MinChunkSize {
		t.Errorf("resumed after the pause: reused %d, fetched %d+%d for %d", res.Reused, first, res.Fetched, len(data))
	}
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data, a := artifact(t, 4<<20, 1<<20)
		cfg := download.Config{Source: newServer(data), Artifact: a, Path: filepath.Join(t.TempDir(), "app.bin"), RateLimit: 1 << 20}
		start := time.Now()
		if _, err := download.Fetch(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 3500*time.Millisecond || took > 4500*time.Millisecond {
			t.Errorf("4 MiB at 1 MiB/s took %s", took)
		}
	})
}

func TestDiscard(t *testing.T) {
	data, a := artifact(t, 100_000, verify.MinChunkSize)
	dir := t.TempDir()
	res, err := download.Fetch(context.Background(), download.Config{Source: newServer(data), Artifact: a, Discard: true})
	if err != nil || res.Fetched != int64(len(data)) || res.Path != "" {
		t.Fatalf("%+v, %v", res, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Error("Discard wrote files")
	}
	srv := newServer(data)
	srv.corrupt[0] = 1 << 30
	if _, err := download.Fetch(context.Background(), download.Config{Source: srv, Artifact: a, Discard: true}); !errors.Is(err, verify.ErrDigestMismatch) {
		t.Errorf("Discard of corrupt bytes: %v", err)
	}
}

func TestCancelled(t *testing.T) {
	data, a := artifact(t, 100_000, verify.MinChunkSize)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := download.Fetch(ctx, config(newServer(data), a, filepath.Join(t.TempDir(), "app.bin"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestPowerCut cuts the power at every operation of a download onto a
// CrashFS, under every loss: restarted, the download completes with the
// right bytes, whatever survived.
func TestPowerCut(t *testing.T) {
	data, a := artifact(t, 70_000, verify.MinChunkSize)
	for _, loss := range []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome, durabletest.LoseAny} {
		for k := 1; ; k++ {
			fsys := durabletest.NewCrashFS(uint64(k))
			fsys.Mkdir("/d", 0o755)
			fsys.Persist()
			cfg := config(newServer(data), a, "/d/app.bin")
			cfg.FS = fsys
			fsys.CrashAfter(k)
			_, err := download.Fetch(context.Background(), cfg)
			if !fsys.Crashed() {
				if err != nil {
					t.Fatal(err)
				}
				break // every operation has been a crash point
			}
			fsys.Restart(loss)
			if _, err := download.Fetch(context.Background(), cfg); err != nil {
				t.Fatalf("%s crash at op %d, then: %v", loss, k, err)
			}
			if !bytes.Equal(readFile(t, fsys, "/d/app.bin"), data) {
				t.Fatalf("%s crash at op %d: bytes differ", loss, k)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, a := artifact(t, 10, verify.MinChunkSize)
	for _, cfg := range []download.Config{
		{Artifact: a, Path: "x"},
		{Source: newServer(nil), Path: "x"},
		{Source: newServer(nil), Artifact: a},
		{Source: newServer(nil), Artifact: a, Path: "x", Parallel: -1},
		{Source: newServer(nil), Artifact: &verify.Artifact{Name: "x"}, Path: "x"},
	} {
		if _, err := download.Fetch(context.Background(), cfg); err == nil {
			t.Errorf("Fetch(%+v) accepted an invalid config", cfg)
		}
	}
}
