package verify_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/verify"
)

func TestNewChunker(t *testing.T) {
	tests := []struct {
		name      string
		chunkSize int64
		ok        bool
	}{
		{"default", 0, true},
		{"minimum", verify.MinChunkSize, true},
		{"maximum", verify.MaxChunkSize, true},
		{"below minimum", verify.MinChunkSize - 1, false},
		{"above maximum", verify.MaxChunkSize + 1, false},
		{"negative", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := verify.NewChunker(tt.chunkSize, nil)
			if tt.ok != (err == nil) {
				t.Fatalf("NewChunker(%d) = %v, want ok=%v", tt.chunkSize, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, verify.ErrMalformed) {
					t.Errorf("error %v does not match ErrMalformed", err)
				}
				return
			}
			a, err := c.Artifact("a")
			if err != nil {
				t.Fatal(err)
			}
			want := tt.chunkSize
			if want == 0 {
				want = verify.DefaultChunkSize
			}
			if a.ChunkSize != want {
				t.Errorf("chunk size %d, want %d", a.ChunkSize, want)
			}
		})
	}
}

func TestChunker(t *testing.T) {
	const cs = verify.MinChunkSize
	tests := []struct {
		name   string
		size   int
		writes []int // write sizes, the last repeated until size is written; nil: one write
		chunks int
	}{
		{"empty", 0, nil, 0},
		{"empty writes", 0, []int{0}, 0},
		{"one byte", 1, nil, 1},
		{"less than a chunk", cs - 1, nil, 1},
		{"exactly one chunk", cs, nil, 1},
		{"exactly one chunk, byte by byte", cs, []int{1}, 1},
		{"one chunk and a byte", cs + 1, nil, 2},
		{"exactly three chunks", 3 * cs, nil, 3},
		{"three chunks and a remainder", 3*cs + 17, nil, 4},
		{"odd writes spanning chunks", 3*cs + 17, []int{1, 7, cs - 8, cs + 1, 3, 2*cs + 5}, 4},
		{"writes of a chunk and a byte", 5*cs + 3, []int{cs + 1}, 6},
		{"writes of a prime size", 7*cs + 999, []int{4099}, 8},
		{"one write of many chunks", 40*cs + 1, nil, 41},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(tt.size)
			c, err := verify.NewChunker(cs, nil)
			if err != nil {
				t.Fatal(err)
			}
			rest := data
			for i := 0; len(rest) > 0 || i == 0; i++ {
				n := len(rest)
				if tt.writes != nil {
					n = min(tt.writes[min(i, len(tt.writes)-1)], len(rest))
				}
				if k, err := c.Write(rest[:n]); k != n || err != nil {
					t.Fatalf("Write(%d) = %d, %v", n, k, err)
				}
				rest = rest[n:]
			}
			a, err := c.Artifact("app.bin")
			if err != nil {
				t.Fatalf("Artifact: %v", err)
			}
			if a.Name != "app.bin" || a.Size != int64(tt.size) || a.Digest != sha(data) || a.ChunkSize != cs {
				t.Errorf("artifact %q %d %s %d", a.Name, a.Size, a.Digest, a.ChunkSize)
			}
			if len(a.Chunks) != tt.chunks {
				t.Fatalf("%d chunks, want %d", len(a.Chunks), tt.chunks)
			}
			for i, ch := range a.Chunks {
				wantSize := int64(cs)
				if i == len(a.Chunks)-1 {
					wantSize = int64(tt.size) - int64(i)*cs
				}
				if ch.Offset != int64(i)*cs || ch.Size != wantSize {
					t.Errorf("chunk %d at %d size %d, want %d size %d", i, ch.Offset, ch.Size, int64(i)*cs, wantSize)
				}
				if want := sha(data[ch.Offset : ch.Offset+ch.Size]); ch.Digest != want {
					t.Errorf("chunk %d digest %s, want %s", i, ch.Digest, want)
				}
			}
		})
	}
}

