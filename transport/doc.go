// Package transport is protocol v1 between a terminal and its update
// server: the messages, the stable error codes, the reason codes reports
// carry, and the two interfaces the protocol is spoken through.
//
//   - [Client] is what a terminal calls. [httptransport.Client] speaks it
//     over HTTP; [transporttest.Server] fakes it in memory.
//   - [Service] is what a server implements. [httptransport.NewHandler]
//     serves any Service over HTTP; update/server is one.
//
// Calls and paths:
//
//	POST /v1/register          RegisterRequest  → RegisterResponse
//	POST /v1/heartbeat         HeartbeatRequest → HeartbeatResponse
//	POST /v1/check             CheckRequest     → CheckResponse
//	GET  /v1/artifacts/{digest}                 → the bytes, with Range and If-Range
//	POST /v1/report            ReportRequest    → ReportResponse
//
// A server may mount these under a path prefix ("https://tms.example.com/upkeep"):
// clients are configured with it as their base URL, and an offer's relative
// ArtifactURL resolves under it (see [ResolveArtifactURL]).
//
// Every call but register carries the device's token as
// "Authorization: Bearer <token>". Errors travel as a JSON [ErrorBody] with
// a stable [Code]; clients turn them into [*Error], which matches the
// package's sentinels with errors.Is. A server decides what an error says
// on the wire with [AsError]: only an [*Error] carries a message of its
// own, and internal errors carry none. A server's Retry-After is honoured
// on every status: waited out by a client when it is short, returned in
// [Error.RetryAfter] for the caller to schedule when it is not.
//
// [httptransport.Client]: github.com/upkeephq/upkeep/transport/httptransport
// [httptransport.NewHandler]: github.com/upkeephq/upkeep/transport/httptransport
// [transporttest.Server]: github.com/upkeephq/upkeep/transport/transporttest
package transport
