package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

func TestVerifyChunks(t *testing.T) {
	const cs = verify.MinChunkSize
	data := randomBytes(4*cs + 321)
	a := artifactFor(t, "app.bin", data)
	flip := func(off int) []byte {
		b := bytes.Clone(data)
		b[off] ^= 0x80
		return b
	}
	tests := []struct {
		name      string
		r         io.Reader
		wantErr   error
		wantChunk int // for a digest mismatch
	}{
		{"intact", bytes.NewReader(data), nil, 0},
		{"intact, one byte at a time", &oneByteReader{data}, nil, 0},
		{"first byte corrupt", bytes.NewReader(flip(0)), verify.ErrDigestMismatch, 0},
		{"middle chunk corrupt", bytes.NewReader(flip(2*cs + 5)), verify.ErrDigestMismatch, 2},
		{"last byte of a chunk corrupt", bytes.NewReader(flip(2*cs - 1)), verify.ErrDigestMismatch, 1},
		{"last byte corrupt", bytes.NewReader(flip(len(data) - 1)), verify.ErrDigestMismatch, 4},
		{"truncated in the last chunk", bytes.NewReader(data[:len(data)-1]), verify.ErrMalformed, 0},
		{"truncated at a chunk boundary", bytes.NewReader(data[:3*cs]), verify.ErrMalformed, 0},
		{"empty", bytes.NewReader(nil), verify.ErrMalformed, 0},
		{"one extra byte", bytes.NewReader(append(bytes.Clone(data), 0)), verify.ErrTooLarge, 0},
		{"a chunk too many", bytes.NewReader(append(bytes.Clone(data), data[:cs]...)), verify.ErrTooLarge, 0},
		{"read error", &errReader{data: data[:cs+1], err: errBoom}, errBoom, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.VerifyChunks(context.Background(), tt.r, &a, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyChunks() = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != verify.ErrDigestMismatch {
				return
			}
			var dm *verify.DigestMismatchError
			if !errors.As(err, &dm) {
				t.Fatalf("error %v is not a *DigestMismatchError", err)
			}
			c := a.Chunks[tt.wantChunk]
			if dm.What != "chunk" || dm.Index != tt.wantChunk || dm.Offset != c.Offset || dm.Want != c.Digest || dm.Got == c.Digest {
				t.Errorf("mismatch = %+v, want chunk %d at %d", dm, tt.wantChunk, c.Offset)
			}
		})
	}
}

var errBoom = errors.New("disk on fire")

