package httptransport_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
)

// A server mounts NewHandler over its transport.Service (here the test
// fake); a terminal talks to it with a Client.
func Example() {
	ctx := context.Background()

	// Server side.
	svc := transporttest.NewServer(transporttest.Config{HeartbeatInterval: 5 * time.Minute})
	h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: svc})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()

	// Terminal side. A real terminal sets HTTPClient for mutual TLS and
	// stores the token from Register, to restore it with Config.Token.
	c, err := httptransport.New(httptransport.Config{BaseURL: ts.URL})
	if err != nil {
		log.Fatal(err)
	}
	reg, err := c.Register(ctx, &transport.RegisterRequest{
		Enrollment: transporttest.DefaultEnrollment,
		Serial:     "SN0001",
		Model:      "A920",
		Components: []transport.Component{{Name: "payment-app", Version: "2.3.0"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registered as", reg.DeviceID)

	hb, err := c.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: 1, State: "idle"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("next heartbeat in", time.Duration(hb.IntervalSeconds)*time.Second)

	check, err := c.Check(ctx, &transport.CheckRequest{
		Model:      "A920",
		Components: []transport.Component{{Name: "payment-app", Version: "2.3.0"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("offers:", len(check.Offers), "reason:", check.Reason)

	_, err = c.OpenArtifact(ctx, transport.ArtifactRequest{Digest: "sha256:" + fmt.Sprintf("%064x", 0), Length: -1})
	fmt.Println("unknown artifact is ErrNotFound:", errors.Is(err, transport.ErrNotFound))
	// Output:
	// registered as dev-0001
	// next heartbeat in 5m0s
	// offers: 0 reason: no_release
	// unknown artifact is ErrNotFound: true
}
