package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeProcesses runs the README's separate-process flow with real
// binaries: release keygen and pack, a server, then a terminal with -once,
// which must exit 0 with the release installed and the server told.
func TestReadmeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three programs")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "../release", "../server", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	fw := make([]byte, 3_000_000)
	rand.Read(fw)
	if err := os.WriteFile(filepath.Join(dir, "fw.bin"), fw, 0o644); err != nil {
		t.Fatal(err)
	}
	run("release", "keygen", "-dir", "keys")
	run("release", "pack", "-keys", "keys", "-in", "fw.bin", "-component", "firmware", "-version", "1.1.0",
		"-kind", "firmware", "-models", "P300", "-from", "~1.0", "-out", "rel-1.1.0")
	run("release", "verify", "-keys", "keys", "rel-1.1.0")

	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, filepath.Join(bin, "server"), "-keys", "keys", "-publish", "rel-1.1.0",
		"-heartbeat", "1s", "-addr", addr)
	srv.Dir = dir
	srv.Env = append(os.Environ(), "UPKEEP_ENROLLMENT=s3cret", "UPKEEP_OPERATOR_TOKEN=op")
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", srvLog.String())
		}
	}()
	waitListening(t, addr)

	term := exec.CommandContext(ctx, filepath.Join(bin, "terminal"), "-server", "http://"+addr, "-keys", "keys/root.pub",
		"-state", "t1", "-enrollment", "s3cret", "-serial", "SN0001", "-model", "P300", "-once")
	term.Dir = dir
	out, err := term.CombinedOutput()
	if err != nil {
		t.Fatalf("terminal -once: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "firmware@1.1.0 ended: committed (ok)") {
		t.Errorf("terminal output:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "t1", "firmware.bin"))
	if err != nil || !bytes.Equal(got, fw) {
		t.Fatalf("installed file differs from the release (%v)", err)
	}

	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/operator/terminals", nil)
	req.Header.Set("Authorization", "Bearer op")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var terms []struct {
		Serial     string `json:"serial"`
		Components []struct{ Name, Version string }
		LastResult *struct{ Outcome string } `json:"last_result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&terms); err != nil {
		t.Fatal(err)
	}
	if len(terms) != 1 || terms[0].Serial != "SN0001" || terms[0].LastResult == nil || terms[0].LastResult.Outcome != "committed" ||
		len(terms[0].Components) != 1 || terms[0].Components[0].Version != "1.1.0" {
		t.Errorf("server lists %+v", terms)
	}

	// The manual update: a technician with the maintenance password
	// installs 1.1.0 from the release directory on a second terminal.
	fails := func(want string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "terminal"), args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("terminal %s: %v, want a failure saying %q\n%s", strings.Join(args, " "), err, want, out)
		}
	}
	manual := []string{"install", "-package", "rel-1.1.0", "-keys", "keys/root.pub", "-state", "t2", "-server", "http://" + addr,
		"-enrollment", "s3cret", "-serial", "SN0002"}
	fails("no maintenance password is set", append(manual, "-password", "anything")...)
	fails("at least", "install", "-state", "t2", "-set-password", "short")
	run("terminal", "install", "-state", "t2", "-set-password", "correct horse battery")
	fails("wrong", append(manual, "-password", "tr0ub4dor")...)
	out = []byte(run("terminal", append(manual, "-password", "correct horse battery")...))
	if !strings.Contains(string(out), "firmware@1.1.0: committed (ok)") {
		t.Errorf("terminal install output:\n%s", out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "t2", "firmware.bin")); err != nil || !bytes.Equal(got, fw) {
		t.Fatalf("manually installed file differs from the release (%v)", err)
	}
	// The audit log names the credential the technician used.
	areq, _ := http.NewRequest("GET", "http://"+addr+"/v1/operator/audit", nil)
	areq.Header.Set("Authorization", "Bearer op")
	resp2, err := http.DefaultClient.Do(areq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	audit, err := io.ReadAll(resp2.Body)
	if err != nil || resp2.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/operator/audit: %d, %v", resp2.StatusCode, err)
	}
	if !strings.Contains(string(audit), "maintenance-password") || !strings.Contains(string(audit), "SN0002") &&
		!strings.Contains(string(audit), "firmware@1.1.0") {
		t.Errorf("the audit log does not name the maintenance password used on SN0002:\n%s", audit)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not listen on %s", addr)
}
