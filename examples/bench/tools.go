//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// Tool names, as the report shows them.
const (
	toolUpkeep = "upkeep"
	// upkeep writing through the page cache (fetch -buffered), beside its
	// default O_DIRECT writes: what those are worth on this disk.
	toolBuffered  = "upkeep-buffered"
	toolCurl      = "curl+openssl"
	toolCurlPipe  = "curl|openssl"
	toolAria2     = "aria2c"
	toolReference = "go-loop"
)

// Peer names, as -peers takes them.
const (
	peerCurl  = "curl"
	peerAria2 = "aria2c"
)

// measure is what one timed run of a tool cost.
type measure struct {
	wall time.Duration
	cpu  time.Duration // user + system, of every process of the run
	rss  int64         // peak resident set in bytes (see then and alongside)
}

// then is m followed by n, one process after the other: the times add up,
// the peak is the larger one.
func (m measure) then(n measure) measure {
	return measure{wall: m.wall + n.wall, cpu: m.cpu + n.cpu, rss: max(m.rss, n.rss)}
}

// tool is one way of fetching the artifact, timed as separate processes.
type tool struct {
	name    string
	command string // as a reader would type it, with this run's paths
	run     func(ctx context.Context) (measure, error)
}

// lab is what the tools share: the release, the server, where outputs go.
type lab struct {
	cfg    *config
	rel    *release
	srv    *server
	outDir string
	upkeep string // the terminal binary
	self   string // this program, for the reference loop
	env    []string
}

// tools returns the tools timed for sink, and the peers skipped with why.
func (l *lab) tools(sink string) (tools []tool, skipped []string) {
	a := l.rel.artifact
	url := l.srv.artifactURL(a)
	out := filepath.Join(l.outDir, a.Name)
	fetch := []string{l.upkeep, "fetch", "-keys", l.rel.keys, "-manifest", l.rel.manifest, "-from", l.srv.url}
	if l.cfg.parallel > 0 {
		fetch = append(fetch, "-parallel", strconv.Itoa(l.cfg.parallel))
	}
	curlOK, curlWhy := installed("curl", "openssl")
	ariaOK, ariaWhy := installed("aria2c")

	if sink == sinkMemory {
		up := append(fetch, "-discard", "-quiet")
		tools = append(tools, tool{
			name:    toolUpkeep,
			command: shellJoin(up),
			run: func(ctx context.Context) (measure, error) {
				return l.timeOne(ctx, up, nil)
			},
		})
		if l.cfg.peers[peerCurl] {
			if curlOK {
				c := []string{"curl", "-sS", url}
				o := []string{"openssl", "dgst", "-sha256"}
				tools = append(tools, tool{
					name:    toolCurlPipe,
					command: shellJoin(c) + " | " + shellJoin(o),
					run: func(ctx context.Context) (measure, error) {
						var digest bytes.Buffer
						m, err := l.timePipe(ctx, c, o, &digest)
						if err != nil {
							return m, err
						}
						return m, checkOpenSSL(digest.String(), a)
					},
				})
			} else {
				skipped = append(skipped, toolCurlPipe+": "+curlWhy)
			}
		}
		if l.cfg.peers[peerAria2] {
			skipped = append(skipped, toolAria2+": has no in-memory sink")
		}
		ref := []string{l.self, loopCommand, url, a.Digest.Hex()}
		tools = append(tools, tool{
			name:    toolReference,
			command: "(reference) " + shellJoin(ref) + "  # GET, io.ReadFull into 1 MiB, crypto/sha256",
			run: func(ctx context.Context) (measure, error) {
				return l.timeOne(ctx, ref, nil)
			},
		})
		return tools, skipped
	}

	for _, v := range []struct {
		name  string
		extra []string
	}{{toolUpkeep, nil}, {toolBuffered, []string{"-buffered"}}} {
		up := append(append(append([]string{}, fetch...), v.extra...), "-out", out, "-quiet")
		tools = append(tools, tool{
			name:    v.name,
			command: shellJoin(up),
			run: func(ctx context.Context) (measure, error) {
				if err := clean(out, out+".partial", out+".partial.resume"); err != nil {
					return measure{}, err
				}
				m, err := l.timeOne(ctx, up, nil)
				if err != nil {
					return m, err
				}
				return m, checkFile(ctx, out, a)
			},
		})
	}
	if l.cfg.peers[peerCurl] {
		if curlOK {
			c := []string{"curl", "-sS", "-o", out, url}
			o := []string{"openssl", "dgst", "-sha256", out}
			tools = append(tools, tool{
				name:    toolCurl,
				command: shellJoin(c) + " && " + shellJoin(o),
				run: func(ctx context.Context) (measure, error) {
					if err := clean(out); err != nil {
						return measure{}, err
					}
					m, err := l.timeOne(ctx, c, nil)
					if err != nil {
						return m, err
					}
					var digest bytes.Buffer
					m2, err := l.timeOne(ctx, o, &digest)
					if err != nil {
						return m, err
					}
					return m.then(m2), checkOpenSSL(digest.String(), a)
				},
			})
		} else {
			skipped = append(skipped, toolCurl+": "+curlWhy)
		}
	}
	if l.cfg.peers[peerAria2] {
		if ariaOK {
			// Defaults, except what it takes to run unattended and
			// reproducibly: quiet, overwrite in place, no config file.
			ar := []string{"aria2c", "-x4", "-s4", "--checksum=sha-256=" + a.Digest.Hex(),
				"-d", l.outDir, "-o", a.Name, "--allow-overwrite=true", "--auto-file-renaming=false",
				"--no-conf=true", "-q", url}
			tools = append(tools, tool{
				name:    toolAria2,
				command: shellJoin(ar),
				run: func(ctx context.Context) (measure, error) {
					if err := clean(out, out+".aria2"); err != nil {
						return measure{}, err
					}
					m, err := l.timeOne(ctx, ar, nil)
					if err != nil {
						return m, err
					}
					return m, checkFile(ctx, out, a)
				},
			})
		} else {
			skipped = append(skipped, toolAria2+": "+ariaWhy+" (apt-get install aria2)")
		}
	}
	return tools, skipped
}

