package verify_test

import (
	"crypto/sha256"
	"hash"
	"io"
	"testing"

	"github.com/upkeephq/upkeep/verify"
)

// BenchmarkHash compares the hash behind verify.NewHash (sha256-simd) with
// the standard library's, on chunk-sized writes:
//
//	go test -run X -bench Hash -count 6 ./verify | benchstat -col /impl -
func BenchmarkHash(b *testing.B) {
	for _, impl := range []struct {
		name string
		new  func() hash.Hash
	}{{"simd", verify.NewHash}, {"stdlib", sha256.New}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			buf := make([]byte, verify.DefaultChunkSize)
			h := impl.new()
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				h.Reset()
				h.Write(buf)
				h.Sum(nil)
			}
		})
	}
}

// BenchmarkChunker measures cutting and hashing an artifact in one pass,
// as `release pack` does.
func BenchmarkChunker(b *testing.B) {
	buf := make([]byte, 1<<20)
	const size = 64 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		c, err := verify.NewChunker(0, nil)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < size; n += len(buf) {
			c.Write(buf)
		}
		if _, err := c.Artifact("a.bin"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyChunks measures checking an artifact against its chunk
// list, as a terminal does with a package from local storage.
func BenchmarkVerifyChunks(b *testing.B) {
	data := make([]byte, 64<<20)
	c, _ := verify.NewChunker(0, nil)
	c.Write(data)
	a, err := c.Artifact("a.bin")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := verify.VerifyChunks(b.Context(), &sliceReader{data: data}, &a, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type sliceReader struct {
	data []byte
	off  int
}

func (r *sliceReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}
