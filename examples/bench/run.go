//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// run is the whole benchmark: it returns what it measured, having printed
// it to stdout, or the first failure.
func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) (*report, error) {
	work, cleanup, err := workDir(cfg, stderr)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if err := checkSpace(work, cfg.size); err != nil {
		return nil, err
	}
	rep := &report{cfg: cfg, work: work, loadBefore: loadAverage()}

	bin := cfg.upkeepBin
	if bin == "" {
		if bin, err = buildTerminal(ctx, filepath.Join(work, "bin")); err != nil {
			return nil, err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	rel, err := makeRelease(ctx, cfg, work, stderr)
	if err != nil {
		return nil, err
	}
	rep.artifact = rel.artifact
	srv, err := serve(rel.dir, rel.artifact)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	outDir := filepath.Join(work, "out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	l := &lab{cfg: cfg, rel: rel, srv: srv, outDir: outDir, upkeep: bin, self: self, env: childEnv()}
	rep.machine = describeMachine(work)
	if cfg.serveOnly {
		return rep, serveUntilDone(ctx, l, stdout)
	}

	for _, sink := range cfg.sinks {
		tools, skipped := l.tools(sink)
		sr := &sinkResult{sink: sink, skipped: skipped}
		for _, t := range tools {
			sr.tools = append(sr.tools, &toolResult{tool: t})
		}
		rep.sinks = append(rep.sinks, sr)
		fmt.Fprintf(stdout, "== %s sink: %d timed runs of each tool, interleaved, after %d warm-up round(s)\n", sink, cfg.runs, cfg.warmup)
		for _, s := range skipped {
			fmt.Fprintf(stdout, "   skipped %s\n", s)
		}
		rounds := cfg.warmup + cfg.runs
		for r := range rounds {
			// Each round starts with the next tool, so that none always
			// follows the same one.
			for k := range sr.tools {
				tr := sr.tools[(r+k)%len(sr.tools)]
				m, err := tr.run(ctx)
				if err != nil {
					return rep, fmt.Errorf("%s, %s sink, round %d: %w", tr.name, sink, r+1, err)
				}
				label := fmt.Sprintf("round %d/%d", r+1-cfg.warmup, cfg.runs)
				if r < cfg.warmup {
					label = fmt.Sprintf("warm-up %d/%d", r+1, cfg.warmup)
				} else {
					tr.runs = append(tr.runs, m)
				}
				fmt.Fprintf(stdout, "   %-13s %-13s %8.1f MB/s  %5.2f CPU s/GiB  %6.1f MiB  %6.2f s\n",
					label, tr.name, mbps(rel.artifact.Size, m), cpuPerGiB(rel.artifact.Size, m), mib(m.rss), m.wall.Seconds())
			}
		}
	}
	rep.loadAfter = loadAverage()
	rep.print(stdout)
	return rep, nil
}

// buildTerminal builds examples/terminal into dir, once, so that no run
// times the compiler.
func buildTerminal(ctx context.Context, dir string) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("the go command is not on PATH: build examples/terminal and pass it with -upkeep")
	}
	bin := filepath.Join(dir, "terminal")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/upkeephq/upkeep/examples/terminal")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build examples/terminal (run the bench from inside the upkeep module, or pass -upkeep): %v\n%s", err, out)
	}
	return bin, nil
}

// serveUntilDone prints each tool's command and serves the release until
// ctx is done.
func serveUntilDone(ctx context.Context, l *lab, stdout io.Writer) error {
	fmt.Fprintf(stdout, "serving %s at %s until interrupted\n", l.rel.dir, l.srv.url)
	for _, sink := range l.cfg.sinks {
		tools, skipped := l.tools(sink)
		fmt.Fprintf(stdout, "\n%s sink:\n", sink)
		for _, t := range tools {
			fmt.Fprintf(stdout, "  %-13s %s\n", t.name, t.command)
		}
		for _, s := range skipped {
			fmt.Fprintf(stdout, "  skipped %s\n", s)
		}
	}
	<-ctx.Done()
	return nil
}
