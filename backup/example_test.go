package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/upkeephq/upkeep/backup"
)

// The agent snapshots the payment app's data before an install and
// restores it when the update is rolled back.
func Example() {
	ctx := context.Background()
	state, _ := os.MkdirTemp("", "upkeep-example-")
	defer os.RemoveAll(state)

	// The payment app's data.
	data := filepath.Join(state, "pos")
	os.MkdirAll(filepath.Join(data, "journal"), 0o700)
	os.WriteFile(filepath.Join(data, "journal", "batch-0042"), []byte("sale 1\nsale 2\n"), 0o600)

	journal, err := backup.NewFiles("journal", filepath.Join(data, "journal"))
	if err != nil {
		fmt.Println(err)
		return
	}
	hooks := []backup.Hook{journal}
	store, err := backup.OpenStore(filepath.Join(state, "backups"), backup.StoreConfig{Keep: 2})
	if err != nil {
		fmt.Println(err)
		return
	}

	snap, err := store.Create(ctx, "before payment-app@2.4.0", hooks)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("snapshot %q of %v: %d files\n", snap.Label, snap.Hooks, snap.Files)

	// The new version rewrites the journal in a format the old one cannot
	// read, then fails its health checks.
	os.WriteFile(filepath.Join(data, "journal", "batch-0042"), []byte("v2 format"), 0o600)
	os.WriteFile(filepath.Join(data, "journal", "v2.idx"), []byte("index"), 0o600)

	if err := store.Restore(ctx, snap.ID, hooks); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(filepath.Join(data, "journal", "batch-0042"))
	_, err = os.Stat(filepath.Join(data, "journal", "v2.idx"))
	fmt.Printf("restored: %q, v2.idx gone: %v\n", b, os.IsNotExist(err))
	// Output:
	// snapshot "before payment-app@2.4.0" of [journal]: 2 files
	// restored: "sale 1\nsale 2\n", v2.idx gone: true
}
