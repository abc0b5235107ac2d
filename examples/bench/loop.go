//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// loopCommand runs the reference: this program, started again as a child,
// fetches a URL with the simplest Go loop that is fast (one GET, the body
// read with io.ReadFull into a 1 MiB buffer and hashed with crypto/sha256)
// and checks the digest. It is what the download issue calibrates its
// targets with, measured in the same run as the tools.
const loopCommand = "__loop"

// loopMain is the child's main: loopMain URL HEX.
func loopMain(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: bench "+loopCommand+" URL SHA256HEX")
		return 2
	}
	got, n, err := loop(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "bench loop:", err)
		return 1
	}
	if got != args[1] {
		fmt.Fprintf(stderr, "bench loop: DIGEST MISMATCH: got sha256 %s over %d bytes, want %s\n", got, n, args[1])
		return 1
	}
	fmt.Fprintf(stdout, "%s %d\n", got, n)
	return 0
}

func loop(url string) (string, int64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := io.ReadFull(resp.Body, buf)
		h.Write(buf[:n])
		total += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return "", total, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), total, nil
}