func TestChunkerWriteSplitDoesNotMatter(t *testing.T) {
	data := randomBytes(9*verify.MinChunkSize + 123)
	one := artifactFor(t, "a", data)
	for _, step := range []int{1, 13, 4095, 4096, 4097, 65536} {
		c, _ := verify.NewChunker(verify.MinChunkSize, sha256.New)
		for off := 0; off < len(data); off += step {
			c.Write(data[off:min(off+step, len(data))])
		}
		a, err := c.Artifact("a")
		if err != nil {
			t.Fatal(err)
		}
		if a.Digest != one.Digest || len(a.Chunks) != len(one.Chunks) {
			t.Fatalf("writes of %d: %s, %d chunks; want %s, %d", step, a.Digest, len(a.Chunks), one.Digest, len(one.Chunks))
		}
		for i := range a.Chunks {
			if a.Chunks[i] != one.Chunks[i] {
				t.Errorf("writes of %d: chunk %d = %+v, want %+v", step, i, a.Chunks[i], one.Chunks[i])
			}
		}
	}
}

func TestChunkerArtifactName(t *testing.T) {
	c, _ := verify.NewChunker(0, nil)
	c.Write([]byte("x"))
	if _, err := c.Artifact("a/b"); !errors.Is(err, verify.ErrMalformed) {
		t.Errorf("Artifact(%q) = %v, want ErrMalformed", "a/b", err)
	}
}

// validArtifact returns a 3-chunk artifact of 2*4096+100 bytes.
func validArtifact() verify.Artifact {
	const cs = verify.MinChunkSize
	d := verify.DigestBytes([]byte("chunk"))
	return verify.Artifact{
		Name:      "app.bin",
		Size:      2*cs + 100,
		Digest:    verify.DigestBytes([]byte("whole")),
		ChunkSize: cs,
		Chunks: []verify.Chunk{
			{Offset: 0, Size: cs, Digest: d},
			{Offset: cs, Size: cs, Digest: d},
			{Offset: 2 * cs, Size: 100, Digest: d},
		},
	}
}

