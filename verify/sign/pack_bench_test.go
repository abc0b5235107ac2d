package sign_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// BenchmarkPack measures `release pack` on a 256 MiB artifact read from a
// file on disk (hot in the page cache after the first run): the copy, both
// hashes, the fsync and the signature. out=disk writes the release next to
// the input, as a real pack does, so the fsync's flush to the device counts;
// out=shm writes it to /dev/shm, where fsync is free, to show the CPU-bound
// part alone:
//
//	go test -run X -bench Pack -count 6 ./verify/sign | benchstat -
func BenchmarkPack(b *testing.B) {
	cfg := benchPackConfig(b)
	outs := []struct{ name, dir string }{{"disk", b.TempDir()}}
	if dir := shmDir(b); dir != "" {
		outs = append(outs, struct{ name, dir string }{"shm", dir})
	}
	for _, o := range outs {
		b.Run("out="+o.name, func(b *testing.B) {
			benchPack(b, cfg, filepath.Join(o.dir, "release"))
		})
	}
}

// BenchmarkPackWorkers shows how Pack scales with PackConfig.Workers,
// writing to /dev/shm so that the device does not hide it:
//
//	go test -run X -bench PackWorkers -count 6 ./verify/sign | benchstat -col /workers -
func BenchmarkPackWorkers(b *testing.B) {
	dir := shmDir(b)
	if dir == "" {
		b.Skip("no /dev/shm")
	}
	cfg := benchPackConfig(b)
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			cfg.Workers = w
			benchPack(b, cfg, filepath.Join(dir, "release"))
		})
	}
}

const benchPackSize = 256 << 20

// benchPackConfig writes a benchPackSize artifact and returns a PackConfig
// that packs it, with no Out.
func benchPackConfig(b *testing.B) sign.PackConfig {
	kd, err := sign.NewKeyDir(seeded(1), t0, 365*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ring, err := kd.KeyRing()
	if err != nil {
		b.Fatal(err)
	}
	in := filepath.Join(b.TempDir(), "app.bin")
	data := make([]byte, benchPackSize)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return sign.PackConfig{
		In: in,
		Manifest: verify.Manifest{
			Component: "payment-app",
			Version:   "2.0.0",
			Kind:      verify.KindApplication,
			Issued:    t0,
			Expires:   t0.Add(30 * 24 * time.Hour),
		},
		Key:     kd.Signing,
		Certs:   []verify.Envelope{kd.Cert},
		KeyRing: ring,
	}
}

// shmDir returns a fresh directory in /dev/shm, or "" if there is none.
func shmDir(b *testing.B) string {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return ""
	}
	dir, err := os.MkdirTemp("/dev/shm", "upkeep-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// benchPack packs cfg to out, removing it after each run, untimed.
func benchPack(b *testing.B, cfg sign.PackConfig, out string) {
	cfg.Out = out
	b.SetBytes(benchPackSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sign.Pack(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(cfg.Out); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
