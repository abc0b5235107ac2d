package durable_test

import (
	"testing"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

func TestOSConforms(t *testing.T) {
	durabletest.TestFS(t, func(t *testing.T) (durable.FS, string) { return durable.OS{}, t.TempDir() })
}
