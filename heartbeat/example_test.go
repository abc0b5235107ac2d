package heartbeat_test

import (
	"context"
	"fmt"
	"time"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
)

// tms stands in for a transport.Client: it directs a one-minute interval
// and asks for an update check on the second beat.
type tms struct{}

func (tms) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	resp := &transport.HeartbeatResponse{IntervalSeconds: 60, ServerTime: time.Now()}
	if req.Seq == 2 {
		resp.Directives = []transport.Directive{transport.DirectiveCheck}
	}
	return resp, nil
}

// The agent runs the beat loop for as long as it runs, and waits for two
// heartbeats since boot before it lets an automatic update through.
func ExampleRun() {
	ctx, cancel := context.WithCancel(context.Background())
	counter := new(heartbeat.Counter)
	checkNow := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- heartbeat.Run(ctx, heartbeat.Config{
			Sender:  tms{},
			Counter: counter,
			// This example is alone and impatient; a fleet keeps the
			// defaults (a random first delay, minutes between beats).
			InitialDelay: -1,
			MinInterval:  10 * time.Millisecond,
			Interval:     10 * time.Millisecond,
			MaxInterval:  10 * time.Millisecond, // clamps the server's 60s
			Jitter:       -1,
			Status: func(ctx context.Context) (*transport.HeartbeatRequest, error) {
				return &transport.HeartbeatRequest{State: "idle"}, nil
			},
			OnDirective: func(ctx context.Context, d transport.Directive) {
				if d == transport.DirectiveCheck {
					select {
					case checkNow <- struct{}{}: // never block the beat loop
					default:
					}
				}
			},
		})
	}()

	if err := counter.Wait(ctx, 2); err != nil {
		fmt.Println(err)
	}
	fmt.Println("heartbeats since boot:", counter.Count())
	<-checkNow
	fmt.Println("server asked for a check")
	cancel()
	fmt.Println(<-done)
	// Output:
	// heartbeats since boot: 2
	// server asked for a check
	// context canceled
}
