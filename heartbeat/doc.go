// Package heartbeat keeps a terminal in touch with its update server (心跳)
// and lets the server tell which terminals are alive.
//
// # Terminal side
//
// [Run] is the beat loop. It blocks until its context is done, so it
// composes with errgroup or a plain goroutine the caller owns:
//
//	counter := new(heartbeat.Counter)
//	go heartbeat.Run(ctx, heartbeat.Config{
//		Sender:  client, // a transport.Client
//		Status:  agent.Status,
//		Counter: counter,
//		OnDirective: func(ctx context.Context, d transport.Directive) {
//			if d == transport.DirectiveCheck {
//				agent.CheckSoon()
//			}
//		},
//	})
//	// The automatic-update gate: two heartbeats since boot.
//	err := counter.Wait(ctx, 2)
//
// The schedule is the server's. Each response may direct the interval and
// its jitter; Run clamps them to [Config.MinInterval, Config.MaxInterval]
// so a misconfigured server cannot make a fleet beat every millisecond or
// fall silent for a month. Every wait is randomised, the first beat comes
// after a random delay, and failures back off exponentially with full
// jitter, obeying the server's Retry-After, so a fleet that powers on
// together or loses its server together does not call in together.
//
// A [Counter] counts the successful beats since it was made (since boot, if
// the agent makes it at start-up). Failed beats never count: the domain's
// "two heartbeats after power-on" means two the server acknowledged.
//
// # Server side
//
// [Registry] records when each device last beat and the interval it was
// told to keep, and reports a device offline once it has missed
// [RegistryConfig.Misses] beats plus a grace period. Times are passed in,
// never read from a clock, so the policy is easy to test and to run over a
// shared fleet store.
//
// Everything in this package is safe for concurrent use. The one thing two
// concurrent Runs must not share is a [Config.Rand] source.
package heartbeat
