//go:build !linux

package download

import "github.com/upkeephq/upkeep/durable"

// allocate extends f to size bytes.
func allocate(f durable.File, size int64) error { return f.Truncate(size) }
