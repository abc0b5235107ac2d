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
// server's host and refuses redirects to other schemes than http and
// https.
//
// Every call is retried for you, with one backpressure contract:
//
//   - connection errors, 5xx (but 501), 429 and any error status carrying
//     Retry-After are retried, up to [Config.RetryMax] failed attempts;
//     other 4xx are returned at once;
//   - a server's Retry-After (seconds or an HTTP date) is obeyed on every
//     status, with a little jitter added; one above [Config.MaxRetryAfter]
//     is not waited out but returned at once, as the *transport.Error with
//     its RetryAfter, for the caller (a heartbeat loop) to schedule;
//   - a shed response (429 or 503 carrying Retry-After) means "the server
//     is busy, come back then": it is not a failed attempt and does not use
//     up RetryMax, only its own budget, [Config.MaxShed];
//   - otherwise waits grow exponentially, fully jittered, between
//     [Config.RetryWaitMin] and [Config.RetryWaitMax];
//   - a wait that would end after ctx's deadline is not begun: the call
//     returns the last answer or connection error at once, not
//     context.DeadlineExceeded later;
//   - failures a retry cannot change are returned at once: refused
//     redirects (to a scheme other than http and https, or too many),
//     certificate and TLS errors, whether from Go's verifier, the vendor's
//     VerifyPeerCertificate or VerifyConnection, or a TLS alert;
//   - nothing is retried once ctx is done, and a wait ends as soon as ctx
//     is: the call returns ctx.Err().
//
// The vendor's Transport is used as it is: a Client never closes its idle
// connections, so two Clients (or two agents) sharing it do not disturb
// each other.
//
// Failures the server answered become [*transport.Error] (match them with
// errors.Is against transport.ErrNotFound and friends, or errors.As for the
// status and RetryAfter). Answers that break the protocol (a JSON body
// above the size limit, a partial response for the wrong range) match
// [ErrBadResponse]. Connection failures are returned as net/http reports
// them, wrapped. A URL off the base URL's origin (a presigned CDN URL) is
// named in errors and logs without its query and userinfo.
//
// JSON answers are read whole into memory, so they are bounded: 64 KiB for
// register, heartbeat and report, [Config.MaxResponseSize] (64 MiB by
// default) for check, whose answer carries signed manifests.
//
// OpenArtifact downloads artifact bytes with HTTP Range requests from the
// update server or from any Range-capable server an offer names (a CDN).
// An offer's relative ArtifactURL is a path under BaseURL, path prefix
// kept: with BaseURL https://tms.example.com/upkeep, "v1/artifacts/x" and
// "/v1/artifacts/x" are both fetched from
// https://tms.example.com/upkeep/v1/artifacts/x.
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
