package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// tool runs the command in-process with a clock the test controls.
type tool struct {
	t   *testing.T
	now time.Time
}

type result struct {
	code           int
	stdout, stderr string
}

func (tl *tool) run(args ...string) result {
	tl.t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, now: func() time.Time { return tl.now }}
	code := run(context.Background(), args, e)
	return result{code, out.String(), errOut.String()}
}

// must runs args and fails the test unless it exits 0.
func (tl *tool) must(args ...string) result {
	tl.t.Helper()
	r := tl.run(args...)
	if r.code != exitOK {
		tl.t.Fatalf("release %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs args and checks the exit code and that stderr holds want.
func (tl *tool) fails(code int, want string, args ...string) result {
	tl.t.Helper()
	r := tl.run(args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		tl.t.Errorf("release %s: exit %d, want %d with %q in stderr\nstderr:\n%s",
			strings.Join(args, " "), r.code, code, want, r.stderr)
	}
	return r
}

func writeFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// copyDir copies a release directory, so each tampering starts clean.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestKeygenPackVerify(t *testing.T) {
	tl := &tool{t: t, now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	work := t.TempDir()
	keys := filepath.Join(work, "keys")

	r := tl.must("keygen", "-dir", keys)
	for _, name := range []string{"root.key", "root.pub", "signing.key", "signing.pub", "signing.cert.json"} {
		if _, err := os.Stat(filepath.Join(keys, name)); err != nil {
			t.Errorf("keygen did not write %s: %v", name, err)
		}
		if !strings.Contains(r.stdout, name) {
			t.Errorf("keygen's output does not mention %s", name)
		}
	}
	tl.fails(exitFailure, "already exists", "keygen", "-dir", keys)

	// A terminal holds root.pub and nothing else.
	terminal := filepath.Join(work, "terminal")
	os.Mkdir(terminal, 0o755)
	pub, _ := os.ReadFile(filepath.Join(keys, "root.pub"))
	os.WriteFile(filepath.Join(terminal, "root.pub"), pub, 0o644)

	in := filepath.Join(work, "Payment App.apk")
	data := writeFile(t, in, 300_000)
	rel := filepath.Join(work, "out", "payment-app-1.2.0")
	r = tl.must("pack", "-keys", keys, "-in", in, "-component", "payment-app", "-version", "1.2.0", "-out", rel,
		"-models", "A920, A80", "-hardware", "rev-b", "-from", ">=1.0.0, <1.2.0;~1.1", "-from", "1.1.5",
		"-floor", "1.0.0", "-chunk-size", "64K", "-expires", "720h",
		"-category", "security", "-requires", "firmware>=1.4, <2.0.0, params>=3")
	digest := verify.DigestBytes(data)
	for _, want := range []string{"payment-app@1.2.0", "300000 bytes in 5 chunks of 65536", string(digest), rel, "2025-07-01T12:00:00Z",
		"category   security", "requires   firmware >=1.4, <2.0.0; params >=3"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("pack's summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("pack wrote to stderr:\n%s", r.stderr)
	}
	copied, err := os.ReadFile(filepath.Join(rel, "Payment_App.apk"))
	if err != nil || !bytes.Equal(copied, data) {
		t.Fatalf("artifact copy: %v", err)
	}

	tl.now = tl.now.Add(time.Hour)
	for _, keyArg := range []string{terminal, filepath.Join(terminal, "root.pub")} {
		r = tl.must("verify", "-keys", keyArg, rel)
		for _, want := range []string{"ok         payment-app@1.2.0", "application", "A920, A80", "rev-b",
			">=1.0.0, <1.2.0; ~1.1; 1.1.5", "floor      1.0.0", "300000 bytes", "2025-07-01T12:00:00Z",
			"category   security", "requires   firmware >=1.4, <2.0.0; params >=3"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("verify's output lacks %q:\n%s", want, r.stdout)
			}
		}
	}
	// Flags after the directory work too.
	tl.must("verify", rel, "-keys", terminal)

	t.Run("tampered artifact", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		dir := copyDir(t, rel)
		path := filepath.Join(dir, "Payment_App.apk")
		b, _ := os.ReadFile(path)
		b[200_000] ^= 1
		os.WriteFile(path, b, 0o644)
		tl.fails(exitFailure, "digest mismatch in chunk 3", "verify", "-keys", terminal, dir)
	})
	t.Run("truncated artifact", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		dir := copyDir(t, rel)
		os.Truncate(filepath.Join(dir, "Payment_App.apk"), 299_999)
		tl.fails(exitFailure, "malformed", "verify", "-keys", terminal, dir)
	})
	t.Run("artifact with extra bytes", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		dir := copyDir(t, rel)
		f, _ := os.OpenFile(filepath.Join(dir, "Payment_App.apk"), os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte("x"))
		f.Close()
		tl.fails(exitFailure, "too large", "verify", "-keys", terminal, dir)
	})
	t.Run("tampered manifest", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		dir := copyDir(t, rel)
		path := filepath.Join(dir, "manifest.json")
		raw, _ := os.ReadFile(path)
		var b verify.Bundle
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		// Widen the release to every model: the signature must catch it.
		b.Manifest.Payload = bytes.Replace(b.Manifest.Payload, []byte(`"models":["A920","A80"],`), nil, 1)
		out, _ := verify.MarshalBundle(&b)
		os.WriteFile(path, out, 0o644)
		tl.fails(exitFailure, "signature mismatch", "verify", "-keys", terminal, dir)
	})
	t.Run("garbled manifest", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		dir := copyDir(t, rel)
		os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{"), 0o644)
		tl.fails(exitFailure, "malformed", "verify", "-keys", terminal, dir)
	})
	t.Run("another root", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		other := filepath.Join(t.TempDir(), "keys")
		tl.must("keygen", "-dir", other)
		tl.fails(exitFailure, "unknown key", "verify", "-keys", other, rel)
	})
	t.Run("expired", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now.Add(31 * 24 * time.Hour)}
		tl.fails(exitFailure, "expired", "verify", "-keys", terminal, rel)
	})
	t.Run("output not empty", func(t *testing.T) {
		tl := &tool{t: t, now: tl.now}
		tl.fails(exitFailure, "not an empty directory", "pack", "-keys", keys, "-in", in,
			"-component", "payment-app", "-version", "1.2.1", "-out", rel)
	})

	// Rotate the signing key; the terminal's root.pub does not change.
	tl.now = tl.now.Add(24 * time.Hour)
	old, _ := sign.ReadKeyDir(keys)
	r = tl.must("certify", "-keys", keys, "-validity", "365d")
	for _, name := range []string{"signing.key.", "signing.pub.", "signing.cert.json."} {
		if _, err := os.Stat(filepath.Join(keys, name+string(old.Signing.ID))); err != nil {
			t.Errorf("certify did not keep the old %s: %v", name, err)
		}
	}
	rotated, err := sign.ReadKeyDir(keys)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Signing.ID == old.Signing.ID || !strings.Contains(r.stdout, string(rotated.Signing.ID)) {
		t.Fatalf("certify kept signing key %s:\n%s", old.Signing.ID, r.stdout)
	}
	rel2 := filepath.Join(work, "out", "payment-app-1.3.0")
	r = tl.must("pack", "-keys", keys, "-in", in, "-component", "payment-app", "-version", "1.3.0", "-out", rel2,
		"-kind", "firmware", "-models", "A920", "-name", "fw.img")
	if !strings.Contains(r.stdout, string(rotated.Signing.ID)) {
		t.Errorf("pack after certify did not sign with the new key:\n%s", r.stdout)
	}
	tl.now = tl.now.Add(time.Minute)
	r = tl.must("verify", "-keys", terminal, rel2)
	if !strings.Contains(r.stdout, "firmware") || !strings.Contains(r.stdout, "fw.img") {
		t.Errorf("verify after rotation:\n%s", r.stdout)
	}
	// Releases signed before the rotation still verify.
	tl.must("verify", "-keys", terminal, rel)
}

