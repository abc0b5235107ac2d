package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

func pack(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "pack", "-keys KEYS -in FILE -component C -version V -out DIR [flags]",
		"Copies FILE into DIR (absent, or empty) and writes DIR/manifest.json, the\n"+
			"signed bundle terminals verify. Signs with KEYS/signing.key and\n"+
			"KEYS/signing.cert.json, and checks the result against KEYS/root.pub.\n")
	keys := fs.String("keys", "", "the key directory (required)")
	in := fs.String("in", "", "the artifact file to pack (required)")
	component := fs.String("component", "", `what the release updates, e.g. "payment-app" (required)`)
	version := fs.String("version", "", "the release's semantic version, e.g. 1.4.0 (required)")
	out := fs.String("out", "", "the release directory to write (required)")
	kind := fs.String("kind", string(verify.KindApplication), "firmware, application or parameters")
	models := fs.String("models", "", "comma-separated terminal models it is for (empty: any; firmware must name them)")
	hardware := fs.String("hardware", "", "comma-separated hardware revisions it is for (empty: any)")
	from := &listFlag{sep: ";"}
	fs.Var(from, "from", `version constraint the installed version must meet, e.g. ">=1.0.0, <1.4.0";`+
		"\nrepeat the flag or separate with ';' for alternatives (empty: any)")
	requires := &requiresFlag{}
	fs.Var(requires, "requires", `components a terminal must have first, each with a version constraint,`+
		"\n"+`e.g. "firmware>=1.4, params>=3"; repeatable (empty: none)`)
	category := fs.String("category", "", "why the release exists: security, feature or maintenance (empty: unsaid)")
	floor := fs.String("floor", "", "anti-rollback floor terminals adopt once it is installed")
	downgrade := fs.Bool("downgrade", false, "allow installing it over a newer version (never below the floor)")
	expires := &durationFlag{sign.DefaultExpiry}
	fs.Var(expires, "expires", "how long from now terminals accept the manifest")
	chunkSize := &cli.Size{N: verify.DefaultChunkSize, Max: verify.MaxChunkSize}
	fs.Var(chunkSize, "chunk-size", fmt.Sprintf("chunk size, %dK to %dM", verify.MinChunkSize>>10, verify.MaxChunkSize>>20))
	name := fs.String("name", "", "the artifact's file name in DIR (default: FILE's base name)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	if err := requireFlags([2]string{"keys", *keys}, [2]string{"in", *in}, [2]string{"component", *component},
		[2]string{"version", *version}, [2]string{"out", *out}); err != nil {
		return err
	}
	if k := verify.Kind(*kind); !k.Valid() {
		return usagef("-kind %q: want firmware, application or parameters", *kind)
	}
	if c := verify.Category(*category); c != "" && !c.Valid() {
		return usagef("-category %q: want security, feature or maintenance", *category)
	}
	if n := chunkSize.N; n < verify.MinChunkSize || n > verify.MaxChunkSize {
		return usagef("-chunk-size %d outside %d..%d", n, verify.MinChunkSize, verify.MaxChunkSize)
	}

	kd, err := sign.ReadKeyDir(*keys)
	if err != nil {
		return err
	}
	ring, err := kd.KeyRing()
	if err != nil {
		return err
	}
	now := e.clock().UTC().Truncate(time.Second)
	prog := &progress{w: e.stderr, now: e.clock, start: e.clock()}
	p, err := sign.Pack(ctx, sign.PackConfig{
		In:   *in,
		Out:  *out,
		Name: *name,
		Manifest: verify.Manifest{
			Component:         *component,
			Version:           *version,
			Kind:              verify.Kind(*kind),
			Category:          verify.Category(*category),
			Requires:          requires.items,
			Models:            splitList(*models, ","),
			HardwareRevisions: splitList(*hardware, ","),
			From:              from.items,
			Floor:             *floor,
			Downgrade:         *downgrade,
			Issued:            now,
			Expires:           now.Add(expires.d),
		},
		ChunkSize: chunkSize.N,
		Key:       kd.Signing,
		Certs:     []verify.Envelope{kd.Cert},
		KeyRing:   ring,
		Progress:  prog.report,
	})
	if err != nil {
		return err
	}
	m := p.Manifest
	a := m.Artifact
	if c, err := kd.KeyCert(); err == nil && c.Expires.Before(m.Expires) {
		fmt.Fprintf(e.stderr, "warning: the signing key's certificate expires at %s, before the manifest (%s):\n"+
			"         terminals refuse the release from then on; run certify and pack again before that\n",
			formatTime(c.Expires), formatTime(m.Expires))
	}
	fmt.Fprintf(e.stdout, "release    %s (%s)\n", m.ID(), m.Kind)
	if m.Category != "" {
		fmt.Fprintf(e.stdout, "category   %s\n", m.Category)
	}
	if len(m.Requires) > 0 {
		fmt.Fprintf(e.stdout, "requires   %s\n", requirements(m.Requires))
	}
	fmt.Fprintf(e.stdout, "artifact   %s, %d bytes in %d chunks of %d\n", a.Name, a.Size, len(a.Chunks), a.ChunkSize)
	fmt.Fprintf(e.stdout, "digest     %s\n", a.Digest)
	fmt.Fprintf(e.stdout, "signed by  %s (root %s)\n", kd.Signing.ID, kd.RootPublic.ID)
	fmt.Fprintf(e.stdout, "expires    %s\n", formatTime(m.Expires))
	fmt.Fprintf(e.stdout, "dir        %s\n", p.Dir)
	return nil
}

// progress prints a line to w about once a second while a pack runs, so a
// short pack prints nothing and a long one shows it is alive.
type progress struct {
	w       io.Writer
	now     func() time.Time
	start   time.Time
	last    time.Time
	printed bool
}

func (p *progress) report(done, total int64) {
	t := p.now()
	finished := done >= total
	if finished && !p.printed {
		return
	}
	if !finished && t.Sub(maxTime(p.start, p.last)) < time.Second {
		return
	}
	p.last, p.printed = t, true
	pct := int64(100)
	if total > 0 {
		pct = done * 100 / total
	}
	rate := 0.0
	if s := t.Sub(p.start).Seconds(); s > 0 {
		rate = float64(done) / 1e6 / s
	}
	fmt.Fprintf(p.w, "pack: %3d%%  %s of %s  %.1f MB/s\n", pct, mb(done), mb(total), rate)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
