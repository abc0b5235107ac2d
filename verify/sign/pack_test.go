package sign_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// writeArtifact writes n pseudo-random bytes to a file in a temp dir.
func writeArtifact(t *testing.T, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func packConfig(t *testing.T, kd *sign.KeyDir, in, out string) sign.PackConfig {
	t.Helper()
	ring, err := kd.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	return sign.PackConfig{
		In:  in,
		Out: out,
		Manifest: verify.Manifest{
			Component: "payment-app",
			Version:   "2.0.0",
			Kind:      verify.KindApplication,
			Models:    []string{"A920", "A80"},
			From:      []string{">=1.0.0, <2.0.0"},
			Floor:     "1.5.0",
			Issued:    t0,
			Expires:   t0.Add(30 * 24 * time.Hour),
		},
		ChunkSize: verify.MinChunkSize,
		Key:       kd.Signing,
		Certs:     []verify.Envelope{kd.Cert},
		KeyRing:   ring,
	}
}

func TestPackOpens(t *testing.T) {
	const cs = verify.MinChunkSize
	tests := []struct {
		name   string
		size   int
		chunks int
	}{
		{"empty", 0, 0},
		{"one byte", 1, 1},
		{"exactly one chunk", cs, 1},
		{"one chunk and a byte", cs + 1, 2},
		{"three chunks and a remainder", 3*cs + 100, 4},
		{"several buffers", 2<<20 + 7, (2<<20+7)/cs + 1},
	}
	_, kd := newKeyDir(t, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, data := writeArtifact(t, "app.bin", tt.size)
			out := filepath.Join(t.TempDir(), "release")
			p, err := sign.Pack(context.Background(), packConfig(t, kd, in, out))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(p.Manifest.Artifact.Chunks); got != tt.chunks {
				t.Errorf("%d chunks, want %d", got, tt.chunks)
			}
			sum := sha256.Sum256(data)
			if p.Manifest.Artifact.Digest != verify.NewDigest(sum[:]) || p.Manifest.Artifact.Size != int64(tt.size) {
				t.Errorf("artifact %s %d, want %x %d", p.Manifest.Artifact.Digest, p.Manifest.Artifact.Size, sum, tt.size)
			}
			copied, err := os.ReadFile(p.ArtifactPath())
			if err != nil || !bytes.Equal(copied, data) {
				t.Fatalf("artifact copy differs (%v)", err)
			}
			onDisk, err := os.ReadFile(filepath.Join(out, verify.ManifestFile))
			if err != nil || !bytes.Equal(onDisk, p.Bundle) {
				t.Fatalf("manifest.json differs from Packed.Bundle (%v)", err)
			}
			ring, _ := kd.KeyRing()
			r, err := verify.OpenReleaseDir(context.Background(), out, ring, t0.Add(time.Hour), nil)
			if err != nil {
				t.Fatalf("OpenReleaseDir: %v", err)
			}
			if r.Manifest.ID() != "payment-app@2.0.0" || r.Manifest.Floor != "1.5.0" || len(r.Manifest.Models) != 2 {
				t.Errorf("opened %+v", r.Manifest)
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != 2 {
				t.Errorf("release dir holds %d entries, want the artifact and manifest.json", len(entries))
			}
		})
	}
}

func TestPackDefaults(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	in, _ := writeArtifact(t, "fw image (v2).BIN", 100)
	cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "a", "b", "release"))
	cfg.Manifest.Issued, cfg.Manifest.Expires = time.Time{}, time.Time{}
	cfg.ChunkSize = 0
	cfg.KeyRing = nil
	cfg.Now = func() time.Time { return t0.Add(90 * time.Minute).Add(123 * time.Millisecond) }
	p, err := sign.Pack(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Manifest
	if m.Schema != verify.ManifestSchema {
		t.Errorf("schema %d", m.Schema)
	}
	if want := t0.Add(90 * time.Minute); !m.Issued.Equal(want) || !m.Expires.Equal(want.Add(sign.DefaultExpiry)) {
		t.Errorf("issued %s expires %s", m.Issued, m.Expires)
	}
	if m.Artifact.ChunkSize != verify.DefaultChunkSize {
		t.Errorf("chunk size %d", m.Artifact.ChunkSize)
	}
	if m.Artifact.Name != "fw_image__v2_.BIN" {
		t.Errorf("artifact name %q", m.Artifact.Name)
	}
}

func TestPackName(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	in, _ := writeArtifact(t, "app.bin", 10)
	tests := []struct {
		name    string
		setName string
		want    string
		wantErr error
	}{
		{"default", "", "app.bin", nil},
		{"configured", "payment-app-2.0.0.apk", "payment-app-2.0.0.apk", nil},
		{"manifest's own name", verify.ManifestFile, "", sign.ErrConfig},
		{"path", "../escape", "", verify.ErrMalformed},
		{"dot dot", "..", "", verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "out"))
			cfg.Name = tt.setName
			p, err := sign.Pack(context.Background(), cfg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Pack() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if _, serr := os.Stat(cfg.Out); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("a refused pack created %s", cfg.Out)
				}
				return
			}
			if p.Manifest.Artifact.Name != tt.want {
				t.Errorf("name %q, want %q", p.Manifest.Artifact.Name, tt.want)
			}
		})
	}
}

func TestSanitizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app.bin", "app.bin"},
		{"fw-1.2.3_rc1.img", "fw-1.2.3_rc1.img"},
		{".hidden", "_hidden"},
		{"a b/c\\d", "a_b_c_d"},
		{"固件.bin", "______.bin"},
		{"", "artifact"},
		{string(bytes.Repeat([]byte("x"), 300)), string(bytes.Repeat([]byte("x"), 255))},
	}
	for _, tt := range tests {
		got := sign.SanitizeName(tt.in)
		if got != tt.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		a := verify.Artifact{Name: got, Digest: verify.DigestBytes(nil), ChunkSize: verify.MinChunkSize}
		if err := a.Validate(); err != nil {
			t.Errorf("SanitizeName(%q) = %q, which Validate refuses: %v", tt.in, got, err)
		}
	}
}

func TestPackRefuses(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	_, other := newKeyDir(t, 2)
	in, _ := writeArtifact(t, "app.bin", 10)
	tests := []struct {
		name    string
		edit    func(cfg *sign.PackConfig)
		wantErr error
	}{
		{"no input", func(c *sign.PackConfig) { c.In = "" }, sign.ErrConfig},
		{"no output", func(c *sign.PackConfig) { c.Out = "" }, sign.ErrConfig},
		{"missing input", func(c *sign.PackConfig) { c.In += ".missing" }, os.ErrNotExist},
		{"input is a directory", func(c *sign.PackConfig) { c.In = filepath.Dir(c.In) }, sign.ErrConfig},
		{"no key", func(c *sign.PackConfig) { c.Key = sign.PrivateKey{} }, sign.ErrMalformed},
		{"bad chunk size", func(c *sign.PackConfig) { c.ChunkSize = 100 }, verify.ErrMalformed},
		{"negative workers", func(c *sign.PackConfig) { c.Workers = -1 }, sign.ErrConfig},
		{"bad version", func(c *sign.PackConfig) { c.Manifest.Version = "2" }, verify.ErrMalformed},
		{"floor above version", func(c *sign.PackConfig) { c.Manifest.Floor = "3.0.0" }, verify.ErrMalformed},
		{"bad kind", func(c *sign.PackConfig) { c.Manifest.Kind = "driver" }, verify.ErrMalformed},
		{"expires before issued", func(c *sign.PackConfig) { c.Manifest.Expires = t0.Add(-time.Hour) }, verify.ErrMalformed},
		{"certificate from another root", func(c *sign.PackConfig) { c.Certs = []verify.Envelope{other.Cert} }, verify.ErrUnknownKey},
		{"no certificate", func(c *sign.PackConfig) { c.Certs = nil }, verify.ErrUnknownKey},
		{"certificate not yet valid", func(c *sign.PackConfig) { c.Manifest.Issued = t0.Add(-time.Hour) }, verify.ErrExpired},
		{"key ring of another root", func(c *sign.PackConfig) { c.KeyRing, _ = other.KeyRing() }, verify.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "parent", "out"))
			tt.edit(&cfg)
			if _, err := sign.Pack(context.Background(), cfg); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pack() = %v, want %v", err, tt.wantErr)
			}
			if cfg.Out == "" {
				return
			}
			if _, err := os.Stat(filepath.Dir(cfg.Out)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed Pack left the directories it created: %v", err)
			}
		})
	}
}

func TestPackTooManyChunks(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	// A sparse file one byte past what MaxChunks chunks of the smallest
	// size can describe: refused before a byte is copied.
	in := filepath.Join(t.TempDir(), "huge.bin")
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(in, verify.MaxChunks*verify.MinChunkSize+1); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "out"))
	if _, err := sign.Pack(context.Background(), cfg); !errors.Is(err, verify.ErrTooLarge) {
		t.Fatalf("Pack() = %v, want ErrTooLarge", err)
	}
	if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused Pack created %s", cfg.Out)
	}
}