func TestCertifyWithoutRootKey(t *testing.T) {
	tl := &tool{t: t, now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	keys := filepath.Join(t.TempDir(), "keys")
	tl.must("keygen", "-dir", keys, "-cert-validity", "30d")
	// The root kept offline: pack still works, certify cannot.
	if err := os.Remove(filepath.Join(keys, "root.key")); err != nil {
		t.Fatal(err)
	}
	tl.fails(exitFailure, "root private key not present", "certify", "-keys", keys)
	in := filepath.Join(t.TempDir(), "p.bin")
	writeFile(t, in, 10)
	r := tl.must("pack", "-keys", keys, "-in", in, "-component", "params", "-kind", "parameters",
		"-version", "3.0.0", "-out", filepath.Join(t.TempDir(), "rel"))
	// The certificate (30 days) ends before the manifest (90 days).
	if !strings.Contains(r.stderr, "warning: the signing key's certificate expires") {
		t.Errorf("no warning about the short certificate:\n%s", r.stderr)
	}
}

func TestPackProgress(t *testing.T) {
	tl := &tool{t: t, now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	keys := filepath.Join(t.TempDir(), "keys")
	tl.must("keygen", "-dir", keys)
	in := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, in, 10<<20)
	// Each look at the clock moves it on by 600ms: a slow pack.
	var out, errOut bytes.Buffer
	clock := tl.now
	e := &env{stdout: &out, stderr: &errOut, now: func() time.Time {
		clock = clock.Add(600 * time.Millisecond)
		return clock
	}}
	code := run(context.Background(), []string{"pack", "-keys", keys, "-in", in, "-component", "a",
		"-version", "1.0.0", "-out", filepath.Join(t.TempDir(), "rel")}, e)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "pack: 100%") {
		t.Fatalf("progress:\n%s", errOut.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "pack: ") || !strings.HasSuffix(l, "MB/s") {
			t.Errorf("progress line %q", l)
		}
	}
}

