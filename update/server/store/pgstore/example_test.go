package pgstore_test

import (
	"context"
	"log"

	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/pgstore"
)

// Every replica opens the same database; the first to start migrates it.
func ExampleOpen() {
	ctx := context.Background()
	s, err := pgstore.Open(ctx, "postgres://upkeep@db.internal:5432/fleet?sslmode=verify-full", pgstore.Options{Schema: "upkeep"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	var _ store.Store = s // what the update server takes
}