func TestPackOutput(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	in, _ := writeArtifact(t, "app.bin", 10)

	t.Run("existing empty directory", func(t *testing.T) {
		out := t.TempDir()
		if _, err := sign.Pack(context.Background(), packConfig(t, kd, in, out)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("non-empty directory", func(t *testing.T) {
		out := t.TempDir()
		os.WriteFile(filepath.Join(out, "other"), nil, 0o644)
		if _, err := sign.Pack(context.Background(), packConfig(t, kd, in, out)); !errors.Is(err, sign.ErrOutputExists) {
			t.Fatalf("Pack() = %v, want ErrOutputExists", err)
		}
		if _, err := os.Stat(filepath.Join(out, "other")); err != nil {
			t.Errorf("existing file touched: %v", err)
		}
	})
	t.Run("a file", func(t *testing.T) {
		if _, err := sign.Pack(context.Background(), packConfig(t, kd, in, in)); !errors.Is(err, sign.ErrOutputExists) {
			t.Fatalf("Pack() = %v, want ErrOutputExists", err)
		}
	})
	t.Run("failure in an existing directory removes only its files", func(t *testing.T) {
		out := t.TempDir()
		cfg := packConfig(t, kd, in, out)
		cfg.Certs = nil // refused by the key ring after the copy
		if _, err := sign.Pack(context.Background(), cfg); err == nil {
			t.Fatal("Pack succeeded without a certificate")
		}
		entries, err := os.ReadDir(out)
		if err != nil || len(entries) != 0 {
			t.Errorf("output dir holds %d entries (%v), want it empty", len(entries), err)
		}
	})
}

func TestPackProgressAndCancel(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	const size = 9<<20 + 5
	in, _ := writeArtifact(t, "big.bin", size)

	progressTests := []struct {
		name  string
		size  int
		calls int
	}{
		{"empty", 0, 1},
		{"smaller than a step", 100, 1},
		{"a multiple of the step", 8 << 20, 2},
		{"steps and a remainder", size, 3},
	}
	for _, tt := range progressTests {
		t.Run("progress/"+tt.name, func(t *testing.T) {
			in, _ := writeArtifact(t, "a.bin", tt.size)
			cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "out"))
			var calls [][2]int64
			cfg.Progress = func(done, total int64) { calls = append(calls, [2]int64{done, total}) }
			if _, err := sign.Pack(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			if len(calls) != tt.calls {
				t.Fatalf("%d progress calls, want %d: %v", len(calls), tt.calls, calls)
			}
			for i, c := range calls {
				if c[1] != int64(tt.size) || (i > 0 && c[0] <= calls[i-1][0]) {
					t.Errorf("progress call %d: %v", i, c)
				}
			}
			if last := calls[len(calls)-1]; last[0] != int64(tt.size) {
				t.Errorf("last progress call %v, want done = %d", last, tt.size)
			}
		})
	}
	t.Run("cancelled during the copy", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "out"))
		cfg.Progress = func(done, total int64) { cancel() }
		if _, err := sign.Pack(ctx, cfg); !errors.Is(err, context.Canceled) {
			t.Fatalf("Pack() = %v, want context.Canceled", err)
		}
		if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cancelled Pack left %s", cfg.Out)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "out"))
		if _, err := sign.Pack(ctx, cfg); !errors.Is(err, context.Canceled) {
			t.Fatalf("Pack() = %v, want context.Canceled", err)
		}
	})
}

func TestPackNewHash(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	in, _ := writeArtifact(t, "app.bin", 3*verify.MinChunkSize+1)
	a := packConfig(t, kd, in, filepath.Join(t.TempDir(), "a"))
	b := packConfig(t, kd, in, filepath.Join(t.TempDir(), "b"))
	b.NewHash = sha256.New
	pa, err := sign.Pack(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sign.Pack(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pa.Bundle, pb.Bundle) {
		t.Error("crypto/sha256 and the default hash packed different bundles")
	}
}

// TestPackMatchesChunker checks that Pack, hashing chunks on several
// goroutines, describes the artifact exactly as the sequential
// verify.Chunker does.
func TestPackMatchesChunker(t *testing.T) {
	_, kd := newKeyDir(t, 1)
	tests := []struct {
		name      string
		size      int
		chunkSize int64
		workers   int
	}{
		{"empty", 0, verify.MinChunkSize, 0},
		{"less than a chunk", 100, verify.DefaultChunkSize, 2},
		{"exact multiple of the buffer", 3 << 20, verify.MinChunkSize, 3},
		{"remainder", 3<<20 + 4097, verify.MinChunkSize, 1},
		{"odd chunk size", 2<<20 + 1, 4099, 4},
		{"chunks larger than the buffer", 7<<20 + 9, 3<<20 + 1, 2},
		{"more workers than buffers", 5<<20 + 1, verify.MaxChunkSize / 16, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, data := writeArtifact(t, "app.bin", tt.size)
			cfg := packConfig(t, kd, in, filepath.Join(t.TempDir(), "out"))
			cfg.ChunkSize, cfg.Workers = tt.chunkSize, tt.workers
			p, err := sign.Pack(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := verify.NewChunker(tt.chunkSize, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(data)
			want, err := c.Artifact("app.bin")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(p.Manifest.Artifact)
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("artifact\n%s\nwant the Chunker's\n%s", gotJSON, wantJSON)
			}
		})
	}
}
