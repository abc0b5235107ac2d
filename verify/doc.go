// Package verify decides whether bytes may be trusted. It holds everything a
// terminal needs to check an update before installing it, and nothing that
// signs (that is [github.com/upkeephq/upkeep/verify/sign], server side):
//
//   - [Digest] names content by SHA-256; [NewHash] is SIMD-accelerated and
//     every function that hashes takes a func() hash.Hash so it can be swapped.
//   - [Artifact] is a chunk manifest: the artifact's size and digest and the
//     offset, size and digest of each fixed-size chunk, so a download can be
//     verified chunk by chunk as it streams and resumed safely.
//   - [Manifest] is what a release promises: component, version, kind, the
//     models and hardware it is for, the versions it may upgrade from, the
//     anti-rollback floor, an expiry, and the artifact's chunk list.
//   - [Envelope] carries a signed payload; [Bundle] is a signed manifest with
//     the certificates of the signing keys that signed it.
//   - [KeyRing] holds the terminal's root keys. Roots certify signing keys and
//     signing keys sign manifests, so signing keys rotate without a firmware
//     change. [KeyRing.Open] checks every signature and expiry.
//   - [CheckVersion] enforces the anti-rollback floor.
//   - [RunChecks] runs named health checks, each under its own timeout.
//
// Errors are typed: [ErrSignature], [ErrUnknownKey], [ErrExpired],
// [ErrDowngrade], [ErrMalformed], [ErrTooLarge] and [*DigestMismatchError],
// matched with errors.Is and errors.As.
//
// Everything in this package is safe for concurrent use.
package verify
