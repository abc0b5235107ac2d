//go:build linux

// Command bench times upkeep's download engine against the tools a vendor
// would otherwise use, in one run on loopback:
//
//	go run ./examples/bench [-size 1GiB] [-runs 5] [-sink disk|memory|both]
//
// It generates an artifact (pseudo-random bytes, so nothing compresses),
// makes release keys and packs a signed release of it into a work
// directory, serves that directory from an HTTP server inside this process
// on 127.0.0.1 (net/http's FileServer: Content-Length, Range, If-Range and
// a strong ETag), and then times each tool as a separate process, all
// writing to the work directory's disk:
//
//   - upkeep: `terminal fetch -quiet -out FILE` (examples/terminal, built
//     once with go build), which verifies every chunk against the signed
//     manifest and fsyncs before it exits; and again with -buffered, to
//     show what its O_DIRECT writes are worth against the page cache;
//   - curl+openssl: `curl -sS -o FILE URL`, then `openssl dgst -sha256 FILE`,
//     the two timed and summed, the digest checked against the manifest's;
//   - aria2c: `aria2c -x4 -s4 --checksum=sha-256=HEX ...`.
//
// With -sink memory nothing is written: `terminal fetch -discard` against
// `curl -sS URL | openssl dgst -sha256` (a pipe between the two processes,
// as a shell makes), and a reference: a minimal Go loop that reads the
// response with a 1 MiB buffer and hashes it.
//
// The tools run round-robin (each round starting with the next tool), the
// output file removed and the page cache's dirty pages synced before every
// run, and every output checked against the manifest's digest afterwards,
// untimed. Per run it measures the wall time and, from the child's rusage,
// the CPU time (user + system) and peak RSS; it prints the medians per tool
// (MB/s in decimal megabytes, CPU seconds per GiB, peak RSS in MiB), the
// ratios of upkeep to each peer, and whether the download issue's targets
// are met. A peer that is not installed is skipped, and said so.
//
// Benchmarks are not tests: a missed target is reported, not an error. The
// exit status is non-zero only when a tool fails or writes wrong bytes.
//
// Linux only: it reads rusage in Linux's units and the machine from /proc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/upkeephq/upkeep/examples/internal/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == loopCommand {
		os.Exit(loopMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// Sinks: where the fetched bytes go.
const (
	sinkDisk   = "disk"
	sinkMemory = "memory"
)

// config is what the flags say.
type config struct {
	size      int64
	chunkSize int64
	runs      int
	warmup    int
	dir       string
	keep      bool
	sinks     []string
	parallel  int
	peers     map[string]bool // the peers asked for
	upkeepBin string
	serveOnly bool   // prepare and serve, print the commands, run nothing
	command   string // the command line, for the report
}

const usage = `usage: go run ./examples/bench [flags]

Times upkeep's fetch against curl + openssl and aria2c on loopback, to the
same disk (-sink disk) or to no disk at all (-sink memory), interleaved, and
prints the medians, the ratios and whether the download issue's targets are
met. Peers that are not installed are skipped.

`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	size := cli.Size{N: 1 << 30, Max: maxSize}
	fs.Var(&size, "size", "artifact size (bytes, or with K, M, G, KiB, MiB, GiB: binary units)")
	chunk := cli.Size{Max: maxChunk}
	fs.Var(&chunk, "chunk-size", "the release's chunk size (0: the verify package's default, 1 MiB)")
	runs := fs.Int("runs", 5, "timed runs of each tool, interleaved")
	warmup := fs.Int("warmup", 1, "untimed rounds first")
	dir := fs.String("dir", "", "work directory: the release and the outputs (default: a new temporary one on the current directory's filesystem)")
	keep := fs.Bool("keep", false, "keep the work directory")
	sink := fs.String("sink", sinkDisk, "disk, memory, or both")
	parallel := fs.Int("parallel", 0, "passed to terminal fetch -parallel (0: its default)")
	peers := fs.String("peers", "curl,aria2c", "peers to time: curl (with openssl), aria2c; comma-separated, or none")
	upkeepBin := fs.String("upkeep", "", "a built examples/terminal binary to time (default: go build it into the work directory)")
	serveOnly := fs.Bool("serve", false, "make the release, serve it and print each tool's command, until interrupted: to profile or time a tool by hand")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) (*config, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintln(stderr, "bench:", err)
		fs.Usage()
		return nil, err
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	cfg := &config{
		size: size.N, chunkSize: chunk.N, runs: *runs, warmup: *warmup, dir: *dir, keep: *keep,
		parallel: *parallel, peers: map[string]bool{}, upkeepBin: *upkeepBin, serveOnly: *serveOnly,
		command: commandLine(args),
	}
	switch {
	case cfg.size <= 0:
		return bad("-size must be positive")
	case cfg.chunkSize != 0 && (cfg.chunkSize < minChunk || cfg.chunkSize > maxChunk):
		return bad("-chunk-size %d outside %d..%d", cfg.chunkSize, minChunk, maxChunk)
	case cfg.runs < 1 || cfg.runs > 1000:
		return bad("-runs %d: want 1..1000", cfg.runs)
	case cfg.warmup < 0 || cfg.warmup > 100:
		return bad("-warmup %d: want 0..100", cfg.warmup)
	case cfg.parallel < 0 || cfg.parallel > 64:
		return bad("-parallel %d: want 0..64", cfg.parallel)
	}
	switch *sink {
	case sinkDisk, sinkMemory:
		cfg.sinks = []string{*sink}
	case "both":
		cfg.sinks = []string{sinkDisk, sinkMemory}
	default:
		return bad("-sink %q: want disk, memory or both", *sink)
	}
	for _, p := range strings.Split(*peers, ",") {
		switch p = strings.TrimSpace(p); p {
		case peerCurl, peerAria2:
			cfg.peers[p] = true
		case "", "none":
		default:
			return bad("-peers: unknown peer %q (want curl, aria2c)", p)
		}
	}
	return cfg, nil
}

// commandLine is how the bench was started, as a reader would type it.
func commandLine(args []string) string {
	prog := "go run ./examples/bench"
	if exe := os.Args[0]; !strings.Contains(exe, "go-build") && !strings.HasSuffix(exe, ".test") {
		prog = exe
	}
	return strings.TrimSpace(prog + " " + shellJoin(args))
}

// shellJoin quotes args for a POSIX shell where needed.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
