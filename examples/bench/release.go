//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

const (
	minChunk = verify.MinChunkSize
	maxChunk = verify.MaxChunkSize
	maxSize  = verify.MaxArtifactSize

	artifactName = "artifact.bin"
	// genBlock is how much of the artifact is generated and written at a time.
	genBlock = 4 << 20
)

// release is the signed release the tools fetch.
type release struct {
	keys     string // the key directory: what terminal fetch -keys takes
	dir      string // the release directory the server serves
	manifest string // dir/manifest.json
	artifact *verify.Artifact
}

// workDir returns the directory to work in and a function that removes it
// (or not, with -keep). Without -dir it makes a new one in the system's
// temporary directory when that is on the current directory's filesystem,
// else in the current directory: the outputs must land on the disk the
// bench is about.
func workDir(cfg *config, stderr io.Writer) (string, func(), error) {
	if cfg.dir != "" {
		if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
			return "", nil, err
		}
		// A directory given is kept; only what the bench made in it goes.
		return cfg.dir, func() {
			if !cfg.keep {
				for _, name := range []string{"keys", "release", "out", "bin", "in"} {
					os.RemoveAll(filepath.Join(cfg.dir, name))
				}
			}
		}, nil
	}
	parent := "."
	if sameDevice(os.TempDir(), ".") {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "upkeep-bench-")
	if err != nil {
		return "", nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", nil, err
	}
	return dir, func() {
		if cfg.keep {
			fmt.Fprintf(stderr, "bench: kept %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}, nil
}

func sameDevice(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}

// checkSpace fails early when dir's filesystem cannot hold the input, the
// release and one output at a time.
func checkSpace(dir string, size int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // unknown: let the writes tell
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := 3*size + 64<<20; free < need {
		return fmt.Errorf("%s has %.1f GB free; the bench needs %.1f GB (the artifact three times)", dir, float64(free)/1e9, float64(need)/1e9)
	}
	return nil
}

// makeRelease generates the artifact, makes keys and packs a signed release
// in work, leaving only the keys and the release directory.
func makeRelease(ctx context.Context, cfg *config, work string, stderr io.Writer) (*release, error) {
	start := time.Now()
	in := filepath.Join(work, "in", artifactName)
	if err := os.MkdirAll(filepath.Dir(in), 0o755); err != nil {
		return nil, err
	}
	if err := generate(ctx, in, cfg.size); err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(in))
	generated := time.Since(start)

	now := time.Now().UTC().Truncate(time.Second)
	issued := now.Add(-time.Hour) // a clock a little behind still accepts it
	kd, err := sign.NewKeyDir(nil, issued, 30*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keys := filepath.Join(work, "keys")
	if err := sign.WriteKeyDir(keys, kd); err != nil {
		return nil, err
	}
	ring, err := kd.KeyRing()
	if err != nil {
		return nil, err
	}
	packStart := time.Now()
	p, err := sign.Pack(ctx, sign.PackConfig{
		In:  in,
		Out: filepath.Join(work, "release"),
		Manifest: verify.Manifest{
			Component: "bench",
			Version:   "1.0.0",
			Kind:      verify.KindApplication,
			Issued:    issued,
			Expires:   now.Add(7 * 24 * time.Hour),
		},
		ChunkSize: cfg.chunkSize,
		Key:       kd.Signing,
		Certs:     []verify.Envelope{kd.Cert},
		KeyRing:   ring,
	})
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	a := p.Manifest.Artifact
	fmt.Fprintf(stderr, "bench: generated %s in %s, packed in %s: %d chunks of %s, %s\n",
		cli.FormatSize(a.Size), generated.Round(time.Millisecond), time.Since(packStart).Round(time.Millisecond),
		len(a.Chunks), cli.FormatSize(a.ChunkSize), a.Digest)
	return &release{
		keys:     keys,
		dir:      p.Dir,
		manifest: filepath.Join(p.Dir, verify.ManifestFile),
		artifact: &a,
	}, nil
}

// generate writes size pseudo-random bytes (ChaCha8, fixed seed: the same
// artifact every run, and nothing a transport could compress) to path.
func generate(ctx context.Context, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	var seed [32]byte
	copy(seed[:], "upkeep bench artifact")
	src := rand.NewChaCha8(seed)
	buf := make([]byte, min(size, genBlock))
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		b := buf[:min(int64(len(buf)), left)]
		src.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		left -= int64(len(b))
	}
	return f.Close()
}
