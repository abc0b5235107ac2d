//go:build !linux

package download_test

import "testing"

// directWritable is false: the engine writes directly on Linux only.
func directWritable(t *testing.T) bool { return false }
