// Package sign is the signing side of upkeep's trust format: it makes keys,
// certifies signing keys with a root key, signs release manifests and packs
// release directories. It runs on the release server and in release tooling
// only; terminal code never imports it (a test enforces that), so a terminal
// binary carries no signing code.
//
// # Keys
//
// Trust has two levels. A root key, whose public half ships on every
// terminal, never signs a release: it certifies signing keys, for a period,
// with [CertifyKey]. Signing keys sign manifests ([SignManifest]) and ship
// their certificates inside each release's [verify.Bundle], so a signing key
// can be rotated, or replaced after a leak, without touching a terminal.
// Keep the root key offline; only the signing key and its certificate need
// to be on the machine that packs releases.
//
// A key directory, as [WriteKeyDir] writes it and [ReadKeyDir] reads it, holds:
//
//	root.key           root private key (mode 0600); may be kept elsewhere,
//	                   it is needed only to certify a new signing key
//	root.pub           root public key: the only file a terminal needs
//	signing.key        signing private key (mode 0600)
//	signing.pub        signing public key
//	signing.cert.json  the signing key's certificate: a
//	                   verify.PayloadSigningKey envelope signed by the root
//
// [RotateKeyDir] replaces the signing key and certificate, keeping the old
// ones as signing.key.<keyid>, signing.pub.<keyid> and
// signing.cert.json.<keyid>. Existing key files are never overwritten by
// [WriteKeyDir].
//
// Private key files are JSON: {"keyid": ..., "algorithm": "ed25519",
// "private": base64 of the 32-byte Ed25519 seed}. Public key files are
// verify's format ([verify.MarshalPublicKey]).
//
// # Releases
//
// [Pack] turns an artifact file into a release directory that
// [verify.OpenReleaseDir] accepts: it copies the artifact while cutting and
// hashing its chunks, on every core, fsyncs it, then writes the signed
// bundle to manifest.json atomically. Serve the artifact's bytes from any
// Range-capable HTTP server; give terminals the bundle.
//
// Functions in this package are safe for concurrent use, except that two
// calls must not write the same directory at once.
package sign
