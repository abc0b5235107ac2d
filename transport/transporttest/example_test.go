package transporttest_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/verify"
)

// A test publishes a signed release on a fake server, lets a terminal
// find it, and damages the download to see how the terminal copes.
func ExampleServer() {
	ctx := context.Background()
	keys, err := transporttest.NewKeys(time.Time{}, time.Time{})
	if err != nil {
		log.Fatal(err)
	}
	rel, err := keys.NewRelease(verify.Manifest{
		Component: "payment-app",
		Version:   "2.4.0",
		Models:    []string{"A920"},
	}, bytes.Repeat([]byte("new app "), 2048))
	if err != nil {
		log.Fatal(err)
	}

	srv := transporttest.NewServer(transporttest.Config{})
	if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{Blocking: true}); err != nil {
		log.Fatal(err)
	}

	c := srv.Client() // or an httptransport.Client on httptransport.NewHandler(srv)
	if _, err := c.Register(ctx, &transport.RegisterRequest{
		Enrollment: transporttest.DefaultEnrollment, Serial: "SN0001", Model: "A920",
	}); err != nil {
		log.Fatal(err)
	}
	check, err := c.Check(ctx, &transport.CheckRequest{
		Model:      "A920",
		Components: []transport.Component{{Name: "payment-app", Version: "2.3.0"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	ring, err := keys.KeyRing()
	if err != nil {
		log.Fatal(err)
	}
	m, err := ring.Open(check.Offers[0].Bundle, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("offered", m.ID(), "blocking:", check.Offers[0].Policy.Blocking)

	// The connection drops after 5000 bytes.
	if err := srv.TruncateArtifact(rel.Digest(), 5000); err != nil {
		log.Fatal(err)
	}
	rc, err := c.OpenArtifact(ctx, transport.ArtifactRequest{Digest: rel.Digest(), Length: -1})
	if err != nil {
		log.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	fmt.Println("read", n, "bytes, then:", errors.Is(err, io.ErrUnexpectedEOF))

	// The next two calls fail.
	srv.FailNext(2, transport.CodeUnavailable)
	_, err = c.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: 1})
	fmt.Println("heartbeat:", err)

	for _, r := range srv.Requests() {
		code := cmp.Or(r.Code, "ok")
		fmt.Printf("%s by %s: bytes %d+%d, %s\n", r.Call, cmp.Or(r.DeviceID, "-"), r.Offset, r.Length, code)
	}
	// Output:
	// offered payment-app@2.4.0 blocking: true
	// read 5000 bytes, then: true
	// heartbeat: transport: unavailable (503): injected failure
	// register by dev-0001: bytes 0+0, ok
	// check by dev-0001: bytes 0+0, ok
	// artifact by dev-0001: bytes 0+5000, ok
	// heartbeat by dev-0001: bytes 0+0, unavailable
}
