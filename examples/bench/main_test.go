//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// TestMain lets the test binary be the reference loop's child, as the
// bench binary is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == loopCommand {
		os.Exit(loopMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestBenchEndToEnd runs the bench at a tiny size: first upkeep alone to
// disk, keeping the work directory to compare its output with the
// release's artifact; then every installed tool in both sinks (peers not
// installed are skipped). Either run fails if a tool fails or writes wrong
// bytes.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/terminal and runs curl, openssl and aria2c where installed")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildTerminal(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bench := func(t *testing.T, args ...string) (*report, string) {
		t.Helper()
		cfg, err := parseFlags(append([]string{"-size", "8MiB", "-runs", "1", "-warmup", "0", "-upkeep", bin}, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		rep, err := run(ctx, cfg, &out, &errOut)
		if err != nil {
			t.Fatalf("bench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return rep, out.String()
	}

	t.Run("upkeep output", func(t *testing.T) {
		dir := t.TempDir()
		rep, out := bench(t, "-peers", "none", "-sink", "disk", "-dir", dir, "-keep")
		got, err := os.ReadFile(filepath.Join(dir, "out", artifactName))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "release", artifactName))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 8<<20 || !bytes.Equal(got, want) {
			t.Errorf("upkeep wrote %d bytes that differ from the release's %d", len(got), len(want))
		}
		if d := verify.NewDigest(sumOf(got)); d != rep.artifact.Digest {
			t.Errorf("output digest %s, manifest %s", d, rep.artifact.Digest)
		}
		for _, name := range []string{artifactName + ".partial", artifactName + ".partial.resume"} {
			if _, err := os.Stat(filepath.Join(dir, "out", name)); err == nil {
				t.Errorf("%s left behind", name)
			}
		}
		if !strings.Contains(out, "| upkeep |") {
			t.Errorf("no upkeep row in the table:\n%s", out)
		}
	})

	t.Run("all tools", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "work")
		rep, out := bench(t, "-sink", "both", "-dir", dir)
		if len(rep.sinks) != 2 {
			t.Fatalf("%d sinks measured, want 2", len(rep.sinks))
		}
		for _, s := range rep.sinks {
			want := map[string]bool{toolUpkeep: true}
			if s.sink == sinkMemory {
				want[toolReference] = true
			} else {
				want[toolBuffered] = true
			}
			if ok, _ := installed("curl", "openssl"); ok {
				want[map[string]string{sinkDisk: toolCurl, sinkMemory: toolCurlPipe}[s.sink]] = true
			}
			if ok, _ := installed("aria2c"); ok && s.sink == sinkDisk {
				want[toolAria2] = true
			}
			for _, tr := range s.tools {
				if !want[tr.name] {
					t.Errorf("%s sink: unexpected tool %s", s.sink, tr.name)
				}
				delete(want, tr.name)
				if len(tr.runs) != 1 {
					t.Errorf("%s sink: %s has %d runs, want 1", s.sink, tr.name, len(tr.runs))
				}
				for _, m := range tr.runs {
					if m.wall <= 0 || m.cpu <= 0 || m.rss <= 0 {
						t.Errorf("%s sink: %s measured %+v", s.sink, tr.name, m)
					}
				}
			}
			for name := range want {
				t.Errorf("%s sink: %s was not timed", s.sink, name)
			}
			if len(s.checks(rep.artifact.Size)) == 0 {
				t.Errorf("%s sink: no targets checked", s.sink)
			}
		}
		for _, w := range []string{"## disk sink", "## memory sink", "targets (download issue)", "machine:", "command:"} {
			if !strings.Contains(out, w) {
				t.Errorf("report lacks %q:\n%s", w, out)
			}
		}
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("the -dir given should stay: %v", err)
		}
		for _, name := range []string{"keys", "release", "out", "bin", "in"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s left in the work directory without -keep", name)
			}
		}
	})
}

func sumOf(b []byte) []byte {
	h := verify.NewHash()
	h.Write(b)
	return h.Sum(nil)
}

const hexA = "c06594dde58d4bfea90a96b9309ec16e15f37e705ceb72dac12b6472899c1f26"

