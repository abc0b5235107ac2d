// Package transporttest helps test code that speaks upkeep's protocol v1,
// on either side.
//
// [Server] is an in-memory update server, a per-test simulator in the
// manner of go-tuf's RepositorySimulator but with no globals: make one per
// test with [NewServer]. It implements [transport.Service], so
// httptransport.NewHandler serves it over real HTTP, and [Server.Client]
// returns an in-memory [transport.Client] that talks to it directly with
// the same wire semantics (strict JSON, validation, tokens, errors). The
// in-memory client takes the server to be at [BaseURL], which has a path
// prefix, and resolves artifact URLs against it as httptransport.Client
// does against its own base URL.
//
// Knobs change what it answers, for clients over HTTP and in memory alike:
// [Server.Publish] and [Server.Unpublish] releases; [Server.FailNext] and
// [Server.FailNextCall] inject protocol errors; [Server.Shed] answers 503
// with a Retry-After; [Server.SetDelay] slows every call (honouring ctx,
// and synctest's clock); [Server.TruncateArtifact] and
// [Server.CorruptArtifact] damage downloads; [Server.SetDirectives] queues
// directives for a device's next heartbeat. What it saw is in
// [Server.Requests] (with artifact offsets and lengths served),
// [Server.Reports], [Server.Heartbeats] and [Server.Devices].
//
// [Keys] signs test releases with crypto/ed25519 and the verify package
// alone: [NewKeys] then [Keys.NewRelease] gives a [Release] (a signed
// bundle and its artifact) ready for Publish, and [Keys.KeyRing] the key
// ring that trusts it.
//
// [TestClient] is the conformance suite of transport.Client, in the manner
// of testing/fstest: every Client implementation runs it against a Server.
//
//	func TestConformance(t *testing.T) {
//		transporttest.TestClient(t, func(t *testing.T, srv *transporttest.Server) transport.Client {
//			return srv.Client()
//		})
//	}
package transporttest