// installed reports whether every command is on PATH, and if not which is
// missing.
func installed(cmds ...string) (bool, string) {
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			return false, c + " is not installed"
		}
	}
	return true, ""
}

// clean removes what a previous run left and flushes dirty pages, so that
// no run pays for another's writeback.
func clean(paths ...string) error {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	syscall.Sync()
	return nil
}

// timeOne runs argv and measures it. Its standard output goes to stdout
// (nil: discarded).
func (l *lab) timeOne(ctx context.Context, argv []string, stdout io.Writer) (measure, error) {
	cmd := l.command(ctx, argv)
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	floor := lowerRSSFloor()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measure{}, err
	}
	probe := watchRSS(cmd.Process.Pid, floor)
	err := cmd.Wait()
	wall := time.Since(start)
	rss := probe.peak(cmd.ProcessState)
	if err != nil {
		return measure{}, procError(argv, err, &stderr, ctx)
	}
	return measure{wall: wall, cpu: cpuOf(cmd.ProcessState), rss: rss}, nil
}

// timePipe runs a | b, b's output going to stdout, and measures both: the
// wall time from the first start to the last exit, the CPU time of both,
// and as the peak the sum of both peaks (they run at once).
func (l *lab) timePipe(ctx context.Context, a, b []string, stdout io.Writer) (measure, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return measure{}, err
	}
	ca, cb := l.command(ctx, a), l.command(ctx, b)
	var ea, eb tailBuffer
	ca.Stdout, ca.Stderr = w, &ea
	cb.Stdin, cb.Stdout, cb.Stderr = r, stdout, &eb
	floor := lowerRSSFloor()
	start := time.Now()
	if err := ca.Start(); err != nil {
		r.Close()
		w.Close()
		return measure{}, err
	}
	pa := watchRSS(ca.Process.Pid, floor)
	errB := cb.Start()
	var pb *rssProbe
	if errB == nil {
		pb = watchRSS(cb.Process.Pid, floor)
	}
	// The children hold the pipe now: b sees EOF once a exits.
	r.Close()
	w.Close()
	errA := ca.Wait()
	rssA := pa.peak(ca.ProcessState)
	var rssB int64
	if errB == nil {
		errB = cb.Wait()
		rssB = pb.peak(cb.ProcessState)
	}
	wall := time.Since(start)
	switch {
	case errA != nil:
		return measure{}, procError(a, errA, &ea, ctx)
	case errB != nil:
		return measure{}, procError(b, errB, &eb, ctx)
	}
	return measure{
		wall: wall,
		cpu:  cpuOf(ca.ProcessState) + cpuOf(cb.ProcessState),
		rss:  rssA + rssB,
	}, nil
}

func (l *lab) command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = l.env
	cmd.Dir = l.outDir
	return cmd
}

func procError(argv []string, err error, stderr *tailBuffer, ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := strings.TrimSpace(stderr.String())
	if msg != "" {
		msg = "\n" + msg
	}
	return fmt.Errorf("%s: %w%s", shellJoin(argv), err, msg)
}

// cpuOf is the user and system time of a process and the children it
// waited for.
func cpuOf(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// childEnv is the environment without proxy settings: every tool talks to
// 127.0.0.1 directly.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(strings.ToLower(k), "_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// checkOpenSSL checks the output of openssl dgst -sha256
// ("SHA2-256(FILE)= HEX", or "SHA256(FILE)= HEX" before OpenSSL 3) against
// a's digest.
func checkOpenSSL(out string, a *verify.Artifact) error {
	got, err := parseOpenSSL(out)
	if err != nil {
		return err
	}
	if got != a.Digest.Hex() {
		return fmt.Errorf("DIGEST MISMATCH: openssl says sha256 %s, the manifest %s", got, a.Digest.Hex())
	}
	return nil
}

func parseOpenSSL(out string) (string, error) {
	line := strings.TrimSpace(out)
	i := strings.LastIndex(line, "= ")
	if i < 0 || strings.ContainsRune(line, '\n') {
		return "", fmt.Errorf("openssl dgst printed %.200q, want one line ending in \"= <hex>\"", out)
	}
	hex := line[i+2:]
	if _, err := verify.ParseDigest("sha256:" + hex); err != nil {
		return "", fmt.Errorf("openssl dgst printed %.200q: %w", out, err)
	}
	return hex, nil
}

// checkFile hashes the file a tool wrote (untimed) and compares it with
// the manifest.
func checkFile(ctx context.Context, path string, a *verify.Artifact) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("the output: %w", err)
	}
	defer f.Close()
	d := verify.NewDigester(nil)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(buf)
		d.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if got := d.Digest(); got != a.Digest || d.Size() != a.Size {
		return fmt.Errorf("OUTPUT MISMATCH: %s holds %d bytes with %s, the manifest says %d bytes with %s",
			path, d.Size(), got, a.Size, a.Digest)
	}
	return nil
}

// tailBuffer keeps the last 8 KiB written to it: enough of a failing
// tool's stderr to say why.
type tailBuffer struct{ b []byte }

const tailMax = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
