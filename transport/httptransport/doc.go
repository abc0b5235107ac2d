// Package httptransport speaks upkeep's protocol v1 over HTTP: [Client] is
// the terminal's side, an implementation of [transport.Client]; [NewHandler]
// is the server's side, an http.Handler that serves any
// [transport.Service].
//
// # The client
//
// A terminal makes one [Client] with [New] and shares it between
// goroutines. Bring your own *http.Client in [Config.HTTPClient] for mutual
// TLS, proxies or a pinned root CA; the client copies its settings and adds
// only a redirect rule that keeps the device token from leaving the update
// server's host.
//
// Every call is retried for you, with one backpressure contract:
//
//   - connection errors, 5xx (but 501), 429 and any error status carrying
//     Retry-After are retried, up to [Config.RetryMax] failed attempts;
//     other 4xx are returned at once;
//   - a server's Retry-After (seconds or an HTTP date) is obeyed on every
//     status, capped at [Config.MaxRetryAfter], with a little jitter added;
//   - a shed response (429 or 503 carrying Retry-After) means "the server
//     is busy, come back then": it is not a failed attempt and does not use
//     up RetryMax, only its own budget, [Config.MaxShed];
//   - otherwise waits grow exponentially, fully jittered, between
//     [Config.RetryWaitMin] and [Config.RetryWaitMax];
//   - nothing is retried once ctx is done, and a wait ends as soon as ctx
//     is: the call returns ctx.Err().
//
// Failures the server answered become [*transport.Error] (match them with
// errors.Is against transport.ErrNotFound and friends, or errors.As for the
// status and RetryAfter). Answers that break the protocol (a JSON body
// above the size limit, a partial response for the wrong range) match
// [ErrBadResponse]. Connection failures are returned as net/http reports
// them, wrapped.
//
// OpenArtifact downloads artifact bytes with HTTP Range requests from the
// update server or from any Range-capable server an offer names (a CDN).
// The reader it returns yields exactly the bytes asked for: a body that
// ends early reads as io.ErrUnexpectedEOF, never as a short success.
//
// # The handler
//
// [NewHandler] routes the five calls of protocol v1 under /v1/, checks the
// device token with [transport.Service.Authenticate], limits, decodes
// (strictly: unknown fields and trailing data are refused) and validates
// each request before the Service sees it, and writes the Service's errors
// as JSON [transport.ErrorBody] with their status and Retry-After.
// Artifacts are served with http.ServeContent, so Range, If-Range,
// conditional requests, 206 and 416 all behave as HTTP says.
//
// Client and handler are safe for concurrent use.
package httptransport
