package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/internal/bounded"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update/download"
	"github.com/upkeephq/upkeep/verify"
)

const fetchUsage = `usage: terminal fetch -keys KEYS -manifest FILE -from URL -out FILE [flags]

Checks the signed manifest against the root key, downloads the artifact from
any HTTP server with Range support that serves the release directory
'release pack' wrote (nginx, a CDN, upkeep's own server), verifying every
chunk as it streams, and writes it to FILE without installing anything.
A FILE.partial left by an interrupted run is resumed. Exits non-zero on any
failure.

  -keys KEYS      the key directory from 'release keygen', or its root.pub
  -manifest FILE  the release's manifest.json
  -from URL       the URL of the release directory, or of the artifact itself
  -out FILE       where to write the verified artifact
`

// fetch is `terminal fetch`: the download engine on its own, as it is timed
// from outside like any other download tool.
func fetch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, fetchUsage); fs.PrintDefaults() }
	keys := fs.String("keys", "", "")
	manifest := fs.String("manifest", "", "")
	from := fs.String("from", "", "")
	out := fs.String("out", "", "")
	parallel := fs.Int("parallel", download.DefaultParallel, "connections at once")
	rate := fs.Int64("rate", 0, "bandwidth cap in bytes per second (0: none)")
	discard := fs.Bool("discard", false, "verify without writing the file (-out is then ignored): to measure the engine without the disk")
	buffered := fs.Bool("buffered", false, "write through the page cache (default on Linux: O_DIRECT where the filesystem allows it)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if *keys == "" || *manifest == "" || *from == "" || (*out == "" && !*discard) || fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	ring, err := cli.KeyRing(*keys)
	if err != nil {
		return err
	}
	bundle, err := readBundle(*manifest)
	if err != nil {
		return err
	}
	m, err := ring.Open(bundle, time.Now())
	if err != nil {
		return fmt.Errorf("%s: %w", *manifest, err)
	}
	src, artifactURL, err := source(*from, m.Artifact.Name)
	if err != nil {
		return err
	}
	ctx, stop := cli.Context()
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	var bar *cli.Bar
	var progress func(download.Progress)
	if !*quiet {
		bar = cli.NewBar(stderr)
		progress = func(p download.Progress) { bar.Update(m.ID(), p.Done, p.Total, p.Rate, p.ETA) }
	}
	start := time.Now()
	res, err := download.Fetch(ctx, download.Config{
		Source: src, Mirrors: []string{artifactURL}, Artifact: &m.Artifact, Path: *out, Discard: *discard,
		Parallel: *parallel, RateLimit: *rate, Progress: progress, Buffered: *buffered,
	})
	if bar != nil {
		bar.Done()
	}
	if err != nil {
		var paused *download.PausedError
		if errors.As(err, &paused) {
			return err
		}
		return fmt.Errorf("%s: %w", m.ID(), err)
	}
	took := time.Since(start)
	where := *out
	if *discard {
		where = "(verified, discarded)"
	}
	fmt.Fprintf(stdout, "%s  %s verified in %s (%.1f MB/s; %s fetched, %s already on disk)  %s\n",
		m.ID(), cli.Bytes(res.Size), took.Round(time.Millisecond), float64(res.Fetched)/took.Seconds()/1e6,
		cli.Bytes(res.Fetched), cli.Bytes(res.Reused), where)
	return nil
}

func readBundle(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bounded.Read(f, verify.MaxBundleSize, path, verify.ErrTooLarge)
}

// source returns a client for the server at from and the artifact's URL:
// from itself if it names the artifact, else the artifact inside the
// directory from names.
func source(from, name string) (*httptransport.Client, string, error) {
	u, err := url.Parse(from)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("-from %q: want an http or https URL", from)
	}
	if path.Base(u.Path) != name {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + url.PathEscape(name)
	}
	origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
	c, err := httptransport.New(httptransport.Config{BaseURL: origin.String()})
	if err != nil {
		return nil, "", err
	}
	return c, u.String(), nil
}
