package verify_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/verify"
)

func sha(b []byte) verify.Digest {
	s := sha256.Sum256(b)
	return verify.NewDigest(s[:])
}

func TestParseDigest(t *testing.T) {
	valid := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", valid, true},
		{"of empty input", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true},
		{"empty", "", false},
		{"prefix only", "sha256:", false},
		{"no prefix", strings.Repeat("ab", 32), false},
		{"upper-case prefix", "SHA256:" + strings.Repeat("ab", 32), false},
		{"other algorithm", "sha512:" + strings.Repeat("ab", 32), false},
		{"upper-case hex", "sha256:" + strings.Repeat("AB", 32), false},
		{"63 digits", valid[:len(valid)-1], false},
		{"65 digits", valid + "0", false},
		{"not hex", "sha256:" + strings.Repeat("g", 64), false},
		{"space", "sha256: " + strings.Repeat("a", 63), false},
		{"trailing newline", valid + "\n", false},
		{"multi-byte rune", "sha256:" + strings.Repeat("a", 62) + "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := verify.ParseDigest(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseDigest(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, verify.ErrMalformed) {
					t.Errorf("error %v does not match ErrMalformed", err)
				}
				return
			}
			if d.String() != tt.in || "sha256:"+d.Hex() != tt.in {
				t.Errorf("String() = %q, Hex() = %q", d.String(), d.Hex())
			}
		})
	}
}

func TestNewDigestMatchesSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 64, 1 << 20} {
		b := randomBytes(n)
		want := sha(b)
		if err := want.Validate(); err != nil {
			t.Fatalf("NewDigest gave an invalid digest: %v", err)
		}
		if got := verify.DigestBytes(b); got != want {
			t.Errorf("DigestBytes(%d bytes) = %s, want %s", n, got, want)
		}
		h := verify.NewHash()
		h.Write(b)
		if got := verify.NewDigest(h.Sum(nil)); got != want {
			t.Errorf("NewHash over %d bytes = %s, want %s", n, got, want)
		}
	}
}

func TestDigester(t *testing.T) {
	data := randomBytes(10000)
	tests := []struct {
		name    string
		newHash func() hash.Hash
		writes  []int
	}{
		{"default hash, one write", nil, []int{10000}},
		{"default hash, odd writes", nil, []int{1, 0, 7, 4095, 4097, 1800}},
		{"crypto/sha256", sha256.New, []int{5000, 5000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := verify.NewDigester(tt.newHash)
			if d.Size() != 0 || d.Digest() != sha(nil) {
				t.Errorf("new Digester: %d bytes, %s", d.Size(), d.Digest())
			}
			rest := data
			for _, n := range tt.writes {
				if k, err := d.Write(rest[:n]); k != n || err != nil {
					t.Fatalf("Write(%d) = %d, %v", n, k, err)
				}
				rest = rest[n:]
			}
			if d.Size() != int64(len(data)) || d.Digest() != sha(data) {
				t.Errorf("Digester: %d bytes, %s; want %d, %s", d.Size(), d.Digest(), len(data), sha(data))
			}
			d.Reset()
			d.Write([]byte("x"))
			if d.Size() != 1 || d.Digest() != sha([]byte("x")) {
				t.Errorf("after Reset: %d bytes, %s", d.Size(), d.Digest())
			}
		})
	}
}

// errReader yields some bytes and then an error.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDigestReaderAndFile(t *testing.T) {
	data := randomBytes(3<<20 + 1)
	d, n, err := verify.DigestReader(bytes.NewReader(data), nil)
	if err != nil || n != int64(len(data)) || d != sha(data) {
		t.Errorf("DigestReader = %s, %d, %v", d, n, err)
	}
	d, n, err = verify.DigestReader(bytes.NewReader(data), sha256.New)
	if err != nil || n != int64(len(data)) || d != sha(data) {
		t.Errorf("DigestReader(crypto/sha256) = %s, %d, %v", d, n, err)
	}
	boom := errors.New("disk on fire")
	if _, n, err := verify.DigestReader(&errReader{data: data[:100], err: boom}, nil); !errors.Is(err, boom) || n != 100 {
		t.Errorf("DigestReader on a failing reader = %d, %v", n, err)
	}

	path := filepath.Join(t.TempDir(), "artifact")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d, n, err = verify.DigestFile(path, nil)
	if err != nil || n != int64(len(data)) || d != sha(data) {
		t.Errorf("DigestFile = %s, %d, %v", d, n, err)
	}
	if _, _, err := verify.DigestFile(path+".missing", nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DigestFile(missing) = %v, want ErrNotExist", err)
	}
	var _ io.Writer = verify.NewDigester(nil)
}
