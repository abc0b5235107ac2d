//go:build !linux

package download

import (
	"os"

	"github.com/upkeephq/upkeep/durable"
)

// openDirect returns nil: direct writes are used on Linux only.
func openDirect(fsys durable.FS, path string) *os.File { return nil }
