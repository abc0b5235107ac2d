package download_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// directWritable says whether the test's temporary directory takes
// O_DIRECT writes, as the engine uses them on Linux.
func directWritable(t *testing.T) bool {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "probe"), os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o600)
	if err != nil {
		t.Logf("no O_DIRECT in the temporary directory (%v): expecting writes through the page cache", err)
		return false
	}
	f.Close()
	return true
}
