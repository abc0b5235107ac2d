package backup

import (
	"context"
	"strings"

	"github.com/upkeephq/upkeep/durable"
)

// Hook saves and restores one kind of data that must survive an update:
// the transaction journal (流水), e-signatures, terminal parameters. A
// vendor writes one per kind, or uses [Files].
//
// A hook writes and reads its backup through fsys, the filesystem of the
// [Store] (durable.OS unless [StoreConfig.FS] says otherwise), never
// through the os package: tests swap in a filesystem that loses power
// (durabletest.CrashFS) to prove that no power cut loses a terminal's
// data. Where the hook's live data lives is the hook's business; [Files]
// takes its own filesystem for it ([NewFilesOn]).
//
// A [Store] calls the hooks in turn, from one goroutine; a Hook need not be
// safe for concurrent use unless it is shared between stores.
type Hook interface {
	// Name identifies the hook and names its directory in a snapshot. It
	// must pass [CheckName] and be unique among the hooks of a snapshot,
	// ignoring case (terminals keep backups on FAT-formatted cards).
	Name() string

	// Backup writes what must survive into dir, an empty directory on
	// fsys the store made for it. It may write regular files and
	// directories only (no symlinks), and only through fsys. It need not
	// fsync: the store does, once, for the whole snapshot. It must not
	// change the live data, and must return ctx.Err() promptly when ctx
	// is done.
	Backup(ctx context.Context, fsys durable.FS, dir string) error

	// Restore puts the data back from dir on fsys, which holds what
	// Backup wrote and which the store has verified byte for byte.
	// Restore must treat dir as read-only, make the live data identical
	// to what was backed up (removing what was created since), make what
	// it changed durable (fsynced) before it returns nil, and be
	// idempotent: the agent runs it again after a power cut, whatever the
	// cut left half done. It must check ctx before it changes anything
	// and return ctx.Err() if ctx is done.
	Restore(ctx context.Context, fsys durable.FS, dir string) error
}

// HookFuncs adapts two functions to a [Hook].
type HookFuncs struct {
	HookName string
	// BackupFunc is [Hook.Backup]: it writes into dir on fsys.
	BackupFunc func(ctx context.Context, fsys durable.FS, dir string) error
	// RestoreFunc is [Hook.Restore]: it reads dir on fsys.
	RestoreFunc func(ctx context.Context, fsys durable.FS, dir string) error
}

// Name returns h.HookName.
func (h HookFuncs) Name() string { return h.HookName }

// Backup calls h.BackupFunc, or fails if it is nil.
func (h HookFuncs) Backup(ctx context.Context, fsys durable.FS, dir string) error {
	if h.BackupFunc == nil {
		return invalid("hook %q has no BackupFunc", h.HookName)
	}
	return h.BackupFunc(ctx, fsys, dir)
}

// Restore calls h.RestoreFunc, or fails if it is nil.
func (h HookFuncs) Restore(ctx context.Context, fsys durable.FS, dir string) error {
	if h.RestoreFunc == nil {
		return invalid("hook %q has no RestoreFunc", h.HookName)
	}
	return h.RestoreFunc(ctx, fsys, dir)
}

// MaxHooks bounds the hooks of one snapshot.
const MaxHooks = 64

// CheckName reports whether name can name a hook: 1 to 64 ASCII letters,
// digits, '.', '_' and '-', starting with a letter or digit, and not the
// name of the snapshot manifest. Such a name is a safe file name on every
// file system a terminal uses.
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return invalid("hook name %.80q: want 1 to 64 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return invalid("hook name %q: want letters, digits, '.', '_' and '-', starting with a letter or digit", name)
		}
	}
	if strings.EqualFold(name, ManifestFile) {
		return invalid("hook name %q is reserved", name)
	}
	return nil
}

// checkHooks checks the names of a list of hooks and returns them.
func checkHooks(hooks []Hook) ([]string, error) {
	if len(hooks) == 0 {
		return nil, invalid("no hooks")
	}
	if len(hooks) > MaxHooks {
		return nil, invalid("%d hooks, limit %d", len(hooks), MaxHooks)
	}
	names := make([]string, len(hooks))
	seen := make(map[string]string, len(hooks))
	for i, h := range hooks {
		if h == nil {
			return nil, invalid("hook %d is nil", i)
		}
		name := h.Name()
		if err := CheckName(name); err != nil {
			return nil, err
		}
		folded := strings.ToLower(name)
		if prev, ok := seen[folded]; ok {
			return nil, invalid("hook names %q and %q collide", prev, name)
		}
		seen[folded] = name
		names[i] = name
	}
	return names, nil
}