func TestParseOpenSSL(t *testing.T) {
	tests := []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "SHA2-256(/tmp/x/artifact.bin)= " + hexA + "\n", want: hexA},
		{in: "SHA256(artifact.bin)= " + hexA, want: hexA},
		{in: "SHA2-256(stdin)= " + hexA + "\n", want: hexA},
		{in: "SHA2-256(a= b)= " + hexA + "\n", want: hexA},
		{in: "SHA2-256(stdin)= " + strings.ToUpper(hexA), bad: true},
		{in: "SHA2-256(stdin)= " + hexA[:60], bad: true},
		{in: hexA + "  artifact.bin", bad: true},
		{in: "SHA2-256(x)= " + hexA + "\nSHA2-256(y)= " + hexA, bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := parseOpenSSL(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseOpenSSL(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseOpenSSL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseOpenSSL(f *testing.F) {
	f.Add("SHA2-256(stdin)= " + hexA + "\n")
	f.Add("SHA256(x)= " + hexA)
	f.Add("= ")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseOpenSSL(s)
		if err != nil {
			return
		}
		if _, err := verify.ParseDigest("sha256:" + got); err != nil {
			t.Fatalf("parseOpenSSL(%q) = %q, not a digest: %v", s, got, err)
		}
	})
}

// TestChecksFailLoudly: a digest that differs from the manifest's is an
// error, whether openssl reports it or the bench hashes the output.
func TestChecksFailLoudly(t *testing.T) {
	data := []byte("the artifact")
	a := &verify.Artifact{Name: artifactName, Size: int64(len(data)), Digest: verify.NewDigest(sumOf(data))}
	path := filepath.Join(t.TempDir(), artifactName)
	tests := []struct {
		name    string
		openssl string
		file    []byte
		bad     bool
	}{
		{name: "match", openssl: "SHA2-256(f)= " + a.Digest.Hex(), file: data},
		{name: "mismatch", openssl: "SHA2-256(f)= " + hexA, file: []byte("the artifacT"), bad: true},
		{name: "short", openssl: "SHA2-256(f)= " + hexA, file: data[:3], bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkOpenSSL(tt.openssl, a); (err != nil) != tt.bad {
				t.Errorf("checkOpenSSL: %v, want error %v", err, tt.bad)
			}
			if err := os.WriteFile(path, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			err := checkFile(context.Background(), path, a)
			if (err != nil) != tt.bad {
				t.Errorf("checkFile: %v, want error %v", err, tt.bad)
			}
			if tt.bad && !strings.Contains(err.Error(), "MISMATCH") {
				t.Errorf("checkFile: %v does not shout MISMATCH", err)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{9, 9, 1, 1, 5}, 5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestTargets checks the verdicts against the targets from made-up
// measurements of a 1 GiB artifact.
func TestTargets(t *testing.T) {
	const size = 1 << 30
	at := func(mbps, cpuPerGiB, rssMiB float64) []measure {
		return []measure{{
			wall: time.Duration(float64(size) / 1e6 / mbps * float64(time.Second)),
			cpu:  time.Duration(cpuPerGiB * float64(time.Second)),
			rss:  int64(rssMiB * (1 << 20)),
		}}
	}
	tr := func(name string, runs []measure) *toolResult { return &toolResult{tool: tool{name: name}, runs: runs} }
	tests := []struct {
		name string
		sink *sinkResult
		want []string // verdicts in order
	}{
		{
			name: "disk, all met",
			sink: &sinkResult{sink: sinkDisk, tools: []*toolResult{
				tr(toolUpkeep, at(1300, 1.0, 20)), tr(toolCurl, at(1000, 1.5, 10)), tr(toolAria2, at(1200, 3, 20)),
			}},
			want: []string{"met", "met", "met", "met"},
		},
		{
			name: "disk, slower and hungrier",
			sink: &sinkResult{sink: sinkDisk, tools: []*toolResult{
				tr(toolUpkeep, at(1100, 2.0, 80)), tr(toolCurl, at(1000, 1.5, 10)), tr(toolAria2, at(1200, 3, 20)),
			}},
			want: []string{"MISSED", "MISSED", "MISSED", "MISSED"},
		},
		{
			name: "disk, no peers",
			sink: &sinkResult{sink: sinkDisk, tools: []*toolResult{tr(toolUpkeep, at(1100, 2.0, 20))}},
			want: []string{"not measured", "not measured", "not measured", "met"},
		},
		{
			name: "memory",
			sink: &sinkResult{sink: sinkMemory, tools: []*toolResult{
				tr(toolUpkeep, at(900, 1.2, 20)), tr(toolCurlPipe, at(400, 2.5, 10)), tr(toolReference, at(950, 1.1, 9)),
			}},
			want: []string{"met", "met"},
		},
		{
			name: "memory, exactly 2x",
			sink: &sinkResult{sink: sinkMemory, tools: []*toolResult{
				tr(toolUpkeep, at(800, 1.2, 64)), tr(toolCurlPipe, at(400, 2.5, 10)),
			}},
			want: []string{"met", "met"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := tt.sink.checks(size)
			if len(cs) != len(tt.want) {
				t.Fatalf("%d checks, want %d: %v", len(cs), len(tt.want), cs)
			}
			for i, c := range cs {
				verdict := "not measured"
				if c.measured {
					verdict = map[bool]string{true: "met", false: "MISSED"}[c.met]
				}
				if verdict != tt.want[i] {
					t.Errorf("check %d (%s): %s, want %s", i, c.what, verdict, tt.want[i])
				}
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args []string
		bad  bool
	}{
		{args: nil},
		{args: []string{"-size", "8MiB", "-runs", "1", "-sink", "both", "-peers", "curl"}},
		{args: []string{"-peers", "none"}},
		{args: []string{"-size", "0"}, bad: true},
		{args: []string{"-runs", "0"}, bad: true},
		{args: []string{"-sink", "tape"}, bad: true},
		{args: []string{"-peers", "wget"}, bad: true},
		{args: []string{"-chunk-size", "1K"}, bad: true},
		{args: []string{"-parallel", "65"}, bad: true},
		{args: []string{"extra"}, bad: true},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, io.Discard)
		if (err != nil) != tt.bad {
			t.Errorf("parseFlags(%q): %v, want error %v", tt.args, err, tt.bad)
		}
	}
}

func TestShellJoin(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"curl", "-sS", "-o", "/tmp/a b", "http://127.0.0.1:1/x"}, "curl -sS -o '/tmp/a b' http://127.0.0.1:1/x"},
		{[]string{"echo", "it's", ""}, `echo 'it'\''s' ''`},
	}
	for _, tt := range tests {
		if got := shellJoin(tt.in); got != tt.want {
			t.Errorf("shellJoin(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestVMHWM(t *testing.T) {
	if got := vmHWM("/proc/self/status"); got <= 0 {
		t.Errorf("vmHWM(/proc/self/status) = %d, want > 0", got)
	}
	if got := vmHWM(filepath.Join(t.TempDir(), "none")); got != 0 {
		t.Errorf("vmHWM of a missing file = %d, want 0", got)
	}
}
