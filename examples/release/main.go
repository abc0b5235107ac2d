// Command release is upkeep's release tool: it makes the keys that sign
// releases, rotates the signing key, packs an artifact into a signed release
// directory, and verifies a release directory exactly as a terminal does.
//
//	go run ./examples/release keygen  -dir KEYS
//	go run ./examples/release certify -keys KEYS
//	go run ./examples/release pack    -keys KEYS -in FILE -component C -version V -out DIR
//	go run ./examples/release verify  -keys KEYS DIR
//
// Run it without arguments for the full usage, including the files each
// command writes. It is built on [github.com/upkeephq/upkeep/verify/sign]
// and [github.com/upkeephq/upkeep/verify] and uses nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usageText = `release: make release keys, pack signed upkeep releases, verify them as a terminal does.

Usage:
  release keygen  -dir KEYS [-cert-validity 730d]
  release certify -keys KEYS [-validity 730d]
  release pack    -keys KEYS -in FILE -component C -version V -out DIR [flags]
  release verify  -keys KEYS DIR

Commands, and the files they write:

  keygen   Creates the key directory KEYS (mode 0700) with a root key and a
           signing key the root certifies. Refuses to overwrite existing keys.
             KEYS/root.key           root private key (0600). Keep it offline:
                                     only certify needs it.
             KEYS/root.pub           root public key: the only file a terminal
                                     needs. Install it in the terminal image.
             KEYS/signing.key        signing private key (0600): signs releases.
             KEYS/signing.pub        signing public key.
             KEYS/signing.cert.json  the signing key's certificate, signed by
                                     the root, valid for -cert-validity.

  certify  Rotates the signing key: generates a new one and has KEYS/root.key
           certify it for -validity. Keeps the old files as
             KEYS/signing.key.<old keyid>, KEYS/signing.pub.<old keyid>,
             KEYS/signing.cert.json.<old keyid>
           then replaces KEYS/signing.key, signing.pub and signing.cert.json.
           Terminals need no change: root.pub stays the same.

  pack     Copies FILE into the release directory DIR (absent, or empty) and
           signs its manifest with KEYS/signing.key:
             DIR/<name>              the artifact (name: -name, or FILE's base
                                     name made safe)
             DIR/manifest.json       the signed bundle: the manifest with every
                                     chunk's SHA-256, and the signing key's
                                     certificate
           Reads KEYS/signing.key, KEYS/signing.cert.json and KEYS/root.pub (to
           check that terminals will accept the release). On failure it removes
           what it wrote.
           The manifest can say why the release exists (-category security,
           feature or maintenance) and what a terminal must have before it
           installs it (-requires 'firmware>=1.4, params>=3': a component and
           a version constraint each); the update server offers those
           releases first.

  verify   Verifies DIR with KEYS/root.pub only (KEYS may also be the root.pub
           file itself): the signatures, the certificate's and the manifest's
           validity, and every chunk of the artifact. Writes nothing.

Durations accept Go's units (720h, 90m) and days (90d). Sizes accept a K or M
suffix (64K, 1M; binary units).

Exit status: 0 success, 1 failure, 2 usage error.
Run 'release <command> -h' for a command's flags.
`

// env is what a command may touch besides its arguments, so a test can
// run the tool in-process.
type env struct {
	stdout, stderr io.Writer
	// now is the clock; nil means time.Now.
	now func() time.Time
	// rand is the key generators' randomness; nil means crypto/rand.
	rand io.Reader
}

func (e *env) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// usageError is an error in how the tool was called: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type command struct {
	name string
	run  func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"keygen", keygen},
		{"certify", certify},
		{"pack", pack},
		{"verify", verifyCmd},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// run runs the tool with args (without the program name) and returns its
// exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usageText)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "release %s: %v\nRun 'release %s -h' for its flags.\n", c.name, err, c.name)
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "release %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(e.stderr, "release: unknown command %q\n\n%s", args[0], usageText)
	return exitUsage
}

// newFlagSet returns a flag set for a command whose usage line is synopsis.
func newFlagSet(e *env, name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: release %s %s\n\n%s\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, flags and positional arguments in any order, and
// returns the positional ones. A flag error is a usage error; -h is
// flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// requireFlags returns a usage error naming the first empty flag.
func requireFlags(flags ...[2]string) error {
	for _, f := range flags {
		if f[1] == "" {
			return usagef("-%s is required", f[0])
		}
	}
	return nil
}

func noPositional(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}
