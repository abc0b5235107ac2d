package download

import (
	"bytes"
	"encoding/binary"
	"os"
	"sync/atomic"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/verify"
)

// resumeFile notes, for each worker, the chunk it is fetching and how many
// bytes of it are written: a killed download restarts each chunk where it
// stopped instead of from its start. It is written in place and never
// synced: after a power cut it may be stale or torn, which costs a refetch
// of the chunks it names (every chunk is verified whole before it counts),
// never correctness. Layout: a line naming the artifact, then one 16-byte
// slot per worker: chunk index + 1 (0 for none) and bytes written, little
// endian.
type resumeFile struct {
	f durable.File
	a *verify.Artifact
}

const resumeMagic = "UPKEEP-RESUME-1 "

func resumeHeader(a *verify.Artifact) []byte {
	return []byte(resumeMagic + a.Digest.Hex() + "\n")
}

func openResume(fsys durable.FS, path string, a *verify.Artifact) (*resumeFile, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &resumeFile{f: f, a: a}, nil
}

// prefixes returns, per chunk not yet verified, how many of its bytes the
// slots say are on disk. A file for another artifact is started afresh.
func (r *resumeFile) prefixes(have []atomic.Bool) []int64 {
	out := make([]int64, len(r.a.Chunks))
	hdr := resumeHeader(r.a)
	buf := make([]byte, len(hdr)+MaxParallel*16)
	n, _ := r.f.ReadAt(buf, 0)
	buf = buf[:n]
	if !bytes.HasPrefix(buf, hdr) {
		r.f.Truncate(0)
		r.f.WriteAt(hdr, 0)
		return out
	}
	for off := len(hdr); off+16 <= len(buf); off += 16 {
		i := int(binary.LittleEndian.Uint64(buf[off:])) - 1
		got := int64(binary.LittleEndian.Uint64(buf[off+8:]))
		if i >= 0 && i < len(out) && !have[i].Load() && got > 0 && got < r.a.Chunks[i].Size {
			out[i] = max(out[i], got)
		}
	}
	return out
}

// note records that worker w has written n bytes of chunk i.
func (r *resumeFile) note(w, i int, n int64) {
	if r == nil {
		return
	}
	var slot [16]byte
	binary.LittleEndian.PutUint64(slot[:8], uint64(i+1))
	binary.LittleEndian.PutUint64(slot[8:], uint64(n))
	r.f.WriteAt(slot[:], int64(len(resumeHeader(r.a)))+int64(w)*16)
}

func (r *resumeFile) close() {
	if r != nil {
		r.f.Close()
	}
}
