// Package cli holds what the example programs share on the command line:
// reading the root keys a program trusts, signal handling and logging.
package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/upkeephq/upkeep/verify"
)

// KeyRing reads the root public key from path: a key directory written by
// `release keygen` (its root.pub is used) or a root.pub file itself. A
// terminal needs nothing else from the key directory.
func KeyRing(path string) (*verify.KeyRing, error) {
	if path == "" {
		return nil, fmt.Errorf("-keys is required: the key directory from `release keygen`, or its root.pub")
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		path = filepath.Join(path, "root.pub")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := verify.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return verify.NewKeyRing(k)
}

// Context returns a context cancelled on SIGINT or SIGTERM.
func Context() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Logger logs text to stderr at level ("debug", "info", "warn", "error").
func Logger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// Strings is a repeatable string flag.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }
