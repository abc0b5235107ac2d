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
// Every call but register carries the device's token as
// "Authorization: Bearer <token>". Errors travel as a JSON [ErrorBody] with
// a stable [Code]; clients turn them into [*Error], which matches the
// package's sentinels with errors.Is. A server's Retry-After is honoured
// on every status.
//
// [httptransport.Client]: github.com/upkeephq/upkeep/transport/httptransport
// [httptransport.NewHandler]: github.com/upkeephq/upkeep/transport/httptransport
// [transporttest.Server]: github.com/upkeephq/upkeep/transport/transporttest
package transport
