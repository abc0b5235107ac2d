//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/verify"
)

// report is everything a run measured.
type report struct {
	cfg        *config
	work       string
	artifact   *verify.Artifact
	machine    machine
	sinks      []*sinkResult
	loadBefore string
	loadAfter  string
}

type sinkResult struct {
	sink    string
	tools   []*toolResult
	skipped []string
}

type toolResult struct {
	tool
	runs []measure
}

// tool returns the result of the tool named name, or nil.
func (s *sinkResult) tool(name string) *toolResult {
	for _, t := range s.tools {
		if t.name == name {
			return t
		}
	}
	return nil
}

// stats are a tool's medians over its timed runs.
type stats struct {
	mbps, minMBps, maxMBps float64
	cpu                    float64 // CPU seconds per GiB
	rss, maxRSS            float64 // MiB
	wall                   float64 // seconds
}

func (t *toolResult) stats(size int64) stats {
	var rate, cpu, rss, wall []float64
	for _, m := range t.runs {
		rate = append(rate, mbps(size, m))
		cpu = append(cpu, cpuPerGiB(size, m))
		rss = append(rss, mib(m.rss))
		wall = append(wall, m.wall.Seconds())
	}
	return stats{
		mbps: median(rate), minMBps: slices.Min(rate), maxMBps: slices.Max(rate),
		cpu: median(cpu), rss: median(rss), maxRSS: slices.Max(rss), wall: median(wall),
	}
}

// mbps is throughput in decimal megabytes per second.
func mbps(size int64, m measure) float64 { return float64(size) / 1e6 / m.wall.Seconds() }

