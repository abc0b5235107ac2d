package boltstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/boltstore"
)

// A server's data directory holds its fleet across restarts.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "upkeep-fleet")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		panic(err)
	}
	s.CreateTerminal(ctx, store.Terminal{ID: "t-1", Serial: "SN1", Model: "P300"})
	s.Close()

	s, err = boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	t, err := s.TerminalBySerial(ctx, "SN1")
	fmt.Println(t.ID, t.Model, err)
	// Output: t-1 P300 <nil>
}