func TestArtifactValidate(t *testing.T) {
	const cs = verify.MinChunkSize
	tests := []struct {
		name    string
		edit    func(a *verify.Artifact)
		wantErr error
	}{
		{"valid", func(*verify.Artifact) {}, nil},
		{"empty artifact, no chunks", func(a *verify.Artifact) { a.Size, a.Chunks = 0, nil }, nil},
		{"chunks of varying size", func(a *verify.Artifact) {
			a.Chunks[0].Size, a.Chunks[1].Offset, a.Chunks[1].Size = 10, 10, 2*cs-10
		}, nil},
		{"chunk larger than chunk size", func(a *verify.Artifact) {
			a.Chunks = []verify.Chunk{{Offset: 0, Size: a.Size, Digest: a.Digest}}
		}, nil},
		{"no name", func(a *verify.Artifact) { a.Name = "" }, verify.ErrMalformed},
		{"name .", func(a *verify.Artifact) { a.Name = "." }, verify.ErrMalformed},
		{"name ..", func(a *verify.Artifact) { a.Name = ".." }, verify.ErrMalformed},
		{"name with slash", func(a *verify.Artifact) { a.Name = "../etc/passwd" }, verify.ErrMalformed},
		{"name with backslash", func(a *verify.Artifact) { a.Name = `..\boot` }, verify.ErrMalformed},
		{"name with NUL", func(a *verify.Artifact) { a.Name = "a\x00b" }, verify.ErrMalformed},
		{"name of 256 bytes", func(a *verify.Artifact) { a.Name = strings.Repeat("n", 256) }, verify.ErrMalformed},
		{"name of 255 bytes", func(a *verify.Artifact) { a.Name = strings.Repeat("n", 255) }, nil},
		{"negative size", func(a *verify.Artifact) { a.Size = -1 }, verify.ErrTooLarge},
		{"size above the limit", func(a *verify.Artifact) { a.Size = verify.MaxArtifactSize + 1 }, verify.ErrTooLarge},
		{"bad digest", func(a *verify.Artifact) { a.Digest = "sha256:00" }, verify.ErrMalformed},
		{"no digest", func(a *verify.Artifact) { a.Digest = "" }, verify.ErrMalformed},
		{"chunk size below minimum", func(a *verify.Artifact) { a.ChunkSize = verify.MinChunkSize - 1 }, verify.ErrMalformed},
		{"chunk size above maximum", func(a *verify.Artifact) { a.ChunkSize = verify.MaxChunkSize + 1 }, verify.ErrMalformed},
		{"too many chunks", func(a *verify.Artifact) { a.Chunks = make([]verify.Chunk, verify.MaxChunks+1) }, verify.ErrTooLarge},
		{"first chunk not at 0", func(a *verify.Artifact) { a.Chunks[0].Offset = 1 }, verify.ErrMalformed},
		{"gap", func(a *verify.Artifact) { a.Chunks[1].Offset = cs + 1 }, verify.ErrMalformed},
		{"overlap", func(a *verify.Artifact) { a.Chunks[1].Offset = cs - 1 }, verify.ErrMalformed},
		{"chunks out of order", func(a *verify.Artifact) { a.Chunks[0], a.Chunks[1] = a.Chunks[1], a.Chunks[0] }, verify.ErrMalformed},
		{"empty chunk", func(a *verify.Artifact) {
			a.Chunks = append(a.Chunks, verify.Chunk{Offset: a.Size, Size: 0, Digest: a.Digest})
		}, verify.ErrMalformed},
		{"negative chunk", func(a *verify.Artifact) { a.Chunks[2].Size = -100 }, verify.ErrMalformed},
		{"chunk above the maximum", func(a *verify.Artifact) {
			a.Size = verify.MaxChunkSize + 1
			a.Chunks = []verify.Chunk{{Offset: 0, Size: verify.MaxChunkSize + 1, Digest: a.Digest}}
		}, verify.ErrMalformed},
		{"bad chunk digest", func(a *verify.Artifact) { a.Chunks[1].Digest = "sha256:XX" }, verify.ErrMalformed},
		{"chunks cover less", func(a *verify.Artifact) { a.Size++ }, verify.ErrMalformed},
		{"chunks cover more", func(a *verify.Artifact) { a.Size-- }, verify.ErrMalformed},
		{"last chunk missing", func(a *verify.Artifact) { a.Chunks = a.Chunks[:2] }, verify.ErrMalformed},
		{"no chunks for a non-empty artifact", func(a *verify.Artifact) { a.Chunks = nil }, verify.ErrMalformed},
		{"chunk for an empty artifact", func(a *verify.Artifact) { a.Size = 0 }, verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validArtifact()
			tt.edit(&a)
			err := a.Validate()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestChunkAt(t *testing.T) {
	const cs = verify.MinChunkSize
	a := validArtifact() // chunks [0,cs) [cs,2cs) [2cs,2cs+100)
	tests := []struct {
		off  int64
		want int
	}{
		{-1, -1},
		{0, 0},
		{1, 0},
		{cs - 1, 0},
		{cs, 1},
		{2*cs - 1, 1},
		{2 * cs, 2},
		{2*cs + 99, 2},
		{2*cs + 100, -1},
		{1 << 40, -1},
	}
	for _, tt := range tests {
		if got := a.ChunkAt(tt.off); got != tt.want {
			t.Errorf("ChunkAt(%d) = %d, want %d", tt.off, got, tt.want)
		}
	}
	var empty verify.Artifact
	if got := empty.ChunkAt(0); got != -1 {
		t.Errorf("empty artifact: ChunkAt(0) = %d, want -1", got)
	}
	// Every byte of a many-chunk artifact maps to the chunk holding it.
	big := artifactFor(t, "big", randomBytes(37*cs+5))
	for off := int64(0); off < big.Size; off += 1021 {
		i := big.ChunkAt(off)
		if i < 0 || off < big.Chunks[i].Offset || off >= big.Chunks[i].Offset+big.Chunks[i].Size {
			t.Fatalf("ChunkAt(%d) = %d", off, i)
		}
	}
}