// cpuPerGiB is CPU seconds spent per GiB fetched.
func cpuPerGiB(size int64, m measure) float64 { return m.cpu.Seconds() / (float64(size) / (1 << 30)) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// median of xs (not empty); the mean of the middle two for an even count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Targets of the download issue.
const (
	targetDiskVsCurl   = 1.2
	targetDiskVsAria2  = 1.0
	targetCPUVsCurl    = 1.0
	targetMemoryVsCurl = 2.0
	targetRSSMiB       = 64
)

// check is one target and whether this run met it.
type check struct {
	what     string
	got      string
	met      bool
	measured bool
}

func (c check) String() string {
	verdict := "not measured"
	switch {
	case c.measured && c.met:
		verdict = "met"
	case c.measured:
		verdict = "MISSED"
	}
	return fmt.Sprintf("%-12s %s: %s", verdict, c.what, c.got)
}

// checks compares upkeep with the targets.
func (s *sinkResult) checks(size int64) []check {
	up := s.tool(toolUpkeep)
	if up == nil || len(up.runs) == 0 {
		return nil
	}
	u := up.stats(size)
	ratio := func(peer string, want float64, speed, atMost bool, what string) check {
		c := check{what: what, got: "peer skipped"}
		p := s.tool(peer)
		if p == nil || len(p.runs) == 0 {
			return c
		}
		ps := p.stats(size)
		r := u.mbps / ps.mbps
		if !speed {
			r = u.cpu / ps.cpu
		}
		c.measured = true
		c.got = fmt.Sprintf("%.2f×", r)
		if atMost {
			c.met = r <= want
		} else {
			c.met = r >= want
		}
		return c
	}
	var cs []check
	switch s.sink {
	case sinkDisk:
		cs = append(cs,
			ratio(toolCurl, targetDiskVsCurl, true, false, fmt.Sprintf("fetch to disk ≥ %.1f× curl+openssl (MB/s)", targetDiskVsCurl)),
			ratio(toolAria2, targetDiskVsAria2, true, false, fmt.Sprintf("fetch to disk ≥ %.1f× aria2c (MB/s)", targetDiskVsAria2)),
			ratio(toolCurl, targetCPUVsCurl, false, true, "CPU s/GiB ≤ curl+openssl's"),
		)
	case sinkMemory:
		cs = append(cs, ratio(toolCurlPipe, targetMemoryVsCurl, true, false,
			fmt.Sprintf("to an in-memory sink ≥ %.0f× curl | openssl (MB/s)", targetMemoryVsCurl)))
	}
	cs = append(cs, check{
		what:     fmt.Sprintf("peak RSS ≤ %d MiB (largest of the runs)", targetRSSMiB),
		got:      fmt.Sprintf("%.1f MiB", u.maxRSS),
		met:      u.maxRSS <= targetRSSMiB,
		measured: true,
	})
	return cs
}

func (r *report) print(w io.Writer) {
	a := r.artifact
	fmt.Fprintf(w, "\n# upkeep download benchmark\n\n")
	fmt.Fprintf(w, "command:   %s\n", r.cfg.command)
	m := r.machine
	fmt.Fprintf(w, "machine:   %d CPUs (%s%s), %s RAM, Linux %s %s, %s\n", m.cpus, m.cpuModel, m.sha, m.memory, m.kernel, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "tools:     %s\n", strings.Join(m.tools, "; "))
	fmt.Fprintf(w, "disk:      %s\n", m.disk)
	fmt.Fprintf(w, "artifact:  %s (%d bytes), %d chunks of %s, served by net/http.FileServer on 127.0.0.1\n",
		cli.FormatSize(a.Size), a.Size, len(a.Chunks), cli.FormatSize(a.ChunkSize))
	fmt.Fprintf(w, "runs:      %d timed per tool, interleaved round-robin (each round starting with the next tool), after %d warm-up round(s)\n", r.cfg.runs, r.cfg.warmup)
	fmt.Fprintf(w, "load avg:  before %s, after %s\n", r.loadBefore, r.loadAfter)
	if a.Size != 1<<30 {
		fmt.Fprintf(w, "note:      the issue's targets are stated for a 1 GiB artifact\n")
	}
	for _, s := range r.sinks {
		fmt.Fprintf(w, "\n## %s sink\n\n", s.sink)
		for _, t := range s.tools {
			fmt.Fprintf(w, "    %-13s %s\n", t.name, t.command)
		}
		for _, sk := range s.skipped {
			fmt.Fprintf(w, "    skipped: %s\n", sk)
		}
		fmt.Fprintf(w, "\n| tool | MB/s | MB/s min–max | CPU s/GiB | peak RSS MiB | wall s |\n|---|---:|---:|---:|---:|---:|\n")
		for _, t := range s.tools {
			st := t.stats(a.Size)
			fmt.Fprintf(w, "| %s | %.0f | %.0f–%.0f | %.2f | %.1f | %.2f |\n", t.name, st.mbps, st.minMBps, st.maxMBps, st.cpu, st.rss, st.wall)
		}
		if up := s.tool(toolUpkeep); up != nil {
			u := up.stats(a.Size)
			var rows []string
			for _, p := range s.tools {
				if p == up || p.name == toolReference {
					continue
				}
				ps := p.stats(a.Size)
				rows = append(rows, fmt.Sprintf("| upkeep / %s | %.2f× | %.2f× |", p.name, u.mbps/ps.mbps, u.cpu/ps.cpu))
			}
			if ref := s.tool(toolReference); ref != nil {
				rs := ref.stats(a.Size)
				rows = append(rows, fmt.Sprintf("| upkeep / %s (reference) | %.2f× | %.2f× |", ref.name, u.mbps/rs.mbps, u.cpu/rs.cpu))
			}
			if len(rows) > 0 {
				fmt.Fprintf(w, "\n| ratio of medians | MB/s | CPU s/GiB |\n|---|---:|---:|\n%s\n", strings.Join(rows, "\n"))
			}
			fmt.Fprintf(w, "\ntargets (download issue):\n")
			for _, c := range s.checks(a.Size) {
				fmt.Fprintf(w, "  %s\n", c)
			}
		}
	}
}

// machine describes where the bench ran.
type machine struct {
	cpus     int
	cpuModel string
	sha      string // ", SHA-NI" when the CPU has SHA extensions
	memory   string
	kernel   string
	tools    []string
	disk     string
}

func describeMachine(work string) machine {
	m := machine{cpus: runtime.NumCPU(), cpuModel: "unknown CPU", kernel: "?", memory: "?"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				m.cpuModel = strings.TrimSpace(v)
			case "flags":
				if slices.Contains(strings.Fields(v), "sha_ni") {
					m.sha = ", SHA-NI"
				}
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.memory = fmt.Sprintf("%.1f GiB", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	for _, v := range [][]string{{"curl", "--version"}, {"openssl", "version"}, {"aria2c", "--version"}} {
		if out, err := exec.Command(v[0], v[1:]...).Output(); err == nil {
			line, _, _ := strings.Cut(string(out), "\n")
			if v[0] == "curl" { // "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/..."
				f := strings.Fields(line)
				line = strings.Join(f[:min(2, len(f))], " ")
			}
			m.tools = append(m.tools, strings.TrimSpace(line))
		} else {
			m.tools = append(m.tools, v[0]+" not installed")
		}
	}
	m.disk = work + " " + mountOf(work)
	return m
}

// mountOf names the filesystem path is on, from /proc/self/mounts.
func mountOf(path string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	path = filepath.Clean(path)
	best, desc := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("(on %s: %s, %s)", mp, f[0], f[2])
		}
	}
	return desc
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