func TestProgress(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		calls   []time.Duration // when each report comes, after start
		total   int64
		printed int
	}{
		{"quick pack prints nothing", []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 8 << 20, 0},
		{"slow pack prints about once a second and at the end", []time.Duration{
			500 * time.Millisecond, 1100 * time.Millisecond, 1500 * time.Millisecond, 2200 * time.Millisecond, 2300 * time.Millisecond,
		}, 20 << 20, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var now time.Time
			p := &progress{w: &buf, now: func() time.Time { return now }, start: start}
			step := tt.total / int64(len(tt.calls))
			for i, d := range tt.calls {
				now = start.Add(d)
				done := step * int64(i+1)
				if i == len(tt.calls)-1 {
					done = tt.total
				}
				p.report(done, tt.total)
			}
			got := strings.Count(buf.String(), "\n")
			if got != tt.printed {
				t.Errorf("%d lines, want %d:\n%s", got, tt.printed, buf.String())
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tl := &tool{t: t, now: time.Now()}
	keys := filepath.Join(t.TempDir(), "keys")
	tl.must("keygen", "-dir", keys)
	in := filepath.Join(t.TempDir(), "a.bin")
	writeFile(t, in, 10)
	out := filepath.Join(t.TempDir(), "rel")
	packArgs := func(extra ...string) []string {
		return append([]string{"pack", "-keys", keys, "-in", in, "-component", "a", "-version", "1.0.0", "-out", out}, extra...)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr, or in stdout for exit 0
	}{
		{"no arguments", nil, exitUsage, "Usage:"},
		{"help", []string{"help"}, exitOK, "signing.cert.json"},
		{"-h", []string{"-h"}, exitOK, "Exit status"},
		{"unknown command", []string{"publish"}, exitUsage, `unknown command "publish"`},
		{"command help", []string{"pack", "-h"}, exitOK, ""},
		{"unknown flag", []string{"keygen", "-dir", keys, "-force"}, exitUsage, "-force"},
		{"keygen without -dir", []string{"keygen"}, exitUsage, "-dir is required"},
		{"keygen with an argument", []string{"keygen", "-dir", keys, "extra"}, exitUsage, `unexpected argument "extra"`},
		{"keygen with a bad validity", []string{"keygen", "-dir", keys, "-cert-validity", "two years"}, exitUsage, "invalid duration"},
		{"certify without -keys", []string{"certify"}, exitUsage, "-keys is required"},
		{"pack without -in", []string{"pack", "-keys", keys, "-component", "a", "-version", "1.0.0", "-out", out}, exitUsage, "-in is required"},
		{"pack without -version", []string{"pack", "-keys", keys, "-in", in, "-component", "a", "-out", out}, exitUsage, "-version is required"},
		{"pack with a bad kind", packArgs("-kind", "driver"), exitUsage, `-kind "driver"`},
		{"pack with a bad chunk size", packArgs("-chunk-size", "12Q"), exitUsage, "invalid size"},
		{"pack with a tiny chunk size", packArgs("-chunk-size", "100"), exitUsage, "-chunk-size 100"},
		{"pack with a bad expiry", packArgs("-expires", "-1h"), exitUsage, "must be positive"},
		{"pack with a bad version", packArgs("-version", "1.0"), exitFailure, "manifest version"},
		{"pack firmware without models", packArgs("-kind", "firmware"), exitFailure, "firmware must name the models"},
		{"pack with a bad category", packArgs("-category", "urgent"), exitUsage, `-category "urgent"`},
		{"pack with a requirement without a component", packArgs("-requires", ">=1.4"), exitUsage, "want a component"},
		{"pack with a requirement without a constraint", packArgs("-requires", "firmware"), exitUsage, "want a component and a version constraint"},
		{"pack with a bad requirement constraint", packArgs("-requires", "firmware>=one"), exitFailure, "requirement on firmware"},
		{"pack requiring its own component", packArgs("-requires", "a>=1"), exitFailure, "requires its own component"},
		{"pack with a missing input", append(packArgs(), "-in", in+".missing"), exitFailure, "no such file"},
		{"pack with missing keys", append(packArgs(), "-keys", keys+".missing"), exitFailure, "no such file"},
		{"verify without a directory", []string{"verify", "-keys", keys}, exitUsage, "want one release directory"},
		{"verify with two directories", []string{"verify", "-keys", keys, "a", "b"}, exitUsage, "want one release directory"},
		{"verify without -keys", []string{"verify", out}, exitUsage, "-keys is required"},
		{"verify a missing directory", []string{"verify", "-keys", keys, out + ".missing"}, exitFailure, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tl.run(tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			text := r.stderr
			if tt.code == exitOK {
				text = r.stdout + r.stderr
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, text)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a failed command left %s", out)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"720h", 720 * time.Hour, true},
		{"90d", 90 * 24 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, false},
		{"0d", 0, false},
		{"-1d", 0, false},
		{"-5m", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"ninety days", 0, false},
		{"999999999999d", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := (&durationFlag{90 * 24 * time.Hour}).String(); s != "90d" {
		t.Errorf("durationFlag.String() = %q", s)
	}
}

func TestRequiresFlag(t *testing.T) {
	tests := []struct {
		values []string
		want   string // requirements joined by "; ", or the error
	}{
		{[]string{"firmware>=1.4,params>=3"}, "firmware >=1.4; params >=3"},
		{[]string{"firmware>=1.4, params >=3"}, "firmware >=1.4; params >=3"},
		{[]string{"firmware >=1.0.0, <2.0.0, params ^3"}, "firmware >=1.0.0, <2.0.0; params ^3"},
		{[]string{"firmware>=1.4; params>=3"}, "firmware >=1.4; params >=3"},
		{[]string{"firmware>=1.4", "params>=3"}, "firmware >=1.4; params >=3"},
		{[]string{"payment-app ~2.1", "", " , "}, "payment-app ~2.1"},
		{[]string{"firmware>=1.4 || ^2"}, "firmware >=1.4 || ^2"},
		{[]string{"rev_b.2 =1.0.0"}, "rev_b.2 =1.0.0"},
		{[]string{">=1.4"}, `error: ">=1.4": want a component before the constraint, e.g. firmware>=1.4`},
		{[]string{"firmware>=1.4; <2"}, `error: "<2": want a component before the constraint, e.g. firmware>=1.4`},
		{[]string{"firmware"}, `error: "firmware": want a component and a version constraint, e.g. firmware>=1.4`},
		{[]string{"firmware1.4"}, `error: "firmware1.4": want a component and a version constraint, e.g. firmware>=1.4`},
	}
	for _, tt := range tests {
		f := &requiresFlag{}
		var err error
		for _, v := range tt.values {
			if err = f.Set(v); err != nil {
				break
			}
		}
		got := f.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want {
			t.Errorf("%q: %s, want %s", tt.values, got, tt.want)
		}
	}
}

func TestListFlag(t *testing.T) {
	f := &listFlag{sep: ";"}
	for _, v := range []string{">=1.0.0, <1.2.0; ~1.1", "", " 1.1.5 ;"} {
		f.Set(v)
	}
	want := []string{">=1.0.0, <1.2.0", "~1.1", "1.1.5"}
	if strings.Join(f.items, "|") != strings.Join(want, "|") {
		t.Errorf("items = %q, want %q", f.items, want)
	}
	if got := splitList(" A920, ,A80 ", ","); strings.Join(got, "|") != "A920|A80" {
		t.Errorf("splitList = %q", got)
	}
}
