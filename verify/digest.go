package verify

import (
	"encoding/hex"
	"hash"
	"io"
	"os"
	"strings"

	sha256simd "github.com/minio/sha256-simd"
)

// Digest names content by its SHA-256: "sha256:" and 64 lower-case hex
// digits. The zero Digest is empty and invalid.
type Digest string

const digestPrefix = "sha256:"

// NewHash returns a SHA-256 hash.Hash that uses the CPU's SHA extensions
// (SHA-NI on amd64, SHA2 on arm64) where present.
func NewHash() hash.Hash { return sha256simd.New() }

// NewDigest makes a Digest from a 32-byte SHA-256 sum.
func NewDigest(sum []byte) Digest {
	return Digest(digestPrefix + hex.EncodeToString(sum))
}

// ParseDigest parses and validates s.
func ParseDigest(s string) (Digest, error) {
	d := Digest(s)
	return d, d.Validate()
}

// Validate reports whether d is well formed.
func (d Digest) Validate() error {
	s := string(d)
	if !strings.HasPrefix(s, digestPrefix) {
		return malformed("digest %.80q: want sha256:<64 hex digits>", s)
	}
	h := s[len(digestPrefix):]
	if len(h) != 64 {
		return malformed("digest %.80q: want 64 hex digits", s)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return malformed("digest %.80q: want lower-case hex digits", s)
		}
	}
	return nil
}

// Hex returns the digest's hex digits, without the algorithm prefix.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), digestPrefix) }

func (d Digest) String() string { return string(d) }

// Digester hashes and counts what is written to it. It is not safe for
// concurrent use.
type Digester struct {
	h hash.Hash
	n int64
}

// NewDigester returns a Digester using newHash, or [NewHash] when nil.
func NewDigester(newHash func() hash.Hash) *Digester {
	if newHash == nil {
		newHash = NewHash
	}
	return &Digester{h: newHash()}
}

// Write hashes p. It never fails.
func (d *Digester) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return d.h.Write(p)
}

// Size returns the number of bytes written.
func (d *Digester) Size() int64 { return d.n }

// Digest returns the digest of what was written.
func (d *Digester) Digest() Digest { return NewDigest(d.h.Sum(nil)) }

// Reset forgets what was written.
func (d *Digester) Reset() { d.h.Reset(); d.n = 0 }

// readBufferSize is the buffer used when hashing streams: large reads keep
// the hash's per-call overhead negligible.
const readBufferSize = 1 << 20

// DigestReader hashes everything r yields.
func DigestReader(r io.Reader, newHash func() hash.Hash) (Digest, int64, error) {
	d := NewDigester(newHash)
	_, err := io.CopyBuffer(d, onlyReader{r}, make([]byte, readBufferSize))
	return d.Digest(), d.Size(), err
}

// DigestFile hashes the file at path.
func DigestFile(path string, newHash func() hash.Hash) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return DigestReader(f, newHash)
}

// DigestBytes hashes b with [NewHash].
func DigestBytes(b []byte) Digest {
	h := NewHash()
	h.Write(b)
	return NewDigest(h.Sum(nil))
}

// onlyReader hides WriterTo so io.CopyBuffer uses our buffer size.
type onlyReader struct{ io.Reader }
