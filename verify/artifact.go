package verify

import (
	"fmt"
	"hash"
	"strings"
)

// Chunking limits. A manifest outside them is refused as malformed before
// anything is downloaded.
const (
	// DefaultChunkSize is the chunk size [NewChunker] uses when given 0.
	DefaultChunkSize = 1 << 20
	// MinChunkSize and MaxChunkSize bound a chunk's size.
	MinChunkSize = 4 << 10
	MaxChunkSize = 64 << 20
	// MaxChunks bounds the number of chunks in one artifact.
	MaxChunks = 1 << 20
	// MaxArtifactSize bounds an artifact's size (256 GiB).
	MaxArtifactSize = 256 << 30
)

// Chunk is one piece of an artifact: where it starts, how long it is and the
// SHA-256 of its bytes.
type Chunk struct {
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Digest Digest `json:"digest"`
}

// Artifact describes an artifact's bytes: its file name in the release
// directory, size and digest, and its chunks. Chunks are contiguous and
// cover the artifact exactly; each carries its own offset and size, so
// chunks of varying size need no format change.
type Artifact struct {
	Name      string  `json:"name"`
	Size      int64   `json:"size"`
	Digest    Digest  `json:"digest"`
	ChunkSize int64   `json:"chunk_size"`
	Chunks    []Chunk `json:"chunks"`
}

// Validate checks the artifact's description against the format's rules
// and limits.
func (a *Artifact) Validate() error {
	if err := checkFileName(a.Name); err != nil {
		return err
	}
	if a.Size < 0 || a.Size > MaxArtifactSize {
		return fmt.Errorf("%w: artifact size %d outside 0..%d", ErrTooLarge, a.Size, int64(MaxArtifactSize))
	}
	if err := a.Digest.Validate(); err != nil {
		return err
	}
	if a.ChunkSize < MinChunkSize || a.ChunkSize > MaxChunkSize {
		return malformed("chunk size %d outside %d..%d", a.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if len(a.Chunks) > MaxChunks {
		return fmt.Errorf("%w: %d chunks, limit %d", ErrTooLarge, len(a.Chunks), MaxChunks)
	}
	var off int64
	for i, c := range a.Chunks {
		if c.Offset != off {
			return malformed("chunk %d starts at %d, want %d", i, c.Offset, off)
		}
		if c.Size <= 0 || c.Size > MaxChunkSize {
			return malformed("chunk %d size %d outside 1..%d", i, c.Size, MaxChunkSize)
		}
		if err := c.Digest.Validate(); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		off += c.Size
	}
	if off != a.Size {
		return malformed("chunks cover %d bytes, artifact is %d", off, a.Size)
	}
	return nil
}

// ChunkAt returns the index of the chunk holding byte offset off, or -1.
func (a *Artifact) ChunkAt(off int64) int {
	lo, hi := 0, len(a.Chunks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		c := a.Chunks[m]
		switch {
		case off < c.Offset:
			hi = m
		case off >= c.Offset+c.Size:
			lo = m + 1
		default:
			return m
		}
	}
	return -1
}

func checkFileName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return malformed("artifact name %q", name)
	case len(name) > 255:
		return malformed("artifact name of %d bytes", len(name))
	case strings.ContainsAny(name, "/\\\x00"):
		return malformed("artifact name %.80q must be a plain file name", name)
	}
	return nil
}

// Chunker computes an [Artifact] from a stream written to it: the whole
// digest and every chunk's digest in one pass. It is not safe for
// concurrent use.
type Chunker struct {
	newHash   func() hash.Hash
	chunkSize int64
	whole     *Digester
	cur       *Digester
	chunks    []Chunk
}

// NewChunker returns a Chunker cutting chunks of chunkSize bytes
// ([DefaultChunkSize] when 0) and hashing with newHash ([NewHash] when nil).
func NewChunker(chunkSize int64, newHash func() hash.Hash) (*Chunker, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return nil, malformed("chunk size %d outside %d..%d", chunkSize, MinChunkSize, MaxChunkSize)
	}
	if newHash == nil {
		newHash = NewHash
	}
	return &Chunker{
		newHash:   newHash,
		chunkSize: chunkSize,
		whole:     NewDigester(newHash),
		cur:       NewDigester(newHash),
	}, nil
}

// Write hashes p into the artifact and its chunks.
func (c *Chunker) Write(p []byte) (int, error) {
	n := len(p)
	if c.whole.Size()+int64(n) > MaxArtifactSize {
		return 0, fmt.Errorf("%w: artifact above %d bytes", ErrTooLarge, int64(MaxArtifactSize))
	}
	c.whole.Write(p)
	for len(p) > 0 {
		room := c.chunkSize - c.cur.Size()
		k := int64(len(p))
		if k > room {
			k = room
		}
		c.cur.Write(p[:k])
		p = p[k:]
		if c.cur.Size() == c.chunkSize {
			c.cut()
		}
	}
	return n, nil
}

func (c *Chunker) cut() {
	off := int64(0)
	if n := len(c.chunks); n > 0 {
		off = c.chunks[n-1].Offset + c.chunks[n-1].Size
	}
	c.chunks = append(c.chunks, Chunk{Offset: off, Size: c.cur.Size(), Digest: c.cur.Digest()})
	c.cur.Reset()
}

// Artifact returns the description of everything written, under name.
func (c *Chunker) Artifact(name string) (Artifact, error) {
	if c.cur.Size() > 0 {
		c.cut()
	}
	a := Artifact{
		Name:      name,
		Size:      c.whole.Size(),
		Digest:    c.whole.Digest(),
		ChunkSize: c.chunkSize,
		Chunks:    c.chunks,
	}
	return a, a.Validate()
}