type oneByteReader struct{ data []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

func TestVerifyChunksEmptyArtifact(t *testing.T) {
	a := artifactFor(t, "empty", nil)
	if err := verify.VerifyChunks(context.Background(), bytes.NewReader(nil), &a, nil); err != nil {
		t.Errorf("empty artifact: %v", err)
	}
	if err := verify.VerifyChunks(context.Background(), bytes.NewReader([]byte{1}), &a, nil); !errors.Is(err, verify.ErrTooLarge) {
		t.Errorf("empty artifact, one byte on disk: %v, want ErrTooLarge", err)
	}
}

func TestVerifyChunksHash(t *testing.T) {
	data := randomBytes(2*verify.MinChunkSize + 1)
	a := artifactFor(t, "app.bin", data)
	if err := verify.VerifyChunks(context.Background(), bytes.NewReader(data), &a, sha256.New); err != nil {
		t.Errorf("crypto/sha256: %v", err)
	}
}

func TestVerifyChunksCancelled(t *testing.T) {
	data := randomBytes(3 * verify.MinChunkSize)
	a := artifactFor(t, "app.bin", data)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := verify.VerifyChunks(ctx, bytes.NewReader(data), &a, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyChunks(cancelled) = %v, want context.Canceled", err)
	}
	// Cancelled after the first chunk is read: the next chunk is not.
	ctx, cancel = context.WithCancel(context.Background())
	r := &cancelAfter{r: bytes.NewReader(data), n: verify.MinChunkSize, cancel: cancel}
	if err := verify.VerifyChunks(ctx, r, &a, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyChunks(cancelled midway) = %v, want context.Canceled", err)
	}
}

// cancelAfter calls cancel once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// packRelease packs data into a release directory signed under p.
func packRelease(t *testing.T, p *pki, data []byte) (string, *sign.Packed) {
	t.Helper()
	in := filepath.Join(t.TempDir(), "app.apk")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := validManifest(t)
	m.Artifact = verify.Artifact{}
	out := filepath.Join(t.TempDir(), "release")
	packed, err := sign.Pack(context.Background(), sign.PackConfig{
		In: in, Out: out, Manifest: *m, ChunkSize: verify.MinChunkSize,
		Key: p.signing, Certs: []verify.Envelope{p.cert}, KeyRing: p.ring,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, packed
}

func TestOpenReleaseDir(t *testing.T) {
	const cs = verify.MinChunkSize
	p := newPKI(t, 1)
	stranger := newPKI(t, 2)
	data := randomBytes(5*cs + 77)
	expires := validManifest(t).Expires

	editFile := func(name string, edit func([]byte) []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, edit(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name      string
		edit      func(t *testing.T, dir string)
		ring      *verify.KeyRing
		at        time.Duration // after t0
		wantErr   error
		wantChunk int
	}{
		{name: "intact"},
		{name: "corrupt chunk 3", edit: editFile("app.apk", func(b []byte) []byte { b[3*cs+9]++; return b }),
			wantErr: verify.ErrDigestMismatch, wantChunk: 3},
		{name: "corrupt last chunk", edit: editFile("app.apk", func(b []byte) []byte { b[len(b)-1]++; return b }),
			wantErr: verify.ErrDigestMismatch, wantChunk: 5},
		{name: "truncated artifact", edit: editFile("app.apk", func(b []byte) []byte { return b[:len(b)-100] }),
			wantErr: verify.ErrMalformed},
		{name: "artifact with extra bytes", edit: editFile("app.apk", func(b []byte) []byte { return append(b, "more"...) }),
			wantErr: verify.ErrTooLarge},
		{name: "tampered manifest", edit: editFile(verify.ManifestFile, func(b []byte) []byte {
			bundle, _ := verify.ParseBundle(b)
			bundle.Manifest.Payload = bytes.Replace(bundle.Manifest.Payload, []byte(`"A920"`), []byte(`"A921"`), 1)
			return marshalBundle(t, bundle)
		}), wantErr: verify.ErrSignature},
		{name: "garbled manifest", edit: editFile(verify.ManifestFile, func(b []byte) []byte { return b[:len(b)/2] }),
			wantErr: verify.ErrMalformed},
		{name: "huge manifest", edit: editFile(verify.ManifestFile, func(b []byte) []byte {
			return append(b, bytes.Repeat([]byte(" "), verify.MaxBundleSize)...)
		}), wantErr: verify.ErrTooLarge},
		{name: "no manifest", edit: remove(verify.ManifestFile), wantErr: os.ErrNotExist},
		{name: "no artifact", edit: remove("app.apk"), wantErr: os.ErrNotExist},
		{name: "artifact is a directory", edit: func(t *testing.T, dir string) {
			remove("app.apk")(t, dir)
			if err := os.Mkdir(filepath.Join(dir, "app.apk"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, wantErr: verify.ErrMalformed},
		{name: "manifest is a directory", edit: func(t *testing.T, dir string) {
			remove(verify.ManifestFile)(t, dir)
			if err := os.Mkdir(filepath.Join(dir, verify.ManifestFile), 0o755); err != nil {
				t.Fatal(err)
			}
		}, wantErr: verify.ErrMalformed},
		{name: "key ring of another root", ring: stranger.ring, wantErr: verify.ErrUnknownKey},
		{name: "expired", at: expires.Sub(t0), wantErr: verify.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, packed := packRelease(t, p, data)
			if tt.edit != nil {
				tt.edit(t, dir)
			}
			ring := p.ring
			if tt.ring != nil {
				ring = tt.ring
			}
			now := t0.Add(tt.at)
			r, err := verify.OpenReleaseDir(context.Background(), dir, ring, now, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("OpenReleaseDir() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if tt.wantErr == verify.ErrDigestMismatch {
					var dm *verify.DigestMismatchError
					if !errors.As(err, &dm) || dm.Index != tt.wantChunk || dm.Offset != int64(tt.wantChunk)*cs {
						t.Errorf("mismatch = %v, want chunk %d", err, tt.wantChunk)
					}
				}
				return
			}
			if r.Dir != dir || !bytes.Equal(r.Bundle, packed.Bundle) || r.Manifest.ID() != "payment-app@2.1.0" {
				t.Errorf("opened %s %s", r.Dir, r.Manifest.ID())
			}
			if r.ArtifactPath() != filepath.Join(dir, "app.apk") {
				t.Errorf("ArtifactPath() = %s", r.ArtifactPath())
			}
		})
	}
}
